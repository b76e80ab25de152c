import type { Node } from '../repo/node.js';
import type { Id } from '../repo/id.js';
import type { Repository } from '../repo/repository.js';
import { decodeTree } from '../repo/tree.js';

export interface WalkEntry {
  /** Path inside the snapshot, "/" separated, starting with "/". */
  path: string;
  node: Node;
}

/** Yields every node below a tree depth-first, in tree order (restic's ls order). */
export async function* walkTree(repo: Repository, treeId: Id, prefix = '', recursive = true): AsyncGenerator<WalkEntry> {
  const nodes = decodeTree(await repo.loadBlob('tree', treeId));
  for (const node of nodes) {
    const path = `${prefix}/${node.name}`;
    yield { path, node };
    if (recursive && node.type === 'dir' && node.subtree) yield* walkTree(repo, node.subtree, path, recursive);
  }
}

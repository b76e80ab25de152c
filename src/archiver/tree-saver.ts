import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import type { Id } from '../repo/id.js';
import { encodeTree, sortNodes } from '../repo/tree.js';
import type { BackupStats } from './stats.js';

/** Encodes a directory's nodes the way restic does and stores the tree blob. */
export async function saveTree(repo: Repository, nodes: Node[], stats: BackupStats): Promise<Id> {
  const saved = await repo.saveBlob('tree', encodeTree(sortNodes(nodes)));
  if (!saved.known) {
    stats.treeBlobs++;
    stats.dataAdded += saved.storedSize;
  }
  return saved.id;
}

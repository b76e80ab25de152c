import type { Node } from '../repo/node.js';
import type { Id } from '../repo/id.js';
import type { Repository } from '../repo/repository.js';
import { decodeTree } from '../repo/tree.js';
import { IntegrityError } from '../errors.js';

export interface WalkEntry {
  /** Path inside the snapshot, "/" separated, starting with "/"; for display (invalid UTF-8 as U+FFFD). */
  path: string;
  /** The same path as raw bytes, which is what restic prints and matches patterns against. */
  rawPath: Buffer;
  node: Node;
  /** Id of the tree that holds `node`. */
  parentTree: Id;
}

export interface WalkOptions {
  /** Raw path of the walked tree inside the snapshot ("" for the snapshot root, else "/a/b"). */
  prefix?: Buffer;
  /** Whether to walk into a directory (decided before its entry is yielded, so subtrees can be prefetched). */
  descend?: (entry: WalkEntry) => boolean;
}

const SLASH = Buffer.from('/');

/** `dir/name` for raw paths. */
export function joinRaw(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

/** Loads and decodes a tree blob. */
export async function loadTree(repo: Repository, id: Id): Promise<Node[]> {
  return decodeTree(await repo.loadBlob('tree', id));
}

// Subtrees are loaded a few ahead of the walk, so remote backends are not waited on one tree at a
// time; the window keeps memory bounded for directories with thousands of subdirectories.
const PREFETCH = 8;

/**
 * Yields every node below a tree depth-first in tree order (restic's walker order: nodes sorted by
 * name bytes, a directory before its content).
 */
export async function* walkTree(repo: Repository, treeId: Id, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  yield* walk(repo, treeId, await loadTree(repo, treeId), options.prefix ?? Buffer.alloc(0), options.descend);
}

async function* walk(repo: Repository, treeId: Id, nodes: Node[], prefix: Buffer, descend: WalkOptions['descend']): AsyncGenerator<WalkEntry> {
  const entries = nodes.map((node): WalkEntry => {
    const rawPath = joinRaw(prefix, node.rawName);
    return { path: rawPath.toString('utf8'), rawPath, node, parentTree: treeId };
  });
  const dirs = entries.filter((e) => e.node.type === 'dir' && (descend?.(e) ?? true));
  const loads = new Map<WalkEntry, Promise<Node[]>>();
  let next = 0;
  const prefetch = () => {
    while (next < dirs.length && loads.size < PREFETCH) {
      const e = dirs[next++]!;
      if (!e.node.subtree) throw new IntegrityError(`tree ${treeId}: directory ${JSON.stringify(e.path)} has no subtree`);
      const p = loadTree(repo, e.node.subtree);
      p.catch(() => undefined); // reported when awaited; the walk may stop before that
      loads.set(e, p);
    }
  };
  prefetch();
  for (const entry of entries) {
    yield entry;
    const load = loads.get(entry);
    if (!load) continue;
    const sub = await load;
    loads.delete(entry);
    prefetch();
    yield* walk(repo, entry.node.subtree!, sub, entry.rawPath, descend);
  }
}

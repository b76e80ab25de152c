import type { Id } from '../repo/id.js';
import type { Node } from '../repo/node.js';
import { encodeTree, sortNodes } from '../repo/tree.js';
import type { BlobSaver } from './blob-saver.js';
import { emptyItemStats, type ItemStats } from './stats.js';

/** Encodes a directory's nodes exactly as restic does and stores the tree blob (deduplicated). */
export async function saveTree(blobs: BlobSaver, nodes: Node[]): Promise<{ id: Id; stats: ItemStats }> {
  const saved = await blobs.save('tree', encodeTree(sortNodes(nodes)));
  const stats = emptyItemStats();
  if (!saved.known) {
    stats.treeBlobs = 1;
    stats.treeSize = saved.length;
    stats.treeSizeInRepo = saved.sizeInRepo;
  }
  return { id: saved.id, stats };
}

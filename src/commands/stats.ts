import { createHash } from 'node:crypto';
import { NotFoundError, UsageError } from '../errors.js';
import type { Id } from '../repo/id.js';
import type { Repository } from '../repo/repository.js';
import { snapshotsByRefs } from './snapshots.js';
import type { Snapshot } from '../repo/snapshot.js';
import type { SnapshotFilter } from '../repo/snapshot-filter.js';
import { blobPlainSize } from '../restorer/filerestorer.js';
import { loadTree, walkTree } from '../walker/walker.js';

export const STATS_MODES = ['restore-size', 'files-by-contents', 'blobs-per-file', 'raw-data'] as const;
export type StatsMode = (typeof STATS_MODES)[number];

export interface StatsOptions {
  /**
   * restore-size: size of all files as restored (every node counted, hard links once);
   * files-by-contents: files with distinct content; blobs-per-file: the blobs each distinct file
   * references; raw-data: the stored size of all blobs the snapshots reference.
   */
  mode?: StatsMode;
  /** Snapshot ids, prefixes or "latest"; all snapshots matching `filter` when empty. */
  snapshots?: readonly string[];
  filter?: SnapshotFilter;
}

export interface StatsResult {
  mode: StatsMode;
  totalSize: number;
  totalFileCount: number;
  totalBlobCount: number;
  snapshotsCount: number;
}

/** `restic stats` with restic 0.14's counting rules. */
export async function stats(repo: Repository, options: StatsOptions = {}): Promise<StatsResult> {
  const mode = options.mode ?? 'restore-size';
  if (!STATS_MODES.includes(mode)) throw new UsageError(`unknown counting mode: ${String(mode)} (use one of ${STATS_MODES.join(', ')})`);
  await repo.loadIndex();
  const snapshots = await snapshotsByRefs(repo, options.snapshots, options.filter);

  const result: StatsResult = { mode, totalSize: 0, totalFileCount: 0, totalBlobCount: 0, snapshotsCount: 0 };
  const blobs = new Set<string>();
  // Files seen, by the sequence of their content ids; blobs counted per file path.
  const uniqueFiles = new Set<string>();
  const fileBlobs = new Map<string, Set<Id>>();
  for (const snapshot of snapshots) {
    result.snapshotsCount++;
    if (mode === 'raw-data') {
      await collectBlobs(repo, snapshot.tree, blobs);
      continue;
    }
    const uniqueInodes = new Set<string>();
    for await (const { node, rawPath } of walkTree(repo, snapshot.tree)) {
      if (mode === 'restore-size') {
        result.totalFileCount++;
        // Hard links are restored once; nodes without an inode always count.
        const inode = String(node.inode ?? 0);
        if (!uniqueInodes.has(inode) || inode === '0') {
          uniqueInodes.add(inode);
          result.totalSize += node.size ?? 0;
        }
        continue;
      }
      // restic keys files by a hash of their content ids, so every node without content (directories,
      // empty files, links) is one and the same "file".
      const fid = createHash('sha256')
        .update(Buffer.from((node.content ?? []).join(''), 'hex'))
        .digest('hex');
      if (uniqueFiles.has(fid)) continue;
      uniqueFiles.add(fid);
      if (mode === 'files-by-contents') {
        result.totalSize += node.size ?? 0;
        result.totalFileCount++;
        continue;
      }
      // blobs-per-file: restic's key is the node's path joined with its name again.
      const key = Buffer.concat([rawPath, Buffer.from('/'), node.rawName]).toString('latin1');
      for (const id of node.content ?? []) {
        let set = fileBlobs.get(key);
        if (!set) {
          fileBlobs.set(key, (set = new Set()));
          result.totalFileCount++;
        }
        if (set.has(id)) continue;
        const loc = repo.index.lookup('data', id);
        if (!loc) throw new NotFoundError(`blob ${id} not found for ${rawPath.toString()}`);
        result.totalSize += blobPlainSize(loc);
        set.add(id);
        result.totalBlobCount++;
      }
    }
  }
  if (mode === 'raw-data') {
    for (const h of blobs) {
      const loc = repo.index.lookup(h[0] === 'd' ? 'data' : 'tree', h.slice(1));
      if (!loc) throw new NotFoundError(`blob ${h.slice(1)} not found`);
      result.totalSize += loc.length;
      result.totalBlobCount++;
    }
  }
  return result;
}

/** Every tree and data blob reachable from `tree` ("t<id>", "d<id>"); shared subtrees are walked once. */
async function collectBlobs(repo: Repository, tree: Id, blobs: Set<string>): Promise<void> {
  if (blobs.has(`t${tree}`)) return;
  blobs.add(`t${tree}`);
  for (const node of await loadTree(repo, tree)) {
    if (node.type === 'file') for (const id of node.content ?? []) blobs.add(`d${id}`);
    else if (node.type === 'dir' && node.subtree) await collectBlobs(repo, node.subtree, blobs);
  }
}

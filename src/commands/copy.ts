import { NotFoundError } from '../errors.js';
import { parseGoTime } from '../repo/gotime.js';
import type { Id } from '../repo/id.js';
import type { BlobLocation } from '../repo/index-file.js';
import { withLock } from '../repo/locking.js';
import type { BlobType } from '../repo/pack.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { hasTags } from '../repo/snapshot-filter.js';
import { decodeTree } from '../repo/tree.js';
import { mapLimit } from '../util/concurrency.js';
import { selectSnapshots, type SelectOptions } from './snapshots.js';

export type CopyEvent =
  | { type: 'start'; source: Snapshot }
  | { type: 'skip'; source: Snapshot; existing: Snapshot }
  | { type: 'copy'; source: Snapshot }
  | { type: 'copied'; source: Snapshot; snapshot: Snapshot; blobs: number };

export interface CopyOptions extends SelectOptions {
  /** Take a shared lock on the source too (restic skips it with --no-lock). Default true. */
  lockSource?: boolean;
  onEvent?: (event: CopyEvent) => void;
}

export interface CopyResult {
  copied: { source: Snapshot; snapshot: Snapshot }[];
  skipped: { source: Snapshot; existing: Snapshot }[];
  /** Blobs newly stored in the destination. */
  blobs: number;
  warnings: string[];
  unresolved: string[];
}

/** Source packs read at once (each read is at most a pack, a few dozen MiB). */
const PACK_CONCURRENCY = 2;
const TREE_CONCURRENCY = 8;

/**
 * `restic copy`: copies the selected snapshots of `src` that `dst` does not hold yet, with every tree
 * and data blob they need that `dst` lacks, decrypted with the source key and re-encrypted (and
 * compressed as `dst` is configured) with the destination's. Blobs are not re-chunked. A copy keeps the
 * source snapshot's `original` (or its id) so later runs recognise it; `parent` is dropped.
 */
export async function copy(src: Repository, dst: Repository, options: CopyOptions = {}): Promise<CopyResult> {
  const locked = <T>(fn: () => Promise<T>) => (options.lockSource === false ? fn() : withLock(src, false, fn));
  return locked(() => withLock(dst, false, () => copyLocked(src, dst, options)));
}

async function copyLocked(src: Repository, dst: Repository, options: CopyOptions): Promise<CopyResult> {
  const emit = options.onEvent ?? (() => undefined);
  await Promise.all([src.loadIndex(), dst.loadIndex()]);
  // Destination snapshots by the id of the snapshot they were copied (or tagged) from, and by their own id.
  const existing = new Map<Id, Snapshot[]>();
  const remember = (id: Id, s: Snapshot) => {
    const list = existing.get(id);
    if (list) list.push(s);
    else existing.set(id, [s]);
  };
  for await (const s of dst.snapshots(options.filter)) {
    if (s.original) remember(s.original, s);
    remember(s.id, s);
  }
  const selection = await selectSnapshots(src, options);
  const result: CopyResult = { copied: [], skipped: [], blobs: 0, warnings: selection.warnings, unresolved: selection.unresolved };
  const visitedTrees = new Set<Id>();
  for (const source of selection.snapshots) {
    emit({ type: 'start', source });
    const twin = existing.get(source.original ?? source.id)?.find((s) => similarSnapshots(s, source));
    if (twin) {
      emit({ type: 'skip', source, existing: twin });
      result.skipped.push({ source, existing: twin });
      continue;
    }
    emit({ type: 'copy', source });
    const missing = await missingBlobs(src, dst, source.tree, visitedTrees);
    const blobs = await copyBlobs(src, dst, missing);
    await dst.flush();
    const { id, parent: _parent, ...rest } = source;
    const snapshot = await dst.saveSnapshot({ ...rest, original: source.original ?? id });
    result.blobs += blobs;
    result.copied.push({ source, snapshot });
    emit({ type: 'copied', source, snapshot, blobs });
  }
  return result;
}

/** restic's test for "already copied": everything but parent and original matches. */
function similarSnapshots(a: Snapshot, b: Snapshot): boolean {
  const sameLength = (x: readonly string[] = [], y: readonly string[] = []) => x.length === y.length;
  return (
    parseGoTime(a.time) === parseGoTime(b.time) &&
    a.tree === b.tree &&
    (a.hostname ?? '') === (b.hostname ?? '') &&
    (a.username ?? '') === (b.username ?? '') &&
    (a.uid ?? 0) === (b.uid ?? 0) &&
    (a.gid ?? 0) === (b.gid ?? 0) &&
    sameLength(a.paths, b.paths) &&
    sameLength(a.excludes, b.excludes) &&
    sameLength(a.tags, b.tags) &&
    b.paths.every((p) => a.paths.includes(p)) &&
    hasTags(a, b.tags ?? []) &&
    (a.excludes ?? []).every((e, i) => e === b.excludes![i])
  );
}

/**
 * Walks every tree below `root` not walked before (in this copy run) and collects the source locations
 * of the tree and data blobs the destination lacks.
 */
async function missingBlobs(src: Repository, dst: Repository, root: Id, visited: Set<Id>): Promise<BlobLocation[]> {
  const missing = new Map<string, BlobLocation>();
  const need = (type: BlobType, id: Id, what: string) => {
    if (dst.index.has(type, id) || missing.has(type + id)) return;
    const loc = src.index.lookup(type, id);
    if (!loc) throw new NotFoundError(`${what}: ${type} blob ${id} is not in the source repository's index`);
    missing.set(type + id, loc);
  };
  const queue: Id[] = [];
  const visit = (id: Id, what: string) => {
    if (visited.has(id)) return;
    visited.add(id);
    need('tree', id, what);
    queue.push(id);
  };
  visit(root, 'snapshot tree');
  // Breadth-first in bounded batches: wide directories must not load all their subtrees at once.
  while (queue.length) {
    const batch = queue.splice(0, 4 * TREE_CONCURRENCY);
    const trees = await mapLimit(batch, TREE_CONCURRENCY, async (id) => ({ id, nodes: decodeTree(await src.loadBlob('tree', id)) }));
    for (const { id, nodes } of trees) {
      for (const node of nodes) {
        const what = `${JSON.stringify(node.name)} in tree ${id}`;
        for (const blob of node.content ?? []) need('data', blob, what);
        if (node.subtree) visit(node.subtree, what);
      }
    }
  }
  return [...missing.values()];
}

/** Source reads cover neighbouring blobs in one request unless this many unneeded bytes lie between. */
const MAX_READ_GAP = 1024 * 1024;

/** Reads the blobs pack by pack (few ranged reads per pack) and stores them in `dst`; returns how many were new. */
async function copyBlobs(src: Repository, dst: Repository, blobs: readonly BlobLocation[]): Promise<number> {
  const byPack = new Map<Id, BlobLocation[]>();
  for (const b of blobs) {
    const list = byPack.get(b.packId);
    if (list) list.push(b);
    else byPack.set(b.packId, [b]);
  }
  let stored = 0;
  await mapLimit([...byPack.entries()], PACK_CONCURRENCY, async ([packId, list]) => {
    list.sort((x, y) => x.offset - y.offset);
    for (let i = 0; i < list.length; ) {
      let j = i + 1;
      while (j < list.length && list[j]!.offset - (list[j - 1]!.offset + list[j - 1]!.length) <= MAX_READ_GAP) j++;
      const start = list[i]!.offset;
      const end = list[j - 1]!.offset + list[j - 1]!.length;
      const data = await src.backend.load('data', packId, start, end - start);
      // Saved together so the destination's encoder threads work on them in parallel.
      const saved = await Promise.all(
        list.slice(i, j).map((b) => dst.saveBlob(b.type, src.decodeBlob(b, packId, data.subarray(b.offset - start, b.offset - start + b.length)), b.id)),
      );
      stored += saved.filter((r) => !r.known).length;
      i = j;
    }
  });
  return stored;
}

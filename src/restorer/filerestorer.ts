// Writes the content of regular files pack by pack: every pack (or a few ranges of it) is read once,
// and each blob in it is written to every file and offset that needs it.
import { CRYPTO_OVERHEAD } from '../crypto/index.js';
import { IntegrityError, NotFoundError, ResticError } from '../errors.js';
import type { Id } from '../repo/id.js';
import type { BlobLocation } from '../repo/index-file.js';
import type { Repository } from '../repo/repository.js';
import { RangeDispatcher, type BlobTarget, type RangeBlob } from './decode.js';

export interface FileToRestore {
  /** Where to write the file (it must not exist yet). */
  path: Buffer;
  /** Path inside the snapshot, for messages. */
  location: string;
  size: number;
  content: readonly Id[];
}

export interface FileRestorerOptions {
  /** Leave all-zero blocks as holes instead of writing them. */
  sparse?: boolean;
  /** Pack ranges downloaded at once (they are decoded and written on as many threads as there are cores). */
  concurrency?: number;
  /** Threads started ahead by the caller (they must match `sparse`); closed here like one started here. */
  dispatcher?: RangeDispatcher;
  /** Called with the index in `files` of every file whose content is complete. */
  onFileDone?: (index: number) => void;
}

/** Plaintext size of a blob as the index describes it. */
export function blobPlainSize(loc: BlobLocation): number {
  return loc.uncompressedLength ?? loc.length - CRYPTO_OVERHEAD;
}

// restic's maxUnusedRange: blobs of one pack closer than this are read with one request.
const MAX_GAP = 4 * 1024 * 1024;
// One request never spans more than this, so memory stays around concurrency × MAX_RANGE whatever
// --pack-size the repository was written with (restic 0.14's packs of 16 MiB and more take two reads).
// Larger buffers also cost more: each one is fresh memory the kernel has to map.
const MAX_RANGE = 16 * 1024 * 1024;

interface PackBlob {
  loc: BlobLocation;
  targets: BlobTarget[];
  /** Index in `files` of each target. */
  files: number[];
}

interface Range {
  packId: Id;
  blobs: PackBlob[];
}

/**
 * Restores the content of `files`: groups their blobs by pack and reads each pack in as few ranges as
 * possible, in order of first use, with bounded concurrency; every blob is written to all places
 * that need it. Stops at the first error (a damaged pack, a failed write). All files are closed when
 * it returns or throws. Returns the bytes written.
 */
export async function restoreFileContents(repo: Repository, files: readonly FileToRestore[], options: FileRestorerOptions = {}): Promise<number> {
  let planned;
  try {
    planned = planRanges(repo, files);
  } catch (err) {
    await options.dispatcher?.close().catch(() => undefined);
    throw err;
  }
  const { ranges, bytes, blobsLeft } = planned;
  const dispatcher = options.dispatcher ?? new RangeDispatcher(repo.key, options.sparse === true, RangeDispatcher.threadsFor(bytes));
  let written = 0;
  let failed = false;
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (!failed && next < ranges.length) {
      const range = ranges[next++]!;
      try {
        const n = await restoreRange(repo, dispatcher, range);
        written += n;
        for (const b of range.blobs) {
          for (const f of b.files) if (--blobsLeft[f]! === 0) options.onFileDone?.(f);
        }
      } catch (err) {
        failed = true;
        errors.push(err);
      }
    }
  };
  // Enough reads in flight to keep every decoding thread busy while the next ranges load.
  const concurrency = options.concurrency !== undefined && options.concurrency >= 1 ? Math.floor(options.concurrency) : dispatcher.parallelism + 2;
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, ranges.length) }, worker));
  } finally {
    await dispatcher.close().catch((err: unknown) => errors.push(err));
  }
  if (errors.length) throw errors[0];
  return written;
}

function planRanges(repo: Repository, files: readonly FileToRestore[]): { ranges: Range[]; bytes: number; blobsLeft: number[] } {
  /** Pack id → blobs needed from it; Map order is the order of first use. */
  const packs = new Map<Id, Map<Id, PackBlob>>();
  const blobsLeft = files.map((f) => f.content.length);
  let bytes = 0;
  for (const [index, f] of files.entries()) {
    const path = f.path.toString('latin1');
    let offset = 0;
    for (const id of f.content) {
      const loc = repo.index.lookup('data', id);
      if (!loc) throw new NotFoundError(`${f.location}: data blob ${id} not found in index`);
      let pack = packs.get(loc.packId);
      if (!pack) packs.set(loc.packId, (pack = new Map()));
      let blob = pack.get(id);
      if (!blob) pack.set(id, (blob = { loc, targets: [], files: [] }));
      blob.targets.push({ path, size: f.size, offset });
      blob.files.push(index);
      offset += blobPlainSize(loc);
    }
    bytes += offset;
  }
  return { ranges: [...packs].flatMap(([packId, blobs]) => splitRanges(packId, [...blobs.values()])), bytes, blobsLeft };
}

/** Splits the blobs needed from one pack into byte ranges that are each read with one request. */
function splitRanges(packId: Id, blobs: PackBlob[]): Range[] {
  blobs.sort((a, b) => a.loc.offset - b.loc.offset);
  const ranges: Range[] = [];
  let current: PackBlob[] = [];
  let start = 0;
  let end = 0;
  for (const b of blobs) {
    const blobEnd = b.loc.offset + b.loc.length;
    if (current.length > 0 && (b.loc.offset - end > MAX_GAP || blobEnd - start > MAX_RANGE)) {
      ranges.push({ packId, blobs: current });
      current = [];
    }
    if (current.length === 0) start = b.loc.offset;
    current.push(b);
    end = blobEnd;
  }
  if (current.length > 0) ranges.push({ packId, blobs: current });
  return ranges;
}

async function restoreRange(repo: Repository, dispatcher: RangeDispatcher, { packId, blobs }: Range): Promise<number> {
  const start = blobs[0]!.loc.offset;
  const last = blobs[blobs.length - 1]!.loc;
  const length = last.offset + last.length - start;
  let data: Uint8Array;
  try {
    data = await repo.backend.load('data', packId, start, length);
  } catch (err) {
    if (err instanceof ResticError && err.message.includes(packId)) throw err;
    throw new ResticError(`pack ${packId}: ${(err as Error).message}`);
  }
  if (data.length !== length) throw new IntegrityError(`pack ${packId}: read ${data.length} bytes at offset ${start}, expected ${length}`);
  const job: RangeBlob[] = blobs.map((b) => ({
    type: b.loc.type,
    id: b.loc.id,
    offset: b.loc.offset - start,
    length: b.loc.length,
    ...(b.loc.uncompressedLength !== undefined ? { uncompressedLength: b.loc.uncompressedLength } : {}),
    targets: b.targets,
  }));
  return dispatcher.run({ packId, data, blobs: job });
}

// Writes the content of regular files pack by pack: every pack (or a few ranges of it) is read once,
// and each blob in it is written to every file and offset that needs it.
import { constants as fsc, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { CRYPTO_OVERHEAD } from '../crypto/index.js';
import { IntegrityError, NotFoundError, ResticError } from '../errors.js';
import type { Id } from '../repo/id.js';
import type { BlobLocation } from '../repo/index-file.js';
import type { Repository } from '../repo/repository.js';

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
  /** Pack ranges downloaded and written at once. */
  concurrency?: number;
  /** Called with the plaintext bytes of every blob written to a file. */
  onBytes?: (n: number) => void;
}

/** Plaintext size of a blob as the index describes it. */
export function blobPlainSize(loc: BlobLocation): number {
  return loc.uncompressedLength ?? loc.length - CRYPTO_OVERHEAD;
}

// restic's maxUnusedRange: blobs of one pack closer than this are read with one request.
const MAX_GAP = 4 * 1024 * 1024;
// One request never spans more than this (restic packs are 16 MiB plus the last blob), so memory
// stays around concurrency × MAX_RANGE whatever --pack-size the repository was written with.
const MAX_RANGE = 32 * 1024 * 1024;
// Files kept open between writes; idle ones beyond this are closed and reopened when needed.
const MAX_OPEN_FILES = 256;
const SPARSE_BLOCK = 4096;
const ZEROS = Buffer.alloc(SPARSE_BLOCK);

interface FileState {
  path: Buffer;
  location: string;
  size: number;
  /** Blob writes still to do; the file is closed when it reaches 0. */
  pending: number;
  created: boolean;
  handle?: FileHandle;
  opening?: Promise<FileHandle>;
  /** Writes currently using `handle`. */
  busy: number;
}

interface Target {
  file: FileState;
  offset: number;
}

interface PackBlob {
  loc: BlobLocation;
  targets: Target[];
}

/**
 * Restores the content of `files`: groups their blobs by pack, processes packs in order of first use
 * with bounded concurrency, and stops at the first error (a damaged pack, a failed write). All files
 * are closed when it returns or throws.
 */
export async function restoreFileContents(repo: Repository, files: readonly FileToRestore[], options: FileRestorerOptions = {}): Promise<void> {
  const restorer = new FileRestorer(repo, options);
  restorer.plan(files);
  await restorer.run(options.concurrency ?? 4);
}

class FileRestorer {
  /** Pack id → blobs needed from it, in order of first use. */
  private readonly packs = new Map<Id, Map<Id, PackBlob>>();
  private readonly open = new Set<FileState>();
  private failed = false;

  constructor(
    private readonly repo: Repository,
    private readonly options: FileRestorerOptions,
  ) {}

  plan(files: readonly FileToRestore[]): void {
    for (const f of files) {
      const file: FileState = { path: f.path, location: f.location, size: f.size, pending: 0, created: false, busy: 0 };
      let offset = 0;
      for (const id of f.content) {
        const loc = this.repo.index.lookup('data', id);
        if (!loc) throw new NotFoundError(`${f.location}: data blob ${id} not found in index`);
        let pack = this.packs.get(loc.packId);
        if (!pack) this.packs.set(loc.packId, (pack = new Map()));
        let blob = pack.get(id);
        if (!blob) pack.set(id, (blob = { loc, targets: [] }));
        blob.targets.push({ file, offset });
        file.pending++;
        offset += blobPlainSize(loc);
      }
    }
  }

  async run(concurrency: number): Promise<void> {
    const queue = [...this.packs].flatMap(([packId, blobs]) => splitRanges(packId, [...blobs.values()]));
    this.packs.clear();
    let next = 0;
    const errors: unknown[] = [];
    const worker = async () => {
      while (!this.failed && next < queue.length) {
        const range = queue[next++]!;
        try {
          await this.restoreRange(range.packId, range.blobs);
        } catch (err) {
          this.failed = true;
          errors.push(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, worker));
    await Promise.allSettled([...this.open].map((f) => this.close(f)));
    if (errors.length) throw errors[0];
  }

  private async restoreRange(packId: Id, blobs: PackBlob[]): Promise<void> {
    const start = blobs[0]!.loc.offset;
    const last = blobs[blobs.length - 1]!.loc;
    const length = last.offset + last.length - start;
    let data: Uint8Array;
    try {
      data = await this.repo.backend.load('data', packId, start, length);
    } catch (err) {
      if (err instanceof ResticError && err.message.includes(packId)) throw err;
      throw new ResticError(`pack ${packId}: ${(err as Error).message}`);
    }
    if (data.length !== length) throw new IntegrityError(`pack ${packId}: read ${data.length} bytes at offset ${start}, expected ${length}`);
    const writes: Promise<void>[] = [];
    for (const b of blobs) {
      if (this.failed) break;
      const rel = b.loc.offset - start;
      const plain = this.repo.decodeBlob(b.loc, packId, data.subarray(rel, rel + b.loc.length));
      for (const t of b.targets) writes.push(this.write(t.file, plain, t.offset));
    }
    const results = await Promise.allSettled(writes);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
  }

  private async write(file: FileState, data: Uint8Array, offset: number): Promise<void> {
    const fh = await this.acquire(file);
    try {
      if (this.options.sparse) await writeSparse(fh, data, offset);
      else await writeAll(fh, data, 0, data.length, offset);
    } catch (err) {
      throw new ResticError(`${file.location}: ${(err as Error).message}`);
    } finally {
      file.busy--;
    }
    this.options.onBytes?.(data.length);
    if (--file.pending === 0) await this.close(file);
  }

  private async acquire(file: FileState): Promise<FileHandle> {
    if (!file.handle) {
      file.opening ??= this.openFile(file).finally(() => (file.opening = undefined));
      await file.opening;
    }
    // Re-checked: an eviction may have closed the handle while this write waited for another's open.
    if (!file.handle) return this.acquire(file);
    file.busy++;
    this.open.delete(file); // re-inserted last: the set's order is least recently used first
    this.open.add(file);
    return file.handle;
  }

  private async openFile(file: FileState): Promise<FileHandle> {
    const flags = fsc.O_WRONLY | fsc.O_NOFOLLOW | (file.created ? 0 : fsc.O_CREAT | fsc.O_EXCL);
    const fh = await fs.open(file.path, flags, 0o600);
    if (!file.created) {
      file.created = true;
      // The final size up front: the file system can allocate contiguously, and with --sparse the
      // blocks never written stay holes.
      await fh.truncate(file.size);
    }
    file.handle = fh;
    this.open.add(file);
    if (this.open.size > MAX_OPEN_FILES) {
      for (const f of this.open) {
        if (this.open.size <= MAX_OPEN_FILES) break;
        if (f !== file && f.busy === 0) void this.close(f);
      }
    }
    return fh;
  }

  private async close(file: FileState): Promise<void> {
    const fh = file.handle;
    if (!fh) return;
    file.handle = undefined;
    this.open.delete(file);
    await fh.close();
  }
}

/** Splits the blobs needed from one pack into byte ranges that are each read with one request. */
function splitRanges(packId: Id, blobs: PackBlob[]): { packId: Id; blobs: PackBlob[] }[] {
  blobs.sort((a, b) => a.loc.offset - b.loc.offset);
  const ranges: { packId: Id; blobs: PackBlob[] }[] = [];
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

async function writeAll(fh: FileHandle, data: Uint8Array, from: number, to: number, offset: number): Promise<void> {
  while (from < to) {
    const { bytesWritten } = await fh.write(data, from, to - from, offset);
    from += bytesWritten;
    offset += bytesWritten;
  }
}

/** Writes `data` at `offset`, skipping file-system blocks that are entirely zero (they stay holes). */
async function writeSparse(fh: FileHandle, data: Uint8Array, offset: number): Promise<void> {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let runStart = -1;
  let pos = 0;
  while (pos < buf.length) {
    // Blocks are aligned to file offsets, so a hole always covers whole blocks.
    const blockEnd = Math.min(buf.length, pos + SPARSE_BLOCK - ((offset + pos) % SPARSE_BLOCK));
    const zero = buf.subarray(pos, blockEnd).equals(ZEROS.subarray(0, blockEnd - pos));
    if (zero && runStart >= 0) {
      await writeAll(fh, buf, runStart, pos, offset + runStart);
      runStart = -1;
    } else if (!zero && runStart < 0) runStart = pos;
    pos = blockEnd;
  }
  if (runStart >= 0) await writeAll(fh, buf, runStart, buf.length, offset + runStart);
}

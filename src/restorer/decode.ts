// Decoding pack ranges and writing their blobs into files. This runs on worker threads when they are
// available: MAC, AES, zstd and SHA-256 are most of a restore's CPU time, and doing the writes there
// too keeps the plaintext off the main thread (which only reads packs).
import { createHash } from 'node:crypto';
import { closeSync, constants as fsc, existsSync, ftruncateSync, openSync, writeSync, writevSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CiphertextError, decrypt, type MasterKey } from '../crypto/index.js';
import { IntegrityError, ResticError } from '../errors.js';
import { decompress } from '../repo/compression.js';
import type { Id } from '../repo/id.js';
import type { PackedBlob } from '../repo/pack.js';

/** Where a blob goes: a file (created on first use with its final size) and an offset in it. */
export interface BlobTarget {
  /** The file's path bytes as a latin1 string (cheap to pass to a worker, exact for any bytes). */
  path: string;
  /** The file's final size. */
  size: number;
  offset: number;
}

/** One blob of a range; `offset` is relative to the start of the range. */
export interface RangeBlob extends PackedBlob {
  targets: BlobTarget[];
}

export interface RangeJob {
  packId: Id;
  /** The stored bytes of the range. */
  data: Uint8Array;
  blobs: RangeBlob[];
}

const integrity = (packId: Id, blob: PackedBlob, what: string) => new IntegrityError(`pack ${packId}: ${blob.type} blob ${blob.id}: ${what}`);

function decryptBlob(key: MasterKey, packId: Id, blob: PackedBlob, stored: Uint8Array): Uint8Array {
  try {
    return decrypt(key, stored);
  } catch (err) {
    if (err instanceof CiphertextError) throw integrity(packId, blob, 'ciphertext verification failed');
    throw err;
  }
}

/**
 * The plaintext of a stored blob as consecutive pieces (views into the decrypted buffer where the
 * zstd frame stores its data raw), after checking MAC, decompression and SHA-256.
 */
export function decodeBlobPieces(key: MasterKey, packId: Id, blob: PackedBlob, stored: Uint8Array): Uint8Array[] {
  const plain = decryptBlob(key, packId, blob, stored);
  let pieces = [plain];
  if (blob.uncompressedLength !== undefined) {
    const expected = blob.uncompressedLength;
    pieces =
      storedFrame(plain, expected) ??
      (() => {
        try {
          return [decompress(plain, expected)];
        } catch (err) {
          throw integrity(packId, blob, (err as Error).message);
        }
      })();
  }
  const hash = createHash('sha256');
  for (const p of pieces) hash.update(p);
  if (hash.digest('hex') !== blob.id) throw integrity(packId, blob, 'content does not match its id');
  return pieces;
}

/**
 * The content of a zstd frame made only of raw and RLE blocks, as pieces (raw blocks are views into
 * `frame`), or undefined for anything else (then the real decoder runs). restic compresses every
 * blob of a v2 repository, so incompressible data arrives as such frames, and handing their blocks
 * on is much cheaper than running the WebAssembly decoder. The frame's optional checksum is not
 * checked: the caller checks the SHA-256 of the result.
 */
export function storedFrame(frame: Uint8Array, expectedLength: number): Uint8Array[] | undefined {
  // Magic number 0xFD2FB528, little endian.
  if (frame.length < 6 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd) return undefined;
  const descriptor = frame[4]!;
  if (descriptor & 0x08) return undefined; // reserved bit
  const singleSegment = (descriptor & 0x20) !== 0;
  const fcsFlag = descriptor >> 6;
  const dictBytes = [0, 1, 2, 4][descriptor & 3]!;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  let pos = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
  const pieces: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    if (pos + 3 > frame.length) return undefined;
    const header = frame[pos]! | (frame[pos + 1]! << 8) | (frame[pos + 2]! << 16);
    pos += 3;
    const type = (header >> 1) & 3;
    const blockSize = header >>> 3;
    if (size + blockSize > expectedLength) return undefined;
    if (type === 0) {
      if (pos + blockSize > frame.length) return undefined;
      pieces.push(frame.subarray(pos, pos + blockSize));
      pos += blockSize;
    } else if (type === 1) {
      if (pos + 1 > frame.length) return undefined;
      pieces.push(Buffer.alloc(blockSize, frame[pos]!));
      pos += 1;
    } else return undefined;
    size += blockSize;
    if (header & 1) break;
  }
  const checksum = descriptor & 0x04 ? 4 : 0;
  // Exactly one frame of exactly the expected size; anything else goes to the real decoder.
  if (pos + checksum !== frame.length || size !== expectedLength) return undefined;
  return pieces;
}

const SPARSE_BLOCK = 4096;
const ZEROS = Buffer.alloc(SPARSE_BLOCK);
// Files kept open by one writer; the least recently used is closed beyond this.
const MAX_OPEN = 64;

/** Decodes ranges and writes their blobs with synchronous file I/O (meant for a worker thread). */
export class RangeWriter {
  private readonly fds = new Map<string, number>();
  private readonly sized = new Set<string>();

  constructor(
    private readonly key: MasterKey,
    private readonly sparse: boolean,
  ) {}

  /** Returns the bytes written. */
  write(job: RangeJob): number {
    let bytes = 0;
    for (const b of job.blobs) {
      const pieces = decodeBlobPieces(this.key, job.packId, b, job.data.subarray(b.offset, b.offset + b.length));
      const length = pieces.reduce((n, p) => n + p.length, 0);
      for (const t of b.targets) {
        const fd = this.open(t);
        if (this.sparse) {
          let offset = t.offset;
          for (const p of pieces) {
            writeSparse(fd, p, offset);
            offset += p.length;
          }
        } else writePieces(fd, pieces, t.offset);
        bytes += length;
      }
    }
    return bytes;
  }

  private open(t: BlobTarget): number {
    const key = t.path;
    const fd = this.fds.get(key);
    if (fd !== undefined) {
      // Most recently used last.
      this.fds.delete(key);
      this.fds.set(key, fd);
      return fd;
    }
    // Several writers may create the same file: no O_EXCL, and setting the final size is idempotent
    // (no blob is written past it). The staging directory is ours, O_NOFOLLOW guards the last step.
    const opened = openSync(Buffer.from(key, 'latin1'), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    if (!this.sized.has(key)) {
      // The final size up front: the blocks never written (with sparse) stay holes.
      ftruncateSync(opened, t.size);
      this.sized.add(key);
    }
    this.fds.set(key, opened);
    if (this.fds.size > MAX_OPEN) {
      const [oldKey, oldFd] = this.fds.entries().next().value as [string, number];
      this.fds.delete(oldKey);
      closeSync(oldFd);
    }
    return opened;
  }

  /** Closes every file; the first error is thrown after all are closed. */
  close(): void {
    let first: unknown;
    for (const fd of this.fds.values()) {
      try {
        closeSync(fd);
      } catch (err) {
        first ??= err;
      }
    }
    this.fds.clear();
    if (first !== undefined) throw first;
  }
}

/** Writes the pieces one after the other from `offset`, with as few system calls as possible. */
function writePieces(fd: number, pieces: readonly Uint8Array[], offset: number): void {
  const left = [...pieces];
  while (left.length > 0) {
    let n = writevSync(fd, left, offset);
    offset += n;
    // A short write: drop what was written and go on with the rest.
    while (left.length > 0 && n >= left[0]!.length) n -= left.shift()!.length;
    if (n > 0) left[0] = left[0]!.subarray(n);
  }
}

function writeAll(fd: number, data: Uint8Array, from: number, to: number, offset: number): void {
  while (from < to) {
    const n = writeSync(fd, data, from, to - from, offset);
    from += n;
    offset += n;
  }
}

/** Writes `data` at `offset`, skipping file-system blocks that are entirely zero (they stay holes). */
function writeSparse(fd: number, data: Uint8Array, offset: number): void {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let runStart = -1;
  let pos = 0;
  while (pos < buf.length) {
    // Blocks are aligned to file offsets, so a hole always covers whole blocks.
    const blockEnd = Math.min(buf.length, pos + SPARSE_BLOCK - ((offset + pos) % SPARSE_BLOCK));
    const zero = buf.subarray(pos, blockEnd).equals(ZEROS.subarray(0, blockEnd - pos));
    if (zero && runStart >= 0) {
      writeAll(fd, buf, runStart, pos, offset + runStart);
      runStart = -1;
    } else if (!zero && runStart < 0) runStart = pos;
    pos = blockEnd;
  }
  if (runStart >= 0) writeAll(fd, buf, runStart, buf.length, offset + runStart);
}

/** Messages between RangeDispatcher and its workers. */
export type WorkerRequest = { seq: number; job: RangeJob } | { seq: number; close: true };
export type WorkerReply = { seq: number; bytes: number } | { seq: number; error: string; integrity: boolean };

export function errorReply(seq: number, err: unknown): WorkerReply {
  return { seq, error: (err as Error).message, integrity: err instanceof IntegrityError };
}

// Compiled next to this file; absent when running from the TypeScript sources (tests), which then
// decode and write on the calling thread.
const WORKER_URL = new URL('./decode-worker.js', import.meta.url);

interface Pending {
  resolve: (bytes: number) => void;
  reject: (err: Error) => void;
}

/** Runs range jobs on worker threads, or on the calling thread where there are none. */
export class RangeDispatcher {
  private readonly workers: Worker[] = [];
  private readonly busy: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly local?: RangeWriter;
  private seq = 0;
  private failure?: ResticError;
  private closing = false;
  private closed?: Promise<void>;
  private readonly exited = new Set<number>();

  /** `threads` 0 works on the calling thread. */
  constructor(key: MasterKey, sparse: boolean, threads: number) {
    if (threads > 0 && existsSync(fileURLToPath(WORKER_URL))) {
      for (let i = 0; i < threads; i++) this.spawn(key, sparse);
    } else this.local = new RangeWriter(key, sparse);
  }

  /** Worker threads worth starting for `bytes` of content: none for small restores (startup costs). */
  static threadsFor(bytes: number): number {
    return bytes < 16 * 1024 * 1024 ? 0 : Math.max(1, Math.min(4, availableParallelism()));
  }

  /** How many jobs may usefully be in flight. */
  get parallelism(): number {
    return Math.max(1, this.workers.length);
  }

  private spawn(key: MasterKey, sparse: boolean): void {
    const index = this.workers.length;
    const w = new Worker(WORKER_URL, { workerData: { key, sparse } });
    w.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.seq);
      if (!p) return;
      this.pending.delete(reply.seq);
      this.busy[index]!--;
      if ('error' in reply) p.reject(reply.integrity ? new IntegrityError(reply.error) : new ResticError(reply.error));
      else p.resolve(reply.bytes);
    });
    // A thread that dies takes its jobs with it: fail everything waiting, and any later job.
    const fail = (why: string) => {
      this.failure ??= new ResticError(`restore thread failed: ${why}`);
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    w.on('error', (err) => fail(err.message));
    w.on('exit', (code) => {
      this.exited.add(index);
      if (!this.closing) fail(`exited with code ${code}`);
    });
    this.workers.push(w);
    this.busy.push(0);
  }

  private send(index: number, req: WorkerRequest, transfer: ArrayBuffer[]): Promise<number> {
    if (this.failure && !('close' in req)) return Promise.reject(this.failure);
    this.busy[index]!++;
    return new Promise((resolve, reject) => {
      this.pending.set(req.seq, { resolve, reject });
      this.workers[index]!.postMessage(req, transfer);
    });
  }

  /** Decodes and writes one range; `job.data` is handed over and must not be used after. Returns bytes written. */
  async run(job: RangeJob): Promise<number> {
    if (this.local) return this.local.write(job);
    // Only a buffer of its own can be transferred; small reads may share a pool. A copy, not slice(),
    // which on a Buffer is a view of the same memory.
    const data = job.data.byteOffset === 0 && job.data.byteLength === job.data.buffer.byteLength ? job.data : new Uint8Array(job.data);
    let index = 0;
    for (let i = 1; i < this.busy.length; i++) if (this.busy[i]! < this.busy[index]!) index = i;
    return this.send(index, { seq: this.seq++, job: { ...job, data } }, [data.buffer as ArrayBuffer]);
  }

  /** Closes all files and stops the workers (once, however often called); throws the first close error. */
  close(): Promise<void> {
    this.closed ??= this.shutDown();
    return this.closed;
  }

  private async shutDown(): Promise<void> {
    try {
      if (this.local) this.local.close();
      else {
        // Every live thread closes its files, even after another failed.
        const live = this.workers.map((_, i) => i).filter((i) => !this.exited.has(i));
        const results = await Promise.allSettled(live.map((i) => this.send(i, { seq: this.seq++, close: true }, [])));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } finally {
      this.closing = true;
      await Promise.all(this.workers.map((w) => w.terminate()));
    }
  }
}

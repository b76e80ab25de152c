import { closeSync, constants, fstatSync, openSync, read, readSync } from 'node:fs';
import { MIN_SIZE, type Chunker } from '../chunker/index.js';
import type { Id } from '../repo/id.js';
import { Semaphore } from '../util/concurrency.js';
import type { BlobSaver, SavedBlob } from './blob-saver.js';
import { ItemError, pathError } from './item-error.js';
import { emptyItemStats, type ItemStats } from './stats.js';

/** Read size for large files; two such reads alternate so the next one runs while a block is chunked. */
const READ_SIZE = 1024 * 1024;
/** Blobs of one file being hashed, compressed, encrypted or waiting for the packer at once. */
const BLOBS_IN_FLIGHT = 2;

export interface FileJob {
  /** Absolute path (raw bytes). */
  path: Buffer;
  /** Called when a reader takes the file. */
  onStart?: () => void;
  /** Called for each chunk read, with its length. */
  onBlob?: (bytes: number) => void;
}

export interface SavedFile {
  content: Id[];
  /** Bytes read (the node's size). */
  size: number;
  stats: ItemStats;
}

export interface FileSaverOptions {
  /** Large files streamed at once (restic reads two files at once). */
  concurrency: number;
  /** Counts every byte read from files; tests use it to prove that unchanged files are not read. */
  onRead?: (bytes: number) => void;
}

/**
 * Reads files, splits them into content-defined chunks and stores the chunks as data blobs. Large
 * files are streamed `concurrency` at a time; enqueue() waits while the queue of files being saved is
 * full, which keeps the directory walk from running far ahead.
 */
export class FileSaver {
  private readonly readers: Semaphore;
  private readonly queue: Semaphore;

  constructor(
    private readonly blobs: BlobSaver,
    private readonly chunker: Chunker,
    private readonly options: FileSaverOptions,
  ) {
    this.readers = new Semaphore(options.concurrency);
    this.queue = new Semaphore(options.concurrency * 8);
  }

  /** Resolves once the job is queued; `done` settles when the file is stored (ItemError on file problems). */
  async enqueue(job: FileJob): Promise<{ done: Promise<SavedFile> }> {
    let admitted!: () => void;
    const queued = new Promise<void>((resolve) => (admitted = resolve));
    const done = this.queue.run(async () => {
      admitted();
      return this.saveFile(job);
    });
    // The caller attaches its handlers later; until then a failure must not count as unhandled.
    done.catch(() => undefined);
    await queued;
    return { done };
  }

  private async saveFile(job: FileJob): Promise<SavedFile> {
    job.onStart?.();
    const shown = job.path.toString();
    // Synchronous open/fstat/close: for files in the page cache they cost a fraction of the thread-pool
    // round trips of the promise API, which dominate when saving many small files.
    let fd: number;
    try {
      fd = openSync(job.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw pathError('open', shown, err);
    }
    try {
      let size: number;
      try {
        const st = fstatSync(fd);
        // Swapped for something else since the walk looked at it.
        if (!st.isFile()) throw new ItemError(`file ${shown} changed type, refusing to archive`);
        size = st.size;
      } catch (err) {
        if (err instanceof ItemError) throw err;
        throw pathError('stat', shown, err);
      }
      return await this.store(job, fd, size, shown);
    } finally {
      try {
        closeSync(fd);
      } catch {
        // Nothing left to do with it.
      }
    }
  }

  private async store(job: FileJob, fd: number, size: number, shown: string): Promise<SavedFile> {
    let total = 0;
    const counted = (n: number) => {
      total += n;
      this.options.onRead?.(n);
    };
    // The chunker never cuts before MIN_SIZE bytes, so a small file is one blob: read it whole, at once.
    let head: Buffer | undefined;
    if (size <= MIN_SIZE) {
      head = readSmall(fd, size, shown, counted);
      if (head.length <= MIN_SIZE) {
        const one = await this.storeChunks(head.length > 0 ? [head] : [], job.onBlob);
        return { ...one, size: total };
      }
      // The file grew past MIN_SIZE while being read: chunk it like any other.
    }
    // Large files are streamed, `concurrency` at a time (small ones are read at once, above).
    return this.readers.run(async () => {
      const rest = await this.storeChunks(this.chunker.chunks(blocks(fd, head, shown, counted)), job.onBlob);
      return { ...rest, size: total };
    });
  }

  /** Stores chunks as data blobs, a few at once, keeping their order in the content list. */
  async storeChunks(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, onBlob?: (bytes: number) => void): Promise<{ content: Id[]; stats: ItemStats }> {
    const stats = emptyItemStats();
    const content: Id[] = [];
    const record = (b: SavedBlob) => {
      content.push(b.id);
      if (b.known) return;
      stats.dataBlobs++;
      stats.dataSize += b.length;
      stats.dataSizeInRepo += b.sizeInRepo;
    };
    const inFlight: Promise<SavedBlob>[] = [];
    try {
      for await (const chunk of chunks) {
        const saving = this.blobs.save('data', chunk);
        saving.catch(() => undefined);
        inFlight.push(saving);
        onBlob?.(chunk.length);
        if (inFlight.length >= BLOBS_IN_FLIGHT) record(await inFlight.shift()!);
      }
      while (inFlight.length) record(await inFlight.shift()!);
    } finally {
      // On a read error, let the blobs already handed over settle before the caller moves on.
      await Promise.allSettled(inFlight);
    }
    return { content, stats };
  }
}

/** Reads a file expected to hold `size` bytes to its end, or to just past MIN_SIZE if it grew. */
function readSmall(fd: number, size: number, shown: string, counted: (n: number) => void): Buffer {
  let buf = Buffer.allocUnsafe(size + 1);
  let got = 0;
  for (;;) {
    if (got === buf.length) {
      if (got > MIN_SIZE) return buf;
      const bigger = Buffer.allocUnsafe(Math.min(MIN_SIZE + 1, buf.length * 2));
      buf.copy(bigger, 0, 0, got);
      buf = bigger;
    }
    let n: number;
    try {
      n = readSync(fd, buf, got, buf.length - got, null);
    } catch (err) {
      throw pathError('read', shown, err);
    }
    if (n === 0) return buf.subarray(0, got);
    got += n;
    counted(n);
  }
}

function readAsync(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

/** The file's remaining bytes (after `head`), reading the next block while the current one is used. */
async function* blocks(fd: number, head: Buffer | undefined, shown: string, counted: (n: number) => void): AsyncGenerator<Uint8Array> {
  if (head?.length) yield head;
  const bufs = [Buffer.allocUnsafeSlow(READ_SIZE), Buffer.allocUnsafeSlow(READ_SIZE)];
  let i = 0;
  let pending = readAsync(fd, bufs[0]!);
  try {
    for (;;) {
      let bytesRead: number;
      try {
        bytesRead = await pending;
      } catch (err) {
        throw pathError('read', shown, err);
      }
      if (bytesRead === 0) return;
      counted(bytesRead);
      const cur = bufs[i]!;
      i ^= 1;
      // The consumer copies each block before asking for the next, so the other buffer is free.
      pending = readAsync(fd, bufs[i]!);
      yield cur.subarray(0, bytesRead);
    }
  } finally {
    // The descriptor is closed after this returns: let an outstanding read finish first.
    await pending.catch(() => undefined);
  }
}

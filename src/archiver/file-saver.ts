import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
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
  /** Files read at once (restic reads two). */
  concurrency: number;
  /** Counts every byte read from files; tests use it to prove that unchanged files are not read. */
  onRead?: (bytes: number) => void;
}

/**
 * Reads files, splits them into content-defined chunks and stores the chunks as data blobs. Files are
 * read `concurrency` at a time; enqueue() waits while the queue is full, which keeps the directory
 * walk from running far ahead of the readers.
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
      return this.readers.run(() => this.saveFile(job));
    });
    // The caller attaches its handlers later; until then a failure must not count as unhandled.
    done.catch(() => undefined);
    await queued;
    return { done };
  }

  private async saveFile(job: FileJob): Promise<SavedFile> {
    job.onStart?.();
    const shown = job.path.toString();
    let fh: FileHandle;
    try {
      fh = await open(job.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw pathError('open', shown, err);
    }
    try {
      let size: number;
      try {
        const st = await fh.stat();
        // Swapped for something else since the walk looked at it.
        if (!st.isFile()) throw new ItemError(`file ${shown} changed type, refusing to archive`);
        size = st.size;
      } catch (err) {
        if (err instanceof ItemError) throw err;
        throw pathError('stat', shown, err);
      }
      return await this.store(job, fh, size, shown);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private async store(job: FileJob, fh: FileHandle, size: number, shown: string): Promise<SavedFile> {
    let total = 0;
    const counted = (n: number) => {
      total += n;
      this.options.onRead?.(n);
    };

    // The chunker never cuts before MIN_SIZE bytes, so a small file is one blob: read it whole.
    let head: Buffer | undefined;
    if (size <= MIN_SIZE) {
      head = await readUpTo(fh, size, shown, counted);
      const more = await readUpTo(fh, 1, shown, counted);
      if (more.length === 0) {
        const one = await this.storeChunks(head.length > 0 ? [head] : [], job.onBlob);
        return { ...one, size: total };
      }
      head = Buffer.concat([head, more]); // the file grew: chunk it like any other
    }

    const rest = await this.storeChunks(this.chunker.chunks(blocks(fh, head, shown, counted)), job.onBlob);
    return { ...rest, size: total };
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

/** Reads until `n` bytes or end of file. */
async function readUpTo(fh: FileHandle, n: number, shown: string, counted: (n: number) => void): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, got, n - got, null));
    } catch (err) {
      throw pathError('read', shown, err);
    }
    if (bytesRead === 0) break;
    got += bytesRead;
    counted(bytesRead);
  }
  return got === n ? buf : buf.subarray(0, got);
}

/** The file's remaining bytes (after `head`), reading the next block while the current one is used. */
async function* blocks(fh: FileHandle, head: Buffer | undefined, shown: string, counted: (n: number) => void): AsyncGenerator<Uint8Array> {
  if (head?.length) yield head;
  const bufs = [Buffer.allocUnsafeSlow(READ_SIZE), Buffer.allocUnsafeSlow(READ_SIZE)];
  let i = 0;
  const read = (buf: Buffer) => fh.read(buf, 0, READ_SIZE, null);
  let pending = read(bufs[0]!);
  try {
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await pending);
      } catch (err) {
        throw pathError('read', shown, err);
      }
      if (bytesRead === 0) return;
      counted(bytesRead);
      const cur = bufs[i]!;
      i ^= 1;
      // The consumer copies each block before asking for the next, so the other buffer is free.
      pending = read(bufs[i]!);
      yield cur.subarray(0, bytesRead);
    }
  } finally {
    await pending.catch(() => undefined);
  }
}

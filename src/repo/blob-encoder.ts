import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encrypt, masterKeyToJSON, type MasterKey } from '../crypto/index.js';
import { ResticError } from '../errors.js';
import { compressBlob, type CompressionMode } from './compression.js';

/** A blob as it goes into a pack: encrypted, and compressed first when that helps. */
export interface EncodedBlob {
  stored: Uint8Array;
  /** Set when `stored` holds compressed data. */
  uncompressedLength?: number;
}

export function encodeBlob(key: MasterKey, plaintext: Uint8Array, mode: CompressionMode): EncodedBlob {
  const compressed = compressBlob(plaintext, mode);
  if (!compressed) return { stored: encrypt(key, plaintext) };
  return { stored: encrypt(key, compressed), uncompressedLength: plaintext.length };
}

/** Compresses and encrypts blobs, possibly on other threads. */
export interface BlobEncoder {
  encode(plaintext: Uint8Array, mode: CompressionMode): Promise<EncodedBlob>;
  close(): Promise<void>;
}

export interface WorkerRequest {
  id: number;
  plaintext: Uint8Array;
  mode: CompressionMode;
}

export type WorkerReply = { id: number; stored: Uint8Array; uncompressedLength?: number } | { id: number; error: string };

/**
 * Compression and encryption are the costliest steps of a backup after chunking; worker threads move
 * them off the thread that reads and chunks files, so backups use more than one core.
 */
class WorkerPoolEncoder implements BlobEncoder {
  private readonly workers: { worker: Worker; busy: number }[];
  private readonly pending = new Map<number, { resolve: (b: EncodedBlob) => void; reject: (e: Error) => void; slot: number }>();
  private nextId = 0;

  constructor(script: URL, key: MasterKey, threads: number) {
    this.workers = Array.from({ length: threads }, (_, slot) => {
      const worker = new Worker(script, { workerData: { key: masterKeyToJSON(key) } });
      worker.on('message', (reply: WorkerReply) => this.settle(reply));
      worker.on('error', (err) => this.failAll(slot, err));
      // After the listeners: adding a 'message' listener refs the worker again.
      worker.unref();
      return { worker, busy: 0 };
    });
  }

  encode(plaintext: Uint8Array, mode: CompressionMode): Promise<EncodedBlob> {
    const slot = this.workers.reduce((best, w, i) => (w.busy < this.workers[best]!.busy ? i : best), 0);
    const entry = this.workers[slot]!;
    const id = this.nextId++;
    // A worker with work in flight must keep the process alive; an idle one must not.
    if (entry.busy++ === 0) entry.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      const request: WorkerRequest = { id, plaintext, mode };
      entry.worker.postMessage(request);
    });
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    const entry = this.workers[p.slot]!;
    if (--entry.busy === 0) entry.worker.unref();
    if ('error' in reply) p.reject(new ResticError(`blob encoder: ${reply.error}`));
    else p.resolve(reply.uncompressedLength === undefined ? { stored: reply.stored } : { stored: reply.stored, uncompressedLength: reply.uncompressedLength });
  }

  private failAll(slot: number, err: Error): void {
    for (const [id, p] of this.pending) {
      if (p.slot !== slot) continue;
      this.pending.delete(id);
      p.reject(new ResticError(`blob encoder thread failed: ${err.message}`));
    }
    this.workers[slot]!.busy = 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/** Below this size a blob is encoded where it is: handing it to a thread costs more than the work. */
const INLINE_BELOW = 64 * 1024;

/** Encodes small blobs on the calling thread and large ones on worker threads started on first use. */
class SplitEncoder implements BlobEncoder {
  private pool?: WorkerPoolEncoder;

  constructor(
    private readonly key: MasterKey,
    private readonly script: URL | undefined,
    private readonly threads: number,
  ) {}

  async encode(plaintext: Uint8Array, mode: CompressionMode): Promise<EncodedBlob> {
    if (!this.script || plaintext.length < INLINE_BELOW) return encodeBlob(this.key, plaintext, mode);
    this.pool ??= new WorkerPoolEncoder(this.script, this.key, this.threads);
    return this.pool.encode(plaintext, mode);
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }
}

/**
 * Worker threads when the compiled worker script is present (it is not when running from TypeScript
 * sources, e.g. under a test runner) and at least one thread is asked for; else the calling thread.
 */
export function createBlobEncoder(key: MasterKey, threads = Math.min(4, availableParallelism())): BlobEncoder {
  const script = new URL('./blob-encoder-worker.js', import.meta.url);
  const usable = threads >= 1 && script.protocol === 'file:' && existsSync(fileURLToPath(script));
  return new SplitEncoder(key, usable ? script : undefined, threads);
}

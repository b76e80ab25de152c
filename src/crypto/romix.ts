import type { Worker } from 'node:worker_threads';
import { instantiate, type WasmMemory } from '../wasm/instantiate.js';
import { ROMIX_WASM } from '../wasm/romix.wasm.js';

/**
 * scrypt's memory-hard part, ROMix (RFC 7914 §5), in WebAssembly SIMD: about 1.5 times as fast as
 * OpenSSL's scrypt on one thread, and two lanes at once in ~1.3 times the time of one. The p lanes are
 * independent, so the caller's thread and a worker thread share them (romixAllLanes). scryptWithRomix
 * adds the PBKDF2 steps around it.
 */

/** Exports of src/wasm/romix.c. */
interface RomixExports {
  memory: WasmMemory;
  prepare(r: number, N: number, count: number): number;
  romix(from: number, to: number): void;
}

/** Lets the event loop run: a scrypt on the caller's thread pauses between slices. */
const pause: () => Promise<void> =
  typeof setImmediate === 'function' ? () => new Promise((resolve) => setImmediate(resolve)) : () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * ROMix steps per kernel call: ~5 ms for r = 8 on this kind of machine. The kernel runs in slices even
 * without pauses because V8 swaps in optimised WebAssembly code only between calls, never inside one.
 */
function stepsPerSlice(r: number): number {
  return Math.max(64, Math.floor(65536 / r));
}

/** One instance of the kernel, with room for two lanes' tables (or one's); reused for lane after lane. */
export class RomixKernel {
  private constructor(
    private readonly k: RomixExports,
    private readonly r: number,
    private readonly N: number,
    private readonly atOnce: number,
  ) {}

  /**
   * A kernel for lanes of 128·r bytes and tables of N blocks that runs `atOnce` (1 or 2) lanes together.
   * Null when it cannot run here: no WebAssembly SIMD, or no memory for the tables.
   */
  static create(r: number, N: number, atOnce: number): RomixKernel | null {
    const k = instantiate<RomixExports>(ROMIX_WASM);
    return k && k.prepare(r, N, atOnce) !== 0 ? new RomixKernel(k, r, N, atOnce) : null;
  }

  /**
   * ROMix over each lane of `lanes`, in place. `pauses`: let the event loop run between slices (on the
   * caller's thread; a worker needs none).
   */
  async run(lanes: Uint8Array, pauses: boolean): Promise<void> {
    const { k, r, N } = this;
    const slice = stepsPerSlice(r);
    for (let off = 0; off < lanes.length; off += this.atOnce * 128 * r) {
      const these = lanes.subarray(off, off + this.atOnce * 128 * r);
      const at = k.prepare(r, N, these.length / (128 * r));
      new Uint8Array(k.memory.buffer, at, these.length).set(these);
      for (let step = 0; step < 2 * N; step += slice) {
        k.romix(step, step + slice);
        if (pauses && step + slice < 2 * N) await pause();
      }
      these.set(new Uint8Array(k.memory.buffer, at, these.length));
    }
  }
}

/** Lanes sent to a worker come back mixed, or null if it could not do them. */
function askWorker(w: Worker, lanes: Uint8Array, r: number, N: number): Promise<Uint8Array | null> {
  return new Promise((resolve) => {
    const done = (result: Uint8Array | null): void => {
      w.off('message', onMessage);
      w.off('error', onFailure);
      w.off('exit', onFailure);
      w.unref();
      resolve(result);
    };
    const onMessage = (m: unknown): void => done(m instanceof Uint8Array && m.length === lanes.length ? m : null);
    const onFailure = (): void => done(null);
    w.on('message', onMessage);
    w.on('error', onFailure);
    w.on('exit', onFailure);
    w.ref();
    w.postMessage({ lanes, r, N });
  });
}

/**
 * Lanes not started yet, [front, back): the worker takes them from the front, two at a time, and the
 * caller's thread one at a time from the back.
 */
class LaneQueue {
  private front = 0;
  private back: number;

  constructor(
    private readonly lanes: Uint8Array,
    private readonly block: number,
    p: number,
  ) {
    this.back = p;
  }

  private lanesAt(from: number, to: number): Uint8Array {
    return this.lanes.subarray(from * this.block, to * this.block);
  }

  takeFront(most: number): Uint8Array | undefined {
    if (this.front >= this.back) return undefined;
    const n = Math.min(most, this.back - this.front);
    this.front += n;
    return this.lanesAt(this.front - n, this.front);
  }

  takeBack(): Uint8Array | undefined {
    if (this.front >= this.back) return undefined;
    this.back--;
    return this.lanesAt(this.back, this.back + 1);
  }
}

/** The worker takes lanes from the queue until it is empty; returns the lanes it failed on, if any. */
async function workerTakes(w: Worker, queue: LaneQueue, r: number, N: number): Promise<Uint8Array | undefined> {
  try {
    for (let unit = queue.takeFront(2); unit; unit = queue.takeFront(2)) {
      const mixed = await askWorker(w, unit, r, N);
      if (!mixed) return unit;
      unit.set(mixed);
    }
    return undefined;
  } finally {
    void w.terminate();
  }
}

async function laneWorker(): Promise<Worker | null> {
  try {
    return (await import('./romix-thread.js')).takeRomixWorker();
  } catch {
    return null; // not Node.js, or no worker threads
  }
}

/**
 * ROMix over all p lanes of `lanes` (p·128·r bytes, in place), shared between this thread and, where
 * one can start, a worker thread: each takes more lanes whenever it is free. The worker takes two at a
 * time (it has a core to itself). This thread takes one at a time, with one table, which spares it
 * the page faults of a second: it also runs the caller's other work between slices, such as loading
 * the code that comes after. False when the kernel cannot run here; `lanes` is then unchanged.
 */
export async function romixAllLanes(lanes: Uint8Array, r: number, N: number, p: number): Promise<boolean> {
  // Up front, so that a table which does not fit fails before any lane is touched.
  const kernel = RomixKernel.create(r, N, 1);
  if (!kernel) return false;
  const queue = new LaneQueue(lanes, 128 * r, p);
  const worker = p > 1 ? await laneWorker() : null;
  const mine = async (): Promise<void> => {
    for (let lane = queue.takeBack(); lane; lane = queue.takeBack()) await kernel.run(lane, true);
  };
  const [, failed] = await Promise.all([mine(), worker ? workerTakes(worker, queue, r, N) : undefined]);
  if (failed) await kernel.run(failed, true);
  return true;
}

/** PBKDF2-HMAC-SHA-256 with one iteration, as scrypt uses it. */
export type Pbkdf2Once = (password: Uint8Array, salt: Uint8Array, dkLen: number) => Uint8Array;

/**
 * scrypt (RFC 7914) with 64 bytes of output: `pbkdf2` around romixAllLanes. Null when the kernel cannot
 * run here; callers then use their own scrypt.
 */
export async function scryptWithRomix(
  pbkdf2: Pbkdf2Once,
  password: Uint8Array,
  salt: Uint8Array,
  { N, r, p }: { N: number; r: number; p: number },
): Promise<Uint8Array | null> {
  const lanes = pbkdf2(password, salt, p * 128 * r);
  if (!(await romixAllLanes(lanes, r, N, p))) return null;
  return pbkdf2(password, lanes, 64);
}

import type { Worker } from 'node:worker_threads';
import { instantiate, type WasmMemory } from '../wasm/instantiate.js';
import { ROMIX_WASM } from '../wasm/romix.wasm.js';

/**
 * scrypt's memory-hard part, ROMix (RFC 7914 §5), in WebAssembly SIMD: about 1.5 times as fast as
 * OpenSSL's scrypt on one thread. Its p lanes are independent, so with p > 1 half of them run on a
 * worker thread while the caller's thread runs the others: restic's usual N=2^15, r=8, p=3 then takes
 * about the time of two lanes instead of OpenSSL's three in a row. scryptWithRomix adds the PBKDF2
 * steps around it.
 */

/** Exports of src/wasm/romix.c. */
interface RomixExports {
  memory: WasmMemory;
  prepare(r: number, N: number): number;
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

/**
 * ROMix over each 128·r-byte lane of `lanes`, in place. False when the kernel cannot run here (no
 * WebAssembly SIMD, or no memory for the 128·r·N-byte table); `lanes` is then unchanged.
 * `pauses`: let the event loop run between slices (the caller's thread; a worker needs none).
 */
export async function romixLanes(lanes: Uint8Array, r: number, N: number, pauses: boolean): Promise<boolean> {
  // A fresh instance per call: its memory (the table) is garbage once this returns.
  const k = instantiate<RomixExports>(ROMIX_WASM);
  const at = k?.prepare(r, N) ?? 0;
  if (!k || at === 0) return false;
  const block = 128 * r;
  const slice = stepsPerSlice(r);
  for (let off = 0; off < lanes.length; off += block) {
    new Uint8Array(k.memory.buffer, at, block).set(lanes.subarray(off, off + block));
    for (let step = 0; step < 2 * N; step += slice) {
      k.romix(step, step + slice);
      if (pauses && step + slice < 2 * N) await pause();
    }
    lanes.set(new Uint8Array(k.memory.buffer, at, block), off);
  }
  return true;
}

let spareWorker: Promise<Worker | null> | undefined;

// Compiled next to this file; absent when running from the TypeScript sources (tests), where all
// lanes then run on the calling thread.
const WORKER_URL = new URL('./romix-worker.js', import.meta.url);

function startWorker(): Promise<Worker | null> {
  return Promise.all([import('node:worker_threads'), import('node:fs')]).then(
    ([{ Worker }, { existsSync }]) => {
      if (WORKER_URL.protocol !== 'file:' || !existsSync(WORKER_URL)) return null;
      const w = new Worker(WORKER_URL);
      // An idle worker must not keep the process alive; it is ref'd while it has lanes to do.
      w.unref();
      w.on('error', () => undefined);
      return w;
    },
    () => null,
  );
}

/**
 * Starts the lane worker ahead of scrypt (it takes ~50 ms to boot), e.g. while the key file is read.
 * Without it, the next scrypt starts one itself.
 */
export function prestartRomixWorker(): void {
  spareWorker ??= startWorker();
}

async function takeWorker(): Promise<Worker | null> {
  const w = spareWorker ?? startWorker();
  spareWorker = undefined;
  return w;
}

/** The worker's lanes, or null if it failed (the caller then does them itself). */
function romixOnWorker(w: Worker, lanes: Uint8Array, r: number, N: number): Promise<Uint8Array | null> {
  return new Promise((resolve) => {
    const done = (result: Uint8Array | null): void => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
      void w.terminate();
      resolve(result);
    };
    const onMessage = (m: unknown): void => done(m instanceof Uint8Array ? m : null);
    const onError = (): void => done(null);
    const onExit = (): void => done(null);
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    w.ref();
    w.postMessage({ lanes, r, N });
  });
}

/**
 * ROMix over all p lanes of `lanes` (p·128·r bytes, in place), the first ⌊p/2⌋ on this thread and
 * the others on a worker thread where there is one. False when the kernel cannot run here.
 */
export async function romixAllLanes(lanes: Uint8Array, r: number, N: number, p: number): Promise<boolean> {
  const block = 128 * r;
  const mine = Math.floor(p / 2);
  const worker = p > 1 ? await takeWorker() : null;
  if (!worker) return romixLanes(lanes, r, N, true);
  const theirs = lanes.slice(mine * block);
  const remote = romixOnWorker(worker, theirs, r, N);
  const [ok, done] = await Promise.all([romixLanes(lanes.subarray(0, mine * block), r, N, true), remote]);
  if (!ok) return false;
  if (done) {
    lanes.set(done, mine * block);
    return true;
  }
  return romixLanes(lanes.subarray(mine * block), r, N, true);
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

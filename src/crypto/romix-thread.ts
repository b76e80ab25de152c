import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * The worker thread that runs some of scrypt's lanes (romix.ts), on Node.js. Booting one takes ~0.1 s
 * of CPU on a small machine, so the CLI starts it first thing, while its other code loads on this
 * thread; a scrypt that finds none starts its own.
 */

// Compiled next to this file; absent when running from the TypeScript sources (tests), where all lanes
// then run on the calling thread.
const WORKER_URL = new URL('./romix-worker.js', import.meta.url);

let spare: Worker | null | undefined;

function startWorker(): Worker | null {
  if (WORKER_URL.protocol !== 'file:' || !existsSync(WORKER_URL)) return null;
  try {
    const w = new Worker(WORKER_URL);
    // An idle worker must not keep the process alive; it is ref'd while it has lanes to do.
    w.unref();
    w.on('error', () => undefined);
    return w;
  } catch {
    return null;
  }
}

/** Starts the lane worker ahead of the next scrypt. */
export function prestartRomixWorker(): void {
  if (spare === undefined) spare = startWorker();
}

/** The prestarted worker, or a new one; null where none can start. The caller terminates it. */
export function takeRomixWorker(): Worker | null {
  const w = spare === undefined ? startWorker() : spare;
  spare = undefined;
  return w;
}

import { setImmediate as nextTurn } from 'node:timers/promises';

// Files in the page cache are read with synchronous calls and unchanged files need no I/O at all, so
// saving thousands of them is one long chain of promise callbacks; without a break the event loop never
// gets back to timers (progress output) or signal handlers (Ctrl-C) until the whole backup is done.
const SLICE_MS = 50;
let sliceStart = performance.now();

/** Lets the event loop run once at least every 50 ms of work. */
export async function yieldToEventLoop(): Promise<void> {
  if (performance.now() - sliceStart < SLICE_MS) return;
  await nextTurn();
  sliceStart = performance.now();
}

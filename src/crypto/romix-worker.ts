// Worker thread of romixAllLanes (romix.ts): runs ROMix over the lanes it is sent, once, and replies
// with them, or with null when the kernel cannot run here.
import { parentPort } from 'node:worker_threads';
import { romixLanes } from './romix.js';

parentPort!.once('message', ({ lanes, r, N }: { lanes: Uint8Array; r: number; N: number }) => {
  void romixLanes(lanes, r, N, false).then(
    (ok) => parentPort!.postMessage(ok ? lanes : null),
    () => parentPort!.postMessage(null),
  );
});

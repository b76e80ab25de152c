// Worker thread of romixAllLanes (romix.ts): runs ROMix over each set of lanes it is sent and replies
// with them, or with null when the kernel cannot run here.
import { parentPort } from 'node:worker_threads';
import { RomixKernel } from './romix.js';

let kernel: { r: number; N: number; kernel: RomixKernel | null } | undefined;

parentPort!.on('message', ({ lanes, r, N }: { lanes: Uint8Array; r: number; N: number }) => {
  // One kernel (and table memory) for all the lanes of a scrypt.
  if (kernel?.r !== r || kernel.N !== N) kernel = { r, N, kernel: RomixKernel.create(r, N, 2) };
  void (kernel.kernel?.run(lanes, false) ?? Promise.reject(new Error('no kernel'))).then(
    () => parentPort!.postMessage(lanes),
    () => parentPort!.postMessage(null),
  );
});

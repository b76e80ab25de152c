// Worker thread of RangeDispatcher (decode.ts): decodes pack ranges and writes their blobs to files.
import { parentPort, workerData } from 'node:worker_threads';
import type { MasterKey } from '../crypto/index.js';
import { initCompression } from '../repo/compression.js';
import { errorReply, RangeWriter, type WorkerReply, type WorkerRequest } from './decode.js';

const { key, sparse } = workerData as { key: MasterKey; sparse: boolean };
await initCompression();
const writer = new RangeWriter(key, sparse);

parentPort!.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    if ('close' in req) {
      writer.close();
      reply = { seq: req.seq, bytes: 0 };
    } else reply = { seq: req.seq, bytes: writer.write(req.job) };
  } catch (err) {
    reply = errorReply(req.seq, err);
  }
  parentPort!.postMessage(reply);
});

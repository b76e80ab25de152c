// Worker thread of the blob encoder: compresses and encrypts the blobs the main thread sends.
import { parentPort, workerData } from 'node:worker_threads';
import { masterKeyFromJSON } from '../crypto/index.js';
import { encodeBlob, type WorkerReply, type WorkerRequest } from './blob-encoder.js';
import { initCompression } from './compression.js';

await initCompression();
const key = masterKeyFromJSON((workerData as { key: unknown }).key);
const port = parentPort!;

port.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    const { stored, uncompressedLength } = encodeBlob(key, req.plaintext, req.mode);
    reply = uncompressedLength === undefined ? { id: req.id, stored } : { id: req.id, stored, uncompressedLength };
    // Hand the bytes over without a copy when they own their whole buffer (not a slice of Node's pool).
    const own = stored.byteOffset === 0 && stored.byteLength === stored.buffer.byteLength;
    port.postMessage(reply, own ? [stored.buffer as ArrayBuffer] : []);
  } catch (err) {
    reply = { id: req.id, error: (err as Error).message };
    port.postMessage(reply);
  }
});

/**
 * Chunker throughput over 256 MiB of random data (random polynomial per run).
 * Build with `npm run build`, then run `node dist/bench/chunker.js [MiB]`.
 */
import { randomFillSync } from 'node:crypto';
import { Chunker, cutPoints, randomPolynomial } from '../src/chunker/index.js';

const mib = Number(process.argv[2] ?? 256);
const data = Buffer.allocUnsafe(mib * 1024 * 1024);
for (let off = 0; off < data.length; off += 1 << 30) randomFillSync(data, off, Math.min(1 << 30, data.length - off));

let t = performance.now();
const pol = randomPolynomial();
console.log(`randomPolynomial: ${(performance.now() - t).toFixed(1)} ms (${pol.toString(16)})`);

t = performance.now();
new Chunker(pol);
console.log(`table setup: ${(performance.now() - t).toFixed(1)} ms`);

function report(name: string, ms: number, chunks: number): void {
  const mbps = data.length / 1e6 / (ms / 1000);
  console.log(`${name}: ${mbps.toFixed(0)} MB/s (${(ms / 1000).toFixed(2)} s, ${chunks} chunks, avg ${(data.length / chunks / 1024).toFixed(0)} KiB)`);
}

async function* blocksOf(size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; off += size) yield data.subarray(off, off + size);
}

for (let round = 0; round < 3; round++) {
  t = performance.now();
  const ends = cutPoints(pol, data);
  report(`cutPoints (in memory)       #${round + 1}`, performance.now() - t, ends.length);

  t = performance.now();
  let n = 0;
  for await (const c of new Chunker(pol).chunks(blocksOf(1024 * 1024))) n += c.length > 0 ? 1 : 0;
  report(`Chunker.chunks (1 MiB blocks) #${round + 1}`, performance.now() - t, n);
}

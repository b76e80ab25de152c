/**
 * Chunker throughput over 256 MiB of random data (random polynomial per run).
 * Build with `npm run build`, then run `node dist/bench/chunker.js [MiB] [rounds]`.
 * Prints wall-clock and CPU-time rates: on a shared machine the CPU-time rate is the steadier one.
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

const rounds = Number(process.argv[3] ?? 5);
const best = new Map<string, number>();

async function measure(name: string, run: () => Promise<number>): Promise<void> {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  const chunks = await run();
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - wall0) / 1000;
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const rate = (s: number): number => data.length / 1e6 / s;
  best.set(name, Math.max(best.get(name) ?? 0, rate(cpuS)));
  console.log(
    `${name}: ${rate(wallS).toFixed(0)} MB/s wall, ${rate(cpuS).toFixed(0)} MB/s CPU ` +
      `(${chunks} chunks, avg ${(data.length / chunks / 1024).toFixed(0)} KiB)`,
  );
}

async function* blocksOf(size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; off += size) yield data.subarray(off, off + size);
}

for (let round = 0; round < rounds; round++) {
  await measure('cutPoints (in memory)', async () => cutPoints(pol, data).length);
  await measure('Chunker.chunks (1 MiB blocks)', async () => {
    let n = 0;
    for await (const c of new Chunker(pol).chunks(blocksOf(1024 * 1024))) n += c.length > 0 ? 1 : 0;
    return n;
  });
}
for (const [name, mbps] of best) console.log(`best ${name}: ${mbps.toFixed(0)} MB/s CPU`);

/**
 * WebAssembly kernels against the code they replace: Poly1305 (@noble vs wasm), the chunker's loop
 * (TS vs wasm) and encrypt() of 8 MiB blobs with either Poly1305.
 * Build with `npm run build`, then run `node dist/bench/kernels.js [rounds]`.
 * Variants run alternately within each round; the best round counts. Rates are MB/s (10^6 bytes) of
 * wall-clock and of CPU time: on a shared machine the CPU-time rate is the steadier one.
 */
import * as nc from 'node:crypto';
import { poly1305 as noblePoly1305 } from '@noble/ciphers/_poly1305.js';
import { Chunker, cutPoints } from '../src/chunker/index.js';
import { nodeCryptoSuite } from '../src/crypto/node.js';
import { defaultPoly1305, poly1305Wasm } from '../src/crypto/poly1305-wasm.js';
import { rabinKernel } from '../src/wasm/rabin.js';

const rounds = Number(process.argv[2] ?? 5);
if (!poly1305Wasm || !rabinKernel) throw new Error('WebAssembly kernels did not load');
const wasmPoly1305 = poly1305Wasm;

interface Variant {
  name: string;
  bytes: number;
  run(): unknown;
}

interface Rates {
  wall: number;
  cpu: number;
}

async function measure(group: string, variants: Variant[]): Promise<void> {
  const best = new Map<string, Rates>();
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await v.run();
      const wallS = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuS = (cpu.user + cpu.system) / 1e6;
      const prev = best.get(v.name) ?? { wall: 0, cpu: 0 };
      best.set(v.name, {
        wall: Math.max(prev.wall, v.bytes / 1e6 / wallS),
        cpu: Math.max(prev.cpu, v.bytes / 1e6 / Math.max(cpuS, 1e-6)),
      });
    }
  }
  console.log(group);
  const base = best.get(variants[0]!.name)!;
  for (const v of variants) {
    const b = best.get(v.name)!;
    console.log(
      `  ${v.name.padEnd(28)} ${b.wall.toFixed(0).padStart(6)} MB/s wall ${b.cpu.toFixed(0).padStart(6)} MB/s CPU` +
        `  (×${(b.cpu / base.cpu).toFixed(2)} CPU)`,
    );
  }
}

// Poly1305 over 8 MiB, 32 MiB per run.
const blob = nc.randomBytes(8 * 1024 * 1024);
const macKey = nc.randomBytes(32);
const macRuns = 4;
if (Buffer.compare(wasmPoly1305(blob, macKey), noblePoly1305(blob, macKey)) !== 0) throw new Error('poly1305 mismatch');
await measure('poly1305, 8 MiB messages', [
  { name: '@noble/ciphers', bytes: macRuns * blob.length, run: () => { for (let i = 0; i < macRuns; i++) noblePoly1305(blob, macKey); } },
  { name: 'wasm', bytes: macRuns * blob.length, run: () => { for (let i = 0; i < macRuns; i++) wasmPoly1305(blob, macKey); } },
]);

// encrypt() as the archiver calls it: node:crypto AES-CTR, then the MAC.
const before = nodeCryptoSuite(nc, noblePoly1305);
const after = nodeCryptoSuite(nc, await defaultPoly1305());
const key = after.newMasterKey();
const encRuns = 4;
await measure('encrypt(), 8 MiB blobs (node AES-256-CTR + Poly1305-AES)', [
  { name: 'before: @noble poly1305', bytes: encRuns * blob.length, run: () => { for (let i = 0; i < encRuns; i++) before.encrypt(key, blob); } },
  { name: 'after: wasm poly1305', bytes: encRuns * blob.length, run: () => { for (let i = 0; i < encRuns; i++) after.encrypt(key, blob); } },
]);
const sealed = after.encrypt(key, blob);
await measure('decrypt(), 8 MiB blobs', [
  { name: 'before: @noble poly1305', bytes: encRuns * blob.length, run: () => { for (let i = 0; i < encRuns; i++) before.decrypt(key, sealed); } },
  { name: 'after: wasm poly1305', bytes: encRuns * blob.length, run: () => { for (let i = 0; i < encRuns; i++) after.decrypt(key, sealed); } },
]);

// Chunker over 128 MiB of random data.
const data = Buffer.allocUnsafe(128 * 1024 * 1024);
nc.randomFillSync(data);
const pol = 0x3da3358b4dc173n;
if (cutPoints(pol, data).join() !== cutPoints(pol, data, { wasm: false }).join()) throw new Error('cut points differ');

async function streamed(): Promise<void> {
  async function* blocks(): AsyncGenerator<Uint8Array> {
    for (let off = 0; off < data.length; off += 1 << 20) yield data.subarray(off, off + (1 << 20));
  }
  for await (const c of new Chunker(pol).chunks(blocks())) void c;
}
await measure('chunker, 128 MiB random data', [
  { name: 'cutPoints, TS loop', bytes: data.length, run: () => cutPoints(pol, data, { wasm: false }) },
  { name: 'cutPoints, wasm loop', bytes: data.length, run: () => cutPoints(pol, data) },
  { name: 'Chunker.chunks 1 MiB, wasm', bytes: data.length, run: streamed },
]);

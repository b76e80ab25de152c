import { instantiate, type WasmMemory } from './instantiate.js';
import { PROBE_WASM } from './probe.wasm.js';

/** Exports of src/wasm/probe.c. */
interface ProbeExports {
  memory: WasmMemory;
  in_ptr(): number;
  in_size(): number;
  hist_ptr(): number;
  match_count(): number;
  scan(len: number): number;
}

const probe = instantiate<ProbeExports>(PROBE_WASM);
const view = probe && {
  mem: new Uint8Array(probe.memory.buffer),
  hist: new Uint32Array(probe.memory.buffer, probe.hist_ptr(), 256),
  inAt: probe.in_ptr(),
  inSize: probe.in_size(),
};

/**
 * About the fewest bytes zstd could store `data` in: its repeats (found by a quick LZ pass) at two
 * bytes each, and its other bytes at the order-0 entropy of the whole, which is what one Huffman
 * table for a block this small can at best reach. Undefined without WebAssembly or for data over 64 KiB.
 */
export function compressedSizeEstimate(data: Uint8Array): number | undefined {
  if (!probe || !view || data.length > view.inSize) return undefined;
  const n = data.length;
  if (n === 0) return 0;
  view.mem.set(data, view.inAt);
  const literals = n - probe.scan(n);
  // Entropy in bits per byte: log2(n) − Σ c·log2(c) / n.
  const hist = view.hist;
  let sum = 0;
  for (let b = 0; b < 256; b++) {
    const c = hist[b]!;
    if (c > 1) sum += c * Math.log2(c);
  }
  return (literals * (Math.log2(n) - sum / n)) / 8 + 2 * probe.match_count();
}

import { instantiate, type WasmMemory } from './instantiate.js';
import { RABIN_WASM } from './rabin.wasm.js';

/** Exports of src/wasm/rabin.c. */
interface RabinExports {
  memory: WasmMemory;
  buf_ptr(): number;
  chunk_size(): number;
  digest_hi(): number;
  digest_lo(): number;
  set_pol(hi: number, lo: number): void;
  scan(n: number, hi: number, lo: number): number;
}

/** Bytes in the rolling hash's window; the kernel reads the 64 bytes before a range as its contents. */
const WINDOW = 64;

/** The chunker's rolling-hash loop in WebAssembly (one instance per JS realm). */
export class RabinKernel {
  /** The digest's bits 32..52 and low 32 bits after the last `scan`. */
  hi = 0;
  lo = 0;
  private readonly k: RabinExports;
  private readonly mem: Uint8Array;
  private readonly bufAt: number;
  private readonly chunk: number;
  /** Polynomial whose tables the instance holds; switching costs ~20 µs of table setup. */
  private pol = -1n;

  constructor(k: RabinExports) {
    this.k = k;
    this.mem = new Uint8Array(k.memory.buffer);
    this.bufAt = k.buf_ptr();
    this.chunk = k.chunk_size();
  }

  /**
   * Rolls `buf[from, to)` into the digest (hi = bits 32..52, lo = low 32 bits) of restic's 64-byte
   * window, whose current contents are `buf[from − 64, from)`, for degree-53 `pol`. Returns the index
   * just past the first byte after which the digest's low 20 bits are zero, or -1 if none; `hi`/`lo`
   * then hold the digest after that byte, or after `to`.
   */
  scan(pol: bigint, buf: Uint8Array, from: number, to: number, hi: number, lo: number): number {
    const k = this.k;
    if (pol !== this.pol) {
      k.set_pol(Number(pol >> 32n), Number(pol & 0xffffffffn));
      this.pol = pol;
    }
    let found = -1;
    for (let i = from; i < to; ) {
      const n = Math.min(this.chunk, to - i);
      // Copy the window with the range: chunk-sized pieces keep the kernel's memory small and in cache.
      this.mem.set(buf.subarray(i - WINDOW, i + n), this.bufAt);
      const r = k.scan(n, hi, lo);
      hi = k.digest_hi();
      lo = k.digest_lo();
      if (r >= 0) {
        found = i + r;
        break;
      }
      i += n;
    }
    this.hi = hi;
    this.lo = lo;
    return found;
  }
}

const wasmExports = instantiate<RabinExports>(RABIN_WASM);

/** The shared kernel, or null where WebAssembly is unavailable (the chunker then runs its TS loop). */
export const rabinKernel: RabinKernel | null = wasmExports ? new RabinKernel(wasmExports) : null;

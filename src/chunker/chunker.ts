import { UsageError } from '../errors.js';
import { rabinKernel, type RabinKernel } from '../wasm/rabin.js';
import { POLYNOMIAL_DEGREE, degree, type Polynomial } from './polynomial.js';

export const MIN_SIZE = 512 * 1024;
export const MAX_SIZE = 8 * 1024 * 1024;
/** Bytes in the rolling hash's window. Not exported: V8 reads exported bindings through a cell, which costs in the hot loop. */
const WINDOW_SIZE = 64;
/** A chunk ends after a byte whose digest has these low bits all zero (≈ 1 MiB average). */
const SPLIT_MASK = (1 << 20) - 1;
/**
 * restic does not hash the first MIN_SIZE − WINDOW_SIZE bytes of a chunk: it starts a fresh digest
 * there so the window is full exactly when the chunk reaches MIN_SIZE.
 */
const HASH_START = MIN_SIZE - WINDOW_SIZE;
/** Shorter ranges stay in the TS loop, where they cost less than the copy into WebAssembly memory. */
const WASM_MIN_RANGE = 256;

export interface SplitterOptions {
  /** Run the hot loop in WebAssembly where available (default); false forces the TS loop. Same cuts either way. */
  wasm?: boolean;
}

/**
 * Both lookup tables, interleaved as [high, low] int32 pairs: each 53-bit value is split in its bits
 * 32.. and its low 32 bits so the hot loop stays in int32 arithmetic (JS numbers cannot hold the
 * 61-bit `digest << 8`). One array keeps the loop's table accesses to a single base register.
 *
 * - pairs 0..255, MOD: mod[t] = (t·x^53 mod pol) | t·x^53, indexed by the 8 bits the shift pushes
 *   above degree 53: one XOR both clears them and adds their remainder, so no masking is needed.
 *   At offset 0 because its index is on the digest's dependency chain.
 * - pairs 256..511, OUT: out[b] = b·x^(8·64) mod pol. restic XORs b·x^(8·63) (b's contribution to a
 *   64-byte window) into the digest before shifting the next byte in; XORing the shifted-and-reduced
 *   value after the shift gives the same digest and keeps the lookup off the digest's dependency chain.
 */
const OUT = 512;

const tableCache = new Map<Polynomial, Int32Array>();

/** x^n mod pol, by n multiplications by x. */
function xPowMod(n: number, pol: Polynomial): Polynomial {
  const top = 1n << BigInt(POLYNOMIAL_DEGREE);
  let r = 1n;
  for (let i = 0; i < n; i++) {
    r <<= 1n;
    if (r & top) r ^= pol;
  }
  return r;
}

function checkDegree(pol: Polynomial): void {
  if (degree(pol) !== POLYNOMIAL_DEGREE) {
    throw new UsageError(`chunker polynomial ${pol.toString(16)} has degree ${degree(pol)}, want ${POLYNOMIAL_DEGREE}`);
  }
}

function tablesFor(pol: Polynomial): Int32Array {
  const cached = tableCache.get(pol);
  if (cached) return cached;
  checkDegree(pol);
  // Both tables are linear in b, so each entry is the XOR of the entries of b's set bits.
  const outBase: bigint[] = [];
  const modBase: bigint[] = [];
  for (let k = 0; k < 8; k++) {
    outBase.push(xPowMod(8 * WINDOW_SIZE + k, pol));
    modBase.push(xPowMod(POLYNOMIAL_DEGREE + k, pol) | (1n << BigInt(POLYNOMIAL_DEGREE + k)));
  }
  const t = new Int32Array(1024);
  for (let b = 0; b < 256; b++) {
    let out = 0n;
    let mod = 0n;
    for (let k = 0; k < 8; k++) {
      if (b & (1 << k)) {
        out ^= outBase[k]!;
        mod ^= modBase[k]!;
      }
    }
    t[2 * b] = Number(mod >> 32n);
    t[2 * b + 1] = Number(BigInt.asIntN(32, mod));
    t[OUT + 2 * b] = Number(out >> 32n);
    t[OUT + 2 * b + 1] = Number(BigInt.asIntN(32, out));
  }
  tableCache.set(pol, t);
  return t;
}

/**
 * Finds restic's cut points incrementally. The caller keeps the current chunk's bytes contiguous in
 * one buffer and calls `next` whenever more of them are available.
 */
export class Splitter {
  private readonly pol: Polynomial;
  private readonly t: Int32Array;
  private readonly kernel: RabinKernel | null;
  /** Bytes of the current chunk already consumed. */
  private pos = 0;
  private hi = 0;
  private lo = 1;
  private fpHi = 0;
  private fpLo = 1;

  constructor(pol: Polynomial, options: SplitterOptions = {}) {
    this.pol = pol;
    this.t = tablesFor(pol);
    this.kernel = options.wasm === false ? null : rabinKernel;
  }

  /**
   * Digest at the last cut found, or the running digest if `next` found none (what restic/chunker
   * reports as `Cut` for a chunk that ends at end of input).
   */
  get fingerprint(): bigint {
    return (BigInt(this.fpHi) << 32n) | BigInt(this.fpLo >>> 0);
  }

  /** Forgets the current chunk. */
  reset(): void {
    this.pos = 0;
    // restic's fresh state: an all-zero window into which one byte 1 was slid, so digest = 1.
    this.hi = 0;
    this.lo = 1;
  }

  /**
   * `buf[chunkStart, end)` holds the current chunk's bytes so far (earlier calls saw a prefix of them at
   * the same offsets from chunkStart). Returns the chunk's length if it ends before `end` — the splitter
   * is then ready for the next chunk, which starts right after — else -1.
   */
  next(buf: Uint8Array, chunkStart: number, end: number): number {
    const avail = end - chunkStart;
    if (avail <= HASH_START) {
      this.pos = Math.max(this.pos, avail);
      this.fpHi = this.hi;
      this.fpLo = this.lo;
      return -1;
    }
    const t = this.t;
    let hi = this.hi;
    let lo = this.lo;
    let i = chunkStart + Math.max(this.pos, HASH_START);
    const stop = chunkStart + Math.min(avail, MAX_SIZE);

    // Warm-up: the window still holds restic's initial state (63 zeros and a 1), not chunk bytes.
    // Zero bytes leave the window without effect (out[0] = 0), and no cut is possible below MIN_SIZE.
    const lastWarm = chunkStart + MIN_SIZE - 1;
    const warming = i <= lastWarm;
    for (; i < stop && i <= lastWarm; i++) {
      const m = (hi >>> 12) & ~1;
      hi = ((hi << 8) | (lo >>> 24)) ^ t[m]!;
      lo = ((lo << 8) | buf[i]!) ^ t[m + 1]!;
      if (i === lastWarm) {
        hi ^= t[OUT + 2]!;
        lo ^= t[OUT + 3]!;
      }
    }
    if (warming && i > lastWarm && (lo & SPLIT_MASK) === 0) return this.cut(i - chunkStart, hi, lo);

    const kernel = this.kernel;
    if (kernel !== null && stop - i >= WASM_MIN_RANGE) {
      // From here on the window holds chunk bytes, so buf[i - 64, i) is all the kernel needs.
      const end = kernel.scan(this.pol, buf, i, stop, hi, lo);
      hi = kernel.hi;
      lo = kernel.lo;
      if (end >= 0) return this.cut(end - chunkStart, hi, lo);
      i = stop;
    }
    for (; i < stop; i++) {
      // hi holds digest bits 32..52; its top 8 (hi >>> 13) are the ones the shift pushes past degree 53.
      const m = (hi >>> 12) & ~1; // = 2·(hi >>> 13), the pair index
      const o = OUT + (buf[i - WINDOW_SIZE]! << 1);
      hi = ((hi << 8) | (lo >>> 24)) ^ t[m]! ^ t[o]!;
      lo = ((lo << 8) | buf[i]!) ^ t[m + 1]! ^ t[o + 1]!;
      if ((lo & SPLIT_MASK) === 0) return this.cut(i + 1 - chunkStart, hi, lo);
    }
    if (stop - chunkStart === MAX_SIZE) return this.cut(MAX_SIZE, hi, lo);
    this.pos = avail;
    this.hi = this.fpHi = hi;
    this.lo = this.fpLo = lo;
    return -1;
  }

  private cut(length: number, hi: number, lo: number): number {
    this.fpHi = hi;
    this.fpLo = lo;
    this.reset();
    return length;
  }
}

/** End offsets (exclusive) of restic's chunks of `data`; the last one is data.length unless data is empty. */
export function cutPoints(pol: Polynomial, data: Uint8Array, options?: SplitterOptions): number[] {
  const splitter = new Splitter(pol, options);
  const ends: number[] = [];
  let start = 0;
  while (start < data.length) {
    const len = splitter.next(data, start, data.length);
    start = len < 0 ? data.length : start + len;
    ends.push(start);
  }
  return ends;
}

/** Copies into memory of its own so consumers may keep chunks while the chunker reuses its buffer. */
function ownedCopy(src: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafeSlow(end - start);
  out.set(src.subarray(start, end));
  return out;
}

/** Idle chunk buffers kept per Chunker, so chunking many small files does not allocate 8 MiB each. */
const MAX_IDLE_BUFFERS = 4;

/** Splits byte streams into restic's content-defined chunks for one repository polynomial. */
export class Chunker {
  private readonly pol: Polynomial;
  private readonly idle: Buffer[] = [];

  constructor(pol: Polynomial) {
    // The tables wait for the first file to chunk (an unchanged backup has none).
    checkDegree(pol);
    this.pol = pol;
  }

  /**
   * Streams chunks from any byte source; never buffers more than MAX_SIZE + one input block.
   * Yields owned Buffers (not views into reused memory). Empty input yields nothing.
   * Several streams may be chunked concurrently with one Chunker.
   */
  async *chunks(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const splitter = new Splitter(this.pol);
    // Holds the current chunk contiguously, so the window's outgoing byte is a plain lookback.
    const cur = this.idle.pop() ?? Buffer.allocUnsafeSlow(MAX_SIZE);
    try {
      let len = 0;
      for await (const block of source) {
        let off = 0;
        while (off < block.length) {
          const n = Math.min(block.length - off, MAX_SIZE - len);
          cur.set(block.subarray(off, off + n), len);
          len += n;
          off += n;
          let start = 0;
          for (;;) {
            const cut = splitter.next(cur, start, len);
            if (cut < 0) break;
            yield ownedCopy(cur, start, start + cut);
            start += cut;
          }
          // Every cut lies in the bytes just added, so this moves each byte at most once.
          if (start > 0) {
            cur.copyWithin(0, start, len);
            len -= start;
          }
        }
      }
      if (len > 0) yield ownedCopy(cur, 0, len);
    } finally {
      if (this.idle.length < MAX_IDLE_BUFFERS) this.idle.push(cur);
    }
  }
}

import { UsageError } from '../errors.js';
import { POLYNOMIAL_DEGREE, degree, polyMod, type Polynomial } from './polynomial.js';

export const MIN_SIZE = 512 * 1024;
export const MAX_SIZE = 8 * 1024 * 1024;
/** Bytes in the rolling hash's window. */
export const WINDOW_SIZE = 64;
/** A chunk ends after a byte whose digest has these low bits all zero (≈ 1 MiB average). */
const SPLIT_MASK = (1 << 20) - 1;
/**
 * restic does not hash the first MIN_SIZE − WINDOW_SIZE bytes of a chunk: it starts a fresh digest
 * there so the window is full exactly when the chunk reaches MIN_SIZE.
 */
const HASH_START = MIN_SIZE - WINDOW_SIZE;

/**
 * Digest tables with each 53-bit value split in a high part (bits 32..) and a low 32-bit part, so the
 * hot loop stays in int32 arithmetic (JS numbers cannot hold the 61-bit `digest << 8`).
 */
interface Tables {
  /** out[b] = b·x^(8·63) mod pol: XOR removes byte b leaving a 64-byte window. */
  outHi: Int32Array;
  outLo: Int32Array;
  /**
   * mod[b] = (b·x^53 mod pol) | b·x^53: indexed by the 8 bits about to be shifted above degree 53, one
   * XOR both clears them and adds their remainder. The high part keeps the b·x^53 bits (21..28 of the
   * high word) so that no masking is needed after the shift.
   */
  modHi: Int32Array;
  modLo: Int32Array;
}

const tableCache = new Map<Polynomial, Tables>();

function tablesFor(pol: Polynomial): Tables {
  const cached = tableCache.get(pol);
  if (cached) return cached;
  if (degree(pol) !== POLYNOMIAL_DEGREE) {
    throw new UsageError(`chunker polynomial ${pol.toString(16)} has degree ${degree(pol)}, want ${POLYNOMIAL_DEGREE}`);
  }
  const t: Tables = {
    outHi: new Int32Array(256),
    outLo: new Int32Array(256),
    modHi: new Int32Array(256),
    modLo: new Int32Array(256),
  };
  const windowShift = BigInt(8 * (WINDOW_SIZE - 1));
  const degShift = BigInt(POLYNOMIAL_DEGREE);
  for (let b = 0; b < 256; b++) {
    const out = polyMod(BigInt(b) << windowShift, pol);
    t.outHi[b] = Number(out >> 32n);
    t.outLo[b] = Number(BigInt.asIntN(32, out));
    const top = BigInt(b) << degShift;
    const mod = polyMod(top, pol) | top;
    t.modHi[b] = Number(mod >> 32n);
    t.modLo[b] = Number(BigInt.asIntN(32, mod));
  }
  tableCache.set(pol, t);
  return t;
}

/**
 * Finds restic's cut points incrementally. The caller keeps the current chunk's bytes contiguous in
 * one buffer and calls `next` whenever more of them are available.
 */
export class Splitter {
  private readonly t: Tables;
  /** Bytes of the current chunk already consumed. */
  private pos = 0;
  private hi = 0;
  private lo = 1;
  private fpHi = 0;
  private fpLo = 1;

  constructor(pol: Polynomial) {
    this.t = tablesFor(pol);
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
    const { outHi, outLo, modHi, modLo } = this.t;
    let hi = this.hi;
    let lo = this.lo;
    let i = chunkStart + Math.max(this.pos, HASH_START);
    const stop = chunkStart + Math.min(avail, MAX_SIZE);

    // Warm-up: the window still holds restic's initial state (63 zeros and a 1), not chunk bytes.
    // Zero bytes leave the window without effect (out[0] = 0), and no cut is possible below MIN_SIZE.
    const lastWarm = chunkStart + MIN_SIZE - 1;
    const warming = i <= lastWarm;
    for (; i < stop && i <= lastWarm; i++) {
      if (i === lastWarm) {
        hi ^= outHi[1]!;
        lo ^= outLo[1]!;
      }
      const idx = hi >>> 13;
      hi = ((hi << 8) | (lo >>> 24)) ^ modHi[idx]!;
      lo = ((lo << 8) | buf[i]!) ^ modLo[idx]!;
    }
    if (warming && i > lastWarm && (lo & SPLIT_MASK) === 0) return this.cut(i - chunkStart, hi, lo);

    for (; i < stop; i++) {
      const o = buf[i - WINDOW_SIZE]!;
      hi ^= outHi[o]!;
      lo ^= outLo[o]!;
      // hi has 21 bits (digest bits 32..52); its top 8 are the ones the shift pushes past degree 53.
      const idx = hi >>> 13;
      hi = ((hi << 8) | (lo >>> 24)) ^ modHi[idx]!;
      lo = ((lo << 8) | buf[i]!) ^ modLo[idx]!;
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
export function cutPoints(pol: Polynomial, data: Uint8Array): number[] {
  const splitter = new Splitter(pol);
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

/** Splits byte streams into restic's content-defined chunks for one repository polynomial. */
export class Chunker {
  private readonly pol: Polynomial;

  constructor(pol: Polynomial) {
    tablesFor(pol);
    this.pol = pol;
  }

  /**
   * Streams chunks from any byte source; never buffers more than MAX_SIZE + one input block.
   * Yields owned Buffers (not views into reused memory). Empty input yields nothing.
   */
  async *chunks(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const splitter = new Splitter(this.pol);
    // Holds the current chunk contiguously, so the window's outgoing byte is a plain lookback.
    const cur = Buffer.allocUnsafeSlow(MAX_SIZE);
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
  }
}

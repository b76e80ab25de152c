import { init as zstdInit, compressUsingDict, createCCtx, decompress as zstdDecompress } from '@bokuweb/zstd-wasm';
import { decompress as fzstdDecompress } from 'fzstd';
import { IntegrityError } from '../errors.js';
import { compressedSizeEstimate } from '../wasm/probe.js';

/** restic's --compression modes, mapped onto zstd levels close to what restic's encoder does. */
export type CompressionMode = 'auto' | 'off' | 'max';
const LEVEL: Record<Exclude<CompressionMode, 'off'>, number> = { auto: 3, max: 19 };

let ready: Promise<void> | undefined;

/** Loads the zstd WASM module once; every compress/decompress call awaits nothing after this. */
export function initCompression(): Promise<void> {
  ready ??= zstdInit();
  return ready;
}

let context: number | undefined;
const NO_DICTIONARY = new Uint8Array(0);

/**
 * One zstd frame at `level`, as ZSTD_compress makes it (same bytes), but with one compression context
 * per thread: ZSTD_compress makes and clears a context on every call, which costs more than
 * compressing a small blob does (2.3× slower on 1–8 KiB of random data, 6× on text).
 */
function zstdCompress(data: Uint8Array, level: number): Uint8Array {
  context ??= createCCtx();
  return compressUsingDict(context, data, NO_DICTIONARY, level);
}

export function compress(data: Uint8Array, mode: Exclude<CompressionMode, 'off'>): Uint8Array {
  return zstdCompress(data, LEVEL[mode]);
}

const PROBE_SLICE = 16 * 1024;
/** A probe that does not shrink below this fraction marks data as incompressible. */
const PROBE_RATIO = 0.97;

/**
 * The stored form of a blob under `mode`: its zstd frame when that is smaller, else undefined (store
 * the plaintext). In auto mode a few slices of a large blob are compressed first at the fastest level,
 * and a small blob is estimated; data that does not shrink there (encrypted, already compressed,
 * random) is stored as is without paying for a full compression — zstd is slow on incompressible input.
 */
export function compressBlob(data: Uint8Array, mode: CompressionMode): Uint8Array | undefined {
  if (mode === 'off') return undefined;
  if (mode === 'auto' && data.length > 4 * PROBE_SLICE) {
    const step = Math.floor((data.length - PROBE_SLICE) / 2);
    let probed = 0;
    for (let i = 0; i < 3; i++) probed += zstdCompress(data.subarray(i * step, i * step + PROBE_SLICE), 1).length;
    if (probed >= 3 * PROBE_SLICE * PROBE_RATIO) return undefined;
  } else if (mode === 'auto') {
    // Small blobs are whole files as often as not; zstd costs ~7 ns a byte on random ones, the
    // estimate under 1 (the probe above would cost as much as compressing).
    const estimate = compressedSizeEstimate(data);
    if (estimate !== undefined && estimate >= data.length * PROBE_RATIO) return undefined;
  }
  const compressed = compress(data, mode);
  return compressed.length < data.length ? compressed : undefined;
}

/**
 * Decompresses one zstd frame. `expectedLength` (known for blobs from the index) sizes the output when
 * the frame header carries no content size; without either the pure-JS decoder grows its output.
 */
export function decompress(data: Uint8Array, expectedLength?: number): Uint8Array {
  try {
    const size = frameContentSize(data) ?? expectedLength;
    return size !== undefined ? zstdDecompress(data, { defaultHeapSize: size }) : fzstdDecompress(data);
  } catch (err) {
    throw new IntegrityError(`zstd decompression failed: ${(err as Error).message}`);
  }
}

/** The Frame_Content_Size of a frame header (RFC 8878 §3.1.1.1), when the header has one. */
function frameContentSize(frame: Uint8Array): number | undefined {
  if (frame.length < 5) return undefined;
  const descriptor = frame[4]!;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const fieldSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : 1 << fcsFlag;
  if (fieldSize === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]!;
  if (frame.length < at + fieldSize) return undefined;
  let value = 0;
  for (let i = fieldSize - 1; i >= 0; i--) value = value * 256 + frame[at + i]!;
  return fieldSize === 2 ? value + 256 : value;
}

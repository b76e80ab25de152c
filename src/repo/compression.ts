import { init as zstdInit, compress as zstdCompress, decompress as zstdDecompress } from '@bokuweb/zstd-wasm';
import { decompress as fzstdDecompress } from 'fzstd';
import { IntegrityError } from '../errors.js';

/** restic's --compression modes, mapped onto zstd levels close to what restic's encoder does. */
export type CompressionMode = 'auto' | 'off' | 'max';
const LEVEL: Record<Exclude<CompressionMode, 'off'>, number> = { auto: 3, max: 19 };

let ready: Promise<void> | undefined;

/** Loads the zstd WASM module once; every compress/decompress call awaits nothing after this. */
export function initCompression(): Promise<void> {
  ready ??= zstdInit();
  return ready;
}

export function compress(data: Uint8Array, mode: Exclude<CompressionMode, 'off'>): Uint8Array {
  return zstdCompress(data, LEVEL[mode]);
}

const PROBE_SLICE = 16 * 1024;
/** A probe that does not shrink below this fraction marks data as incompressible. */
const PROBE_RATIO = 0.97;

/**
 * The stored form of a blob under `mode`: its zstd frame when that is smaller, else undefined (store
 * the plaintext). In auto mode a few slices are compressed first at the fastest level; data that does
 * not shrink there (encrypted, already compressed, random) is stored as is without paying for a full
 * compression — zstd is slow on incompressible input.
 */
export function compressBlob(data: Uint8Array, mode: CompressionMode): Uint8Array | undefined {
  if (mode === 'off') return undefined;
  if (mode === 'auto' && data.length > 4 * PROBE_SLICE) {
    const step = Math.floor((data.length - PROBE_SLICE) / 2);
    let probed = 0;
    for (let i = 0; i < 3; i++) probed += zstdCompress(data.subarray(i * step, i * step + PROBE_SLICE), 1).length;
    if (probed >= 3 * PROBE_SLICE * PROBE_RATIO) return undefined;
  }
  const compressed = compress(data, mode);
  return compressed.length < data.length ? compressed : undefined;
}

/**
 * Decompresses one zstd frame. `expectedLength` (known for blobs from the index) sizes the output when
 * the frame header carries no content size; without it the pure-JS decoder grows its output as needed.
 */
export function decompress(data: Uint8Array, expectedLength?: number): Uint8Array {
  try {
    if (hasContentSize(data) || expectedLength !== undefined) {
      return zstdDecompress(data, { defaultHeapSize: expectedLength ?? 0 });
    }
    return fzstdDecompress(data);
  } catch (err) {
    throw new IntegrityError(`zstd decompression failed: ${(err as Error).message}`);
  }
}

/** Reads the frame header's Frame_Content_Size_flag / Single_Segment_flag (RFC 8878 §3.1.1.1.1). */
function hasContentSize(frame: Uint8Array): boolean {
  if (frame.length < 5) return false;
  const descriptor = frame[4]!;
  return descriptor >> 6 !== 0 || (descriptor & 0x20) !== 0;
}

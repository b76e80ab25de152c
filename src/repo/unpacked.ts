import { IntegrityError } from '../errors.js';
import { compress, decompress } from './compression.js';

/** Version byte that marks a zstd-compressed unpacked file (snapshot, index, lock) in v2 repositories. */
const COMPRESSED_V2 = 0x02;

/**
 * Plaintext of an unpacked file as stored: v1 and uncompressed v2 keep the JSON as is; compressed v2
 * prefixes 0x02 to a zstd frame (restic 0.14 writes all unpacked files of v2 repos this way).
 */
export function packUnpacked(json: Uint8Array, repoVersion: 1 | 2, compressed: boolean): Uint8Array {
  if (repoVersion === 1 || !compressed) return json;
  const frame = compress(json, 'auto');
  const out = new Uint8Array(frame.length + 1);
  out[0] = COMPRESSED_V2;
  out.set(frame, 1);
  return out;
}

/** Inverse of packUnpacked: accepts plain JSON (`{`/`[`) in either version and 0x02+zstd in v2. */
export function unpackUnpacked(plaintext: Uint8Array, repoVersion: 1 | 2, what: string): Uint8Array {
  const first = plaintext[0];
  if (first === 0x7b || first === 0x5b) return plaintext;
  if (repoVersion === 2 && first === COMPRESSED_V2) return decompress(plaintext.subarray(1));
  throw new IntegrityError(`${what}: unknown file format (first byte 0x${(first ?? 0).toString(16).padStart(2, '0')})`);
}

import { IntegrityError } from '../errors.js';
import { CRYPTO_OVERHEAD, decrypt, encrypt, type MasterKey } from '../crypto/index.js';
import { toHex, type Id } from './id.js';

export type BlobType = 'data' | 'tree';

/** One blob as a pack header (and the index) describe it. */
export interface PackedBlob {
  type: BlobType;
  id: Id;
  offset: number;
  /** Stored (encrypted, possibly compressed) length. */
  length: number;
  /** Plaintext length when the blob is stored compressed. */
  uncompressedLength?: number;
}

const PLAIN_ENTRY = 1 + 4 + 32;
const COMPRESSED_ENTRY = 1 + 4 + 4 + 32;
const TYPE_CODE: Record<BlobType, number> = { data: 0, tree: 1 };

export function encodePackHeader(blobs: readonly PackedBlob[]): Uint8Array {
  const size = blobs.reduce((n, b) => n + (b.uncompressedLength === undefined ? PLAIN_ENTRY : COMPRESSED_ENTRY), 0);
  const out = Buffer.alloc(size);
  let pos = 0;
  for (const b of blobs) {
    const compressed = b.uncompressedLength !== undefined;
    out[pos++] = TYPE_CODE[b.type] + (compressed ? 2 : 0);
    out.writeUInt32LE(b.length, pos);
    pos += 4;
    if (compressed) {
      out.writeUInt32LE(b.uncompressedLength!, pos);
      pos += 4;
    }
    out.write(b.id, pos, 'hex');
    pos += 32;
  }
  return out;
}

export function decodePackHeader(header: Uint8Array, packName: string): PackedBlob[] {
  const buf = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  const blobs: PackedBlob[] = [];
  let pos = 0;
  let offset = 0;
  while (pos < buf.length) {
    const code = buf[pos]!;
    if (code > 3) throw new IntegrityError(`pack ${packName}: invalid blob type ${code} in header`);
    const compressed = code >= 2;
    const entrySize = compressed ? COMPRESSED_ENTRY : PLAIN_ENTRY;
    if (pos + entrySize > buf.length) throw new IntegrityError(`pack ${packName}: truncated header`);
    const length = buf.readUInt32LE(pos + 1);
    const uncompressedLength = compressed ? buf.readUInt32LE(pos + 5) : undefined;
    const id = toHex(buf.subarray(pos + entrySize - 32, pos + entrySize));
    const blob: PackedBlob = { type: code % 2 === 0 ? 'data' : 'tree', id, offset, length };
    if (uncompressedLength !== undefined) blob.uncompressedLength = uncompressedLength;
    blobs.push(blob);
    offset += length;
    pos += entrySize;
  }
  return blobs;
}

/** Reads the blob list from a pack, given a function to load byte ranges of it and its size. */
export async function readPackHeader(
  key: MasterKey,
  packName: string,
  packSize: number,
  loadRange: (offset: number, length: number) => Promise<Uint8Array>,
): Promise<PackedBlob[]> {
  if (packSize < 4 + CRYPTO_OVERHEAD) throw new IntegrityError(`pack ${packName}: file too short (${packSize} bytes)`);
  // One read for the usual case: the header of a pack of up to a few thousand blobs fits in 64 KiB.
  const tailLength = Math.min(packSize, 64 * 1024);
  const tail = Buffer.from(await loadRange(packSize - tailLength, tailLength));
  const headerLength = tail.readUInt32LE(tail.length - 4);
  if (headerLength + 4 > packSize || headerLength < CRYPTO_OVERHEAD) {
    throw new IntegrityError(`pack ${packName}: invalid header length ${headerLength}`);
  }
  const encHeader =
    headerLength + 4 <= tail.length
      ? tail.subarray(tail.length - 4 - headerLength, tail.length - 4)
      : await loadRange(packSize - 4 - headerLength, headerLength);
  let header: Uint8Array;
  try {
    header = decrypt(key, encHeader);
  } catch {
    throw new IntegrityError(`pack ${packName}: header ciphertext verification failed`);
  }
  const blobs = decodePackHeader(header, packName);
  const end = blobs.reduce((n, b) => n + b.length, 0);
  if (end + headerLength + 4 !== packSize) {
    throw new IntegrityError(`pack ${packName}: header describes ${end} bytes of blobs, file has ${packSize - headerLength - 4}`);
  }
  return blobs;
}

/** Assembles one pack in memory: blobs are appended already encrypted; finish() adds the header. */
export class PackBuilder {
  private readonly parts: Uint8Array[] = [];
  readonly blobs: PackedBlob[] = [];
  size = 0;

  add(type: BlobType, id: Id, stored: Uint8Array, uncompressedLength?: number): void {
    const blob: PackedBlob = { type, id, offset: this.size, length: stored.length };
    if (uncompressedLength !== undefined) blob.uncompressedLength = uncompressedLength;
    this.blobs.push(blob);
    this.parts.push(stored);
    this.size += stored.length;
  }

  finish(key: MasterKey): Buffer {
    const encHeader = encrypt(key, encodePackHeader(this.blobs));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(encHeader.length);
    return Buffer.concat([...this.parts, encHeader, len]);
  }
}

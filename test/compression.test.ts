import { randomBytes } from 'node:crypto';
import { compress as zstdCompress } from '@bokuweb/zstd-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { compress, compressBlob, decompress, initCompression } from '../src/repo/compression.js';
import { compressedSizeEstimate } from '../src/wasm/probe.js';
import { IntegrityError } from '../src/errors.js';

beforeAll(() => initCompression());

/** A zstd frame of raw blocks, with the content size written in `fcsBytes` bytes (0: none). */
function rawFrame(content: Uint8Array, fcsBytes: 0 | 1 | 2 | 4 | 8): Uint8Array {
  const parts: number[] = [0x28, 0xb5, 0x2f, 0xfd];
  const singleSegment = fcsBytes === 1;
  const fcsFlag = { 0: 0, 1: 0, 2: 1, 4: 2, 8: 3 }[fcsBytes];
  parts.push((fcsFlag << 6) | (singleSegment ? 0x20 : 0));
  // Window 2^20: large enough for 128 KiB blocks.
  if (!singleSegment) parts.push(10 << 3);
  let fcs = fcsBytes === 2 ? content.length - 256 : content.length;
  for (let i = 0; i < fcsBytes; i++) {
    parts.push(fcs % 256);
    fcs = Math.floor(fcs / 256);
  }
  const maxBlock = 128 * 1024;
  for (let off = 0; off === 0 || off < content.length; off += maxBlock) {
    const block = content.subarray(off, off + maxBlock);
    const last = off + maxBlock >= content.length ? 1 : 0;
    const header = (block.length << 3) | last;
    parts.push(header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff);
    for (const b of block) parts.push(b);
  }
  return Uint8Array.from(parts);
}

describe('zstd decompression', () => {
  // Both decoders are used, split at 256 KiB of output; content sizes are read from every header form.
  for (const size of [0, 1, 255, 256, 65_791, 65_792, 262_143, 262_144, 1_000_000]) {
    it(`round-trips ${size} bytes`, () => {
      const data = randomBytes(size);
      // Half random, half zeros: compressible but not trivially.
      data.fill(0, size >> 1);
      expect(Buffer.from(decompress(compress(data, 'auto'))).equals(data)).toBe(true);
    });
  }

  for (const fcsBytes of [0, 1, 2, 4, 8] as const) {
    it(`reads frames with a ${fcsBytes}-byte content size field`, () => {
      for (const size of fcsBytes === 1 ? [0, 200] : fcsBytes === 2 ? [256, 60_000] : [300, 300_000]) {
        const data = randomBytes(size);
        expect(Buffer.from(decompress(rawFrame(data, fcsBytes))).equals(data)).toBe(true);
        expect(Buffer.from(decompress(rawFrame(data, fcsBytes), size)).equals(data)).toBe(true);
      }
    });
  }

  it('reports damaged frames as IntegrityError', () => {
    const frame = compress(randomBytes(1000).fill(7, 500), 'auto');
    expect(() => decompress(frame.subarray(0, frame.length - 3))).toThrow(IntegrityError);
    expect(() => decompress(Uint8Array.from([1, 2, 3, 4, 5, 6]))).toThrow(IntegrityError);
  });
});

describe('compress', () => {
  it('writes the frames ZSTD_compress writes, with one context reused across calls and levels', () => {
    const text = Buffer.from('restic-ts compresses trees, snapshots and data blobs\n'.repeat(500));
    const inputs = [new Uint8Array(0), new Uint8Array([7]), randomBytes(4096), text, randomBytes(300_000), text.subarray(0, 1000)];
    for (const round of [1, 2]) {
      for (const data of inputs) {
        expect(Buffer.from(compress(data, 'auto')).equals(Buffer.from(zstdCompress(data, 3))), `auto, ${data.length} bytes, round ${round}`).toBe(true);
        expect(decompress(compress(data, 'max'))).toEqual(new Uint8Array(data));
      }
    }
    expect(Buffer.from(compress(text, 'max')).equals(Buffer.from(zstdCompress(text, 19)))).toBe(true);
  });
});

describe('compressBlob on small blobs (estimate first, zstd only where it may pay)', () => {
  const text = Buffer.from('{"name":"restic-ts","files":["a.txt","b.txt"],"size":12345}\n'.repeat(200));
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const repeated = (block: Uint8Array, times: number) => new Uint8Array(Buffer.concat(Array.from({ length: times }, () => block)));
  const cases: Record<string, Uint8Array> = {
    empty: new Uint8Array(0),
    'one byte': new Uint8Array([1]),
    'random 1 KiB': random(1024),
    'random 8 KiB': random(8192),
    'random 64 KiB': random(64 * 1024),
    text,
    'text, 100 bytes': text.subarray(0, 100),
    'base64 of random data': Buffer.from(Buffer.from(random(6000)).toString('base64')),
    'hex of random data': Buffer.from(Buffer.from(random(3000)).toString('hex')),
    'a random KiB four times': repeated(random(1024), 4),
    'random 32 KiB then the same again': repeated(random(32 * 1024), 2),
    'half text, half random': new Uint8Array(Buffer.concat([text.subarray(0, 4096), random(4096)])),
    'zeros with random islands': (() => {
      const d = new Uint8Array(16384);
      for (let i = 0; i < d.length; i += 1024) d.set(random(64), i);
      return d;
    })(),
  };
  // Two copies of the same 300 random bytes with 7 000 others in between.
  const island = random(300);
  cases['a random 300 bytes twice, 7 KiB apart'] = new Uint8Array(Buffer.concat([island, random(7000), island]));

  it.each(Object.keys(cases))('%s: stored raw only where zstd would not save 3 %%, and round-trips', (name) => {
    const data = cases[name]!;
    const stored = compressBlob(data, 'auto');
    const zstdSize = compress(data, 'auto').length;
    if (stored === undefined) expect(zstdSize).toBeGreaterThanOrEqual(data.length * 0.97);
    else {
      expect(stored.length).toBeLessThan(data.length);
      expect(Buffer.from(decompress(stored, data.length)).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('random data is stored raw; repeats, text and encoded data are compressed', () => {
    for (const name of ['random 1 KiB', 'random 8 KiB', 'random 64 KiB']) expect(compressBlob(cases[name]!, 'auto'), name).toBeUndefined();
    for (const name of ['text', 'base64 of random data', 'hex of random data', 'a random KiB four times', 'random 32 KiB then the same again', 'half text, half random', 'zeros with random islands']) {
      expect(compressBlob(cases[name]!, 'auto'), name).toBeDefined();
    }
  });

  it('the estimate is undefined over 64 KiB and small for repeats', () => {
    expect(compressedSizeEstimate(random(64 * 1024 + 1))).toBeUndefined();
    expect(compressedSizeEstimate(new Uint8Array(0))).toBe(0);
    expect(compressedSizeEstimate(repeated(random(1024), 8))!).toBeLessThan(1200);
    expect(compressedSizeEstimate(random(8192))!).toBeGreaterThan(8192 * 0.98);
  });

  it('off mode never compresses; max mode runs zstd without the estimate', () => {
    expect(compressBlob(cases.text!, 'off')).toBeUndefined();
    expect(compressBlob(cases.text!, 'max')).toBeDefined();
  });
});

import * as nc from 'node:crypto';
import { poly1305 as noblePoly1305 } from '@noble/ciphers/_poly1305.js';
import { describe, expect, test } from 'vitest';
import { MAX_SIZE, MIN_SIZE, Splitter, cutPoints } from '../src/chunker/chunker.js';
import { randomPolynomial } from '../src/chunker/polynomial.js';
import { nodeCryptoSuite } from '../src/crypto/node.js';
import { poly1305Wasm } from '../src/crypto/poly1305-wasm.js';
import { instantiate } from '../src/wasm/instantiate.js';
import { POLY1305_WASM } from '../src/wasm/poly1305.wasm.js';
import { rabinKernel } from '../src/wasm/rabin.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** Deterministic bytes (xorshift32), so a failing case can be replayed. */
function pseudoRandom(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s >>> 24;
  }
  return out;
}

test('the kernels load under Node', () => {
  expect(poly1305Wasm).not.toBeNull();
  expect(rabinKernel).not.toBeNull();
});

test('instantiate is null without WebAssembly or for a module it cannot compile', () => {
  const g = globalThis as { WebAssembly?: unknown };
  const saved = g.WebAssembly;
  try {
    delete g.WebAssembly;
    expect(instantiate(POLY1305_WASM)).toBeNull();
  } finally {
    g.WebAssembly = saved;
  }
  expect(instantiate(POLY1305_WASM.slice(0, 40))).toBeNull();
  expect(instantiate(POLY1305_WASM)).not.toBeNull();
});

describe('poly1305 (WebAssembly)', () => {
  const mac = poly1305Wasm!;
  const P = (1n << 130n) - 5n;
  const le = (b: Uint8Array): bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return v;
  };

  /** RFC 8439 §2.5.1 transcribed into BigInt arithmetic: slow, obviously right. */
  function reference(msg: Uint8Array, key: Uint8Array): Uint8Array {
    const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
    const s = le(key.subarray(16, 32));
    let h = 0n;
    for (let i = 0; i < msg.length; i += 16) {
      const block = msg.subarray(i, i + 16);
      h = ((h + le(block) + (1n << BigInt(8 * block.length))) * r) % P;
    }
    let tag = (h + s) & ((1n << 128n) - 1n);
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++, tag >>= 8n) out[i] = Number(tag & 255n);
    return out;
  }

  /** Poly1305-AES paper vectors (Bernstein 2005, appendix B), as in test/crypto.test.ts: s = AES-128_k(nonce). */
  const paper = [
    ['f3f6', '851fc40c3467ac0be05cc20404f3f700', 'ec074c835580741701425b623235add6', 'fb447350c4e868c52ac3275cf9d4327e', 'f4c633c3044fc145f84f335cb81953de'],
    ['', 'a0f3080000f46400d0c7e9076c834403', '75deaa25c09f208e1dc4ce6b5cad3fbf', '61ee09218d29b0aaed7e154a2c5509cc', 'dd3fab2251f11ac759f0887129cc2ee7'],
    [
      '663cea190ffb83d89593f3f476b6bc24d7e679107ea26adb8caf6652d0656136',
      '48443d0bb0d21109c89a100b5ce2c208',
      '6acb5f61a7176dd320c5c1eb2edcdc74',
      'ae212a55399729595dea458bc621ff0e',
      '0ee1c16bb73f0f4fd19881753c01cdbe',
    ],
    [
      'ab0812724a7f1e342742cbed374d94d136c6b8795d45b3819830f2c04491faf0990c62e48b8018b2c3e4a0fa3134cb67fa83e158c994d961c4cb21095c1bf9',
      '12976a08c4426d0ce8a82407c4f48207',
      'e1a5668a4d5b66a5f68cc5424ed5982d',
      '9ae831e743978d3a23527c7128149e3a',
      '5154ad0d2cb26e01274fc51148491f1b',
    ],
  ];

  test.each(paper)('Poly1305-AES paper vector, msg %s', (msg, r, k, nonce, tag) => {
    const aes = nc.createCipheriv('aes-128-ecb', hex(k), null);
    aes.setAutoPadding(false);
    const s = aes.update(hex(nonce));
    expect(toHex(mac(hex(msg), cat(hex(r), s)))).toBe(tag);
  });

  test('RFC 8439 §2.5.2 vector (r given unclamped)', () => {
    const key = hex('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b');
    const msg = new TextEncoder().encode('Cryptographic Forum Research Group');
    expect(toHex(mac(msg, key))).toBe('a8061dc1305136c6c22b8baf0c0127a9');
  });

  test('edge keys and messages where h reaches p or h + s wraps, against BigInt and @noble', () => {
    const rs = ['00', '01', '02', 'ff'.repeat(16)].map((r) => hex(r.padEnd(32, '0')));
    const ss = [new Uint8Array(16), new Uint8Array(16).fill(255)];
    const msgs = [0, 1, 15, 16, 17, 31, 32, 33, 48, 64, 160].flatMap((n) => [
      new Uint8Array(n).fill(255),
      cat(new Uint8Array(Math.max(0, n - 1)).fill(255), new Uint8Array(Math.min(n, 1)).fill(0xfe)),
    ]);
    for (const r of rs) {
      for (const s of ss) {
        for (const msg of msgs) {
          const key = cat(r, s);
          const want = toHex(reference(msg, key));
          expect(toHex(mac(msg, key)), `${toHex(key)} ${msg.length}`).toBe(want);
          expect(toHex(noblePoly1305(msg, key))).toBe(want);
        }
      }
    }
  });

  test('every length 0..1100 with random keys equals @noble (and BigInt up to 300)', () => {
    for (let n = 0; n <= 1100; n++) {
      const key = pseudoRandom(n + 1, 32);
      const msg = pseudoRandom(n + 7919, n);
      const got = toHex(mac(msg, key));
      expect(got, `length ${n}`).toBe(toHex(noblePoly1305(msg, key)));
      if (n <= 300) expect(got, `length ${n}`).toBe(toHex(reference(msg, key)));
    }
  });

  test('MiB-sized messages (several input chunks, unaligned ends) equal @noble', () => {
    for (const n of [64 * 1024, 64 * 1024 + 15, 1 << 20, 3 * (1 << 20) + 7, 8 * (1 << 20) + 33]) {
      const key = nc.randomBytes(32);
      const msg = nc.randomBytes(n);
      expect(toHex(mac(msg, key)), `length ${n}`).toBe(toHex(noblePoly1305(msg, key)));
    }
  });

  test('a message that is a view into a larger buffer', () => {
    const big = pseudoRandom(5, 100_000);
    const key = pseudoRandom(6, 32);
    const view = big.subarray(3, 99_990);
    expect(toHex(mac(view, key))).toBe(toHex(noblePoly1305(view.slice(), key)));
  });

  test('encrypt/decrypt with the WebAssembly MAC interoperate with @noble MAC', () => {
    const wasmSuite = nodeCryptoSuite(nc, poly1305Wasm!);
    const nobleSuite = nodeCryptoSuite(nc, noblePoly1305);
    const key = wasmSuite.newMasterKey();
    for (const n of [0, 1, 100, 70_000]) {
      const pt = nc.randomBytes(n);
      expect(Buffer.compare(nobleSuite.decrypt(key, wasmSuite.encrypt(key, pt)), pt)).toBe(0);
      expect(Buffer.compare(wasmSuite.decrypt(key, nobleSuite.encrypt(key, pt)), pt)).toBe(0);
    }
  });
});

describe('chunker loop (WebAssembly vs TS)', () => {
  const TEST_POL = 0x3da3358b4dc173n;
  const pols = [TEST_POL, randomPolynomial(), randomPolynomial(), randomPolynomial()];

  /** Periodic data as in test/chunker.test.ts: a 64-byte pattern repeated, so the digest is constant once the window is full. */
  function periodic(n: number): Uint8Array {
    const pattern = nc.randomBytes(64);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 64) out.set(pattern.subarray(0, Math.min(64, n - i)), i);
    return out;
  }

  const inputs: Array<[string, () => Uint8Array]> = [
    ['random', () => nc.randomBytes(24 * 1024 * 1024 + 3)],
    ['zeros', () => new Uint8Array(5 * MIN_SIZE + 100)],
    ['periodic', () => periodic(2 * MAX_SIZE + 5)],
    // Few distinct byte values: long runs of similar window contents.
    ['two-valued', () => nc.randomBytes(12 * 1024 * 1024).map((b) => b & 1)],
  ];

  test.each(inputs)('%s data: same cut points for several polynomials', (_name, make) => {
    const data = make();
    for (const pol of pols) {
      const ts = cutPoints(pol, data, { wasm: false });
      expect(cutPoints(pol, data), pol.toString(16)).toEqual(ts);
    }
  });

  test('incremental next() with random range sizes: same lengths and fingerprints', () => {
    const data = nc.randomBytes(20 * 1024 * 1024);
    for (const pol of pols) {
      const run = (wasm: boolean): string[] => {
        const sp = new Splitter(pol, { wasm });
        const sizes = pseudoRandom(Number(pol & 0xffffn), 100_000);
        const out: string[] = [];
        let start = 0;
        let end = 0;
        for (let j = 0; start < data.length; j++) {
          // Ranges from 1 byte to ~200 KiB, so both the TS path (< 256 bytes) and the kernel are used.
          end = Math.min(data.length, end + 1 + sizes[j % sizes.length]! * (j % 3 === 0 ? 1 : 800));
          for (;;) {
            const len = sp.next(data, start, end);
            if (len < 0) break;
            out.push(`${len}:${sp.fingerprint.toString(16)}`);
            start += len;
          }
          if (end === data.length && start < data.length) {
            out.push(`end ${data.length - start}:${sp.fingerprint.toString(16)}`);
            break;
          }
        }
        return out;
      };
      const ts = run(false);
      expect(ts.length).toBeGreaterThan(5);
      expect(run(true), pol.toString(16)).toEqual(ts);
    }
  });

  test('kernel: a cut on the first byte, on odd and even offsets, and the digest carried over', () => {
    const k = rabinKernel!;
    // Fixed pseudo-random bytes: random ones had no cut in 3 MiB about one run in twelve.
    const data = nc.createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16)).update(Buffer.alloc(3 * 1024 * 1024));
    // The TS Splitter, started at MIN_SIZE on the same bytes, is the reference for each cut.
    const sp = new Splitter(TEST_POL, { wasm: false });
    const first = sp.next(data, 0, data.length);
    expect(first).toBeGreaterThan(MIN_SIZE);
    const fp = sp.fingerprint;
    // Resume the kernel from the digest one byte before the cut, or several bytes before.
    const ref = new Splitter(TEST_POL, { wasm: false });
    for (const back of [1, 2, 3, 1000, 1001].filter((b) => first - b >= MIN_SIZE)) {
      const from = first - back;
      expect(ref.next(data, 0, from)).toBe(-1);
      const d = ref.fingerprint;
      ref.reset();
      const end = k.scan(TEST_POL, data, from, data.length, Number(d >> 32n), Number(d & 0xffffffffn));
      expect(end, `back ${back}`).toBe(first);
      expect((BigInt(k.hi) << 32n) | BigInt(k.lo >>> 0)).toBe(fp);
    }
  });
});

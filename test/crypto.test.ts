import * as nc from 'node:crypto';
import { poly1305 } from '@noble/ciphers/_poly1305.js';
import { describe, expect, test } from 'vitest';
import {
  CRYPTO_OVERHEAD,
  CiphertextError,
  activeCrypto,
  createSha256,
  decrypt,
  encrypt,
  fromBase64,
  keyFromScrypt,
  masterKeyFromJSON,
  masterKeyToJSON,
  newMasterKey,
  sha256Hex,
  toBase64,
  toHexString,
  type CryptoSuite,
  type MasterKey,
} from '../src/crypto/index.js';
import { nodeCryptoSuite } from '../src/crypto/node.js';
import { defaultPoly1305 } from '../src/crypto/poly1305-wasm.js';
import { pureCrypto } from '../src/crypto/pure.js';
import { IntegrityError, UsageError } from '../src/errors.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
/** Byte equality without vitest's per-element deep compare, which takes minutes on MiBs. */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/** Reference sealing built directly on node:crypto + noble poly1305, independent of src/crypto. */
function refSeal(key: MasterKey, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = nc.createCipheriv('aes-256-ctr', key.encrypt, iv);
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  const e = nc.createCipheriv('aes-128-ecb', key.macK, null);
  e.setAutoPadding(false);
  const s = e.update(iv);
  const r = Buffer.from(key.macR);
  for (const i of [3, 7, 11, 15]) r[i]! &= 15;
  for (const i of [4, 8, 12]) r[i]! &= 252;
  return cat(iv, body, poly1305(body, cat(r, s)));
}

/** Poly1305-AES vectors from D. J. Bernstein, "The Poly1305-AES message-authentication code" (2005), appendix B. */
const bernstein = [
  {
    msg: 'f3f6',
    r: '851fc40c3467ac0be05cc20404f3f700',
    k: 'ec074c835580741701425b623235add6',
    nonce: 'fb447350c4e868c52ac3275cf9d4327e',
    tag: 'f4c633c3044fc145f84f335cb81953de',
  },
  {
    msg: '',
    r: 'a0f3080000f46400d0c7e9076c834403',
    k: '75deaa25c09f208e1dc4ce6b5cad3fbf',
    nonce: '61ee09218d29b0aaed7e154a2c5509cc',
    tag: 'dd3fab2251f11ac759f0887129cc2ee7',
  },
  {
    msg: '663cea190ffb83d89593f3f476b6bc24d7e679107ea26adb8caf6652d0656136',
    r: '48443d0bb0d21109c89a100b5ce2c208',
    k: '6acb5f61a7176dd320c5c1eb2edcdc74',
    nonce: 'ae212a55399729595dea458bc621ff0e',
    tag: '0ee1c16bb73f0f4fd19881753c01cdbe',
  },
  {
    msg:
      'ab0812724a7f1e342742cbed374d94d136c6b8795d45b3819830f2c04491faf0' +
      '990c62e48b8018b2c3e4a0fa3134cb67fa83e158c994d961c4cb21095c1bf9',
    r: '12976a08c4426d0ce8a82407c4f48207',
    k: 'e1a5668a4d5b66a5f68cc5424ed5982d',
    nonce: '9ae831e743978d3a23527c7128149e3a',
    tag: '5154ad0d2cb26e01274fc51148491f1b',
  },
];

const suites: [string, CryptoSuite][] = [
  ['node', nodeCryptoSuite(nc, await defaultPoly1305())],
  ['pure', pureCrypto],
];

test('index picks node:crypto under Node and re-exports it', () => {
  expect(activeCrypto.name).toBe('node');
  const key = newMasterKey();
  expect(pureCrypto.decrypt(key, encrypt(key, utf8('x')))).toEqual(utf8('x'));
  expect(CRYPTO_OVERHEAD).toBe(32);
});

describe.each(suites)('%s suite', (_name, c) => {
  const someKey = (): MasterKey => ({ encrypt: c.randomBytes(32), macK: c.randomBytes(16), macR: c.randomBytes(16) });

  test.each(bernstein)('Poly1305-AES paper vector (msg of $msg.length hex chars)', (v) => {
    // The MAC covers the ciphertext with the IV as nonce, so nonce ‖ msg ‖ tag must verify.
    const key: MasterKey = { encrypt: c.randomBytes(32), macK: hex(v.k), macR: hex(v.r) };
    const sealed = cat(hex(v.nonce), hex(v.msg), hex(v.tag));
    expect(c.decrypt(key, sealed)).toHaveLength(v.msg.length / 2);
    const bad = sealed.slice();
    bad[bad.length - 1]! ^= 1;
    expect(() => c.decrypt(key, bad)).toThrow(CiphertextError);
  });

  test('RFC 8439 §2.5.2 Poly1305 vector (unclamped r gets clamped)', () => {
    const r = hex('85d6be7857556d337f4452fe42d506a8');
    const s = hex('0103808afb0db2fd4abff6af4149f51b');
    const macK = c.randomBytes(16);
    // Pick the nonce whose AES-128 encryption under macK is the RFC's s.
    const d = nc.createDecipheriv('aes-128-ecb', macK, null);
    d.setAutoPadding(false);
    const nonce = new Uint8Array(d.update(s));
    const key: MasterKey = { encrypt: c.randomBytes(32), macK, macR: r };
    const msg = utf8('Cryptographic Forum Research Group');
    expect(() => c.decrypt(key, cat(nonce, msg, hex('a8061dc1305136c6c22b8baf0c0127a9')))).not.toThrow();
  });

  test('AES-256-CTR matches NIST SP 800-38A F.5.5 through decrypt', () => {
    const key: MasterKey = {
      encrypt: hex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4'),
      macK: c.randomBytes(16),
      macR: c.randomBytes(16),
    };
    const iv = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
    const pt = hex(
      '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51' +
        '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
    );
    const sealed = refSeal(key, iv, pt);
    expect(toHexString(sealed.subarray(16, 80))).toBe(
      '601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5' +
        '2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6',
    );
    expect(c.decrypt(key, sealed)).toEqual(pt);
  });

  test('counter carries across all 128 bits (IV near 2^128)', () => {
    const key = someKey();
    const iv = hex('00ffffffffffffffffffffffffffffff');
    const pt = c.randomBytes(100);
    expect(c.decrypt(key, refSeal(key, iv, pt))).toEqual(pt);
    const wrap = hex('ffffffffffffffffffffffffffffffff');
    expect(c.decrypt(key, refSeal(key, wrap, pt))).toEqual(pt);
  });

  test.each([0, 1, 15, 16, 17, 1000, 65537])('round trip of %i bytes, layout IV ‖ CTR ‖ MAC', (n) => {
    const key = c.newMasterKey();
    const pt = c.randomBytes(n);
    const ct = c.encrypt(key, pt);
    expect(ct).toHaveLength(n + CRYPTO_OVERHEAD);
    expect(same(ct, refSeal(key, ct.subarray(0, 16), pt))).toBe(true);
    expect(same(c.decrypt(key, ct), pt)).toBe(true);
  });

  test('tampering anywhere, short input or a wrong key → CiphertextError', () => {
    const key = c.newMasterKey();
    const ct = c.encrypt(key, utf8('some secret data'));
    for (const pos of [0, 15, 16, ct.length - 17, ct.length - 16, ct.length - 1]) {
      const bad = ct.slice();
      bad[pos]! ^= 0x80;
      expect(() => c.decrypt(key, bad)).toThrow(CiphertextError);
    }
    for (const n of [0, 1, 31]) expect(() => c.decrypt(key, ct.subarray(0, n))).toThrow(CiphertextError);
    expect(() => c.decrypt(c.newMasterKey(), ct)).toThrow(CiphertextError);
    const err = (() => {
      try {
        c.decrypt(key, ct.subarray(0, 10));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toBe('ciphertext verification failed');
  });

  test('a key with bad lengths is a UsageError', () => {
    expect(() => c.encrypt({ encrypt: new Uint8Array(16), macK: new Uint8Array(16), macR: new Uint8Array(16) }, utf8('x'))).toThrow(
      UsageError,
    );
  });

  test('newMasterKey is random and stores r clamped', () => {
    const a = c.newMasterKey();
    const b = c.newMasterKey();
    expect(a.encrypt).toHaveLength(32);
    expect(a.macK).toHaveLength(16);
    expect(a.macR).toHaveLength(16);
    expect(a.encrypt).not.toEqual(b.encrypt);
    for (const i of [3, 7, 11, 15]) expect(a.macR[i]! & 0xf0).toBe(0);
    for (const i of [4, 8, 12]) expect(a.macR[i]! & 3).toBe(0);
  });

  test('randomBytes beyond the 64 KiB getRandomValues limit', () => {
    const r = c.randomBytes(200_000);
    expect(r).toHaveLength(200_000);
    expect(r.subarray(150_000, 150_032).some((b) => b !== 0)).toBe(true);
  });

  test('sha256: FIPS 180-2 vectors, streaming equals one-shot', () => {
    expect(c.sha256Hex(utf8('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(c.sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const data = c.randomBytes(100_001);
    const h = c.createSha256();
    h.update(data.subarray(0, 7));
    h.update(data.subarray(7, 70_000));
    h.update(data.subarray(70_000));
    expect(same(h.digest(), c.sha256(data))).toBe(true);
    expect(toHexString(c.sha256(data))).toBe(nc.createHash('sha256').update(data).digest('hex'));
    // A view into a larger buffer hashes only its own bytes.
    const view = data.subarray(3, 5003);
    expect(c.sha256Hex(view)).toBe(nc.createHash('sha256').update(view.slice()).digest('hex'));
    expect(toHexString(c.sha256(view))).toBe(c.sha256Hex(view));
  });

  test('scrypt: RFC 7914 vector; bad parameters are a UsageError', async () => {
    const out = await c.scrypt(utf8('password'), utf8('NaCl'), { N: 1024, r: 8, p: 16 });
    expect(toHexString(out)).toBe(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162' +
        '2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
    );
    await expect(c.scrypt(utf8('x'), utf8('y'), { N: 1000, r: 8, p: 1 })).rejects.toThrow(UsageError);
    await expect(c.scrypt(utf8('x'), utf8('y'), { N: 2 ** 24, r: 8, p: 1 })).rejects.toThrow(UsageError);
  });

  test('scrypt at restic parameters needs more than node’s 32 MiB default maxmem', async () => {
    const salt = c.randomBytes(64);
    const out = await c.scrypt(utf8('pw'), salt, { N: 32768, r: 8, p: 1 });
    expect(out).toEqual(new Uint8Array(nc.scryptSync('pw', salt, 64, { N: 32768, r: 8, p: 1, maxmem: 64 << 20 })));
  });
});

test('8 MiB blob (largest pack blob): node and pure suites read each other', () => {
  const node = suites[0]![1];
  const key = newMasterKey();
  const pt = node.randomBytes(8 << 20);
  expect(same(pureCrypto.decrypt(key, node.encrypt(key, pt)), pt)).toBe(true);
  expect(same(node.decrypt(key, pureCrypto.encrypt(key, pt)), pt)).toBe(true);
});

test('node suite: many small blobs under several keys (one cached MAC cipher per key, pooled IVs) read back with the pure suite', () => {
  const node = suites[0]![1];
  const keys = [newMasterKey(), newMasterKey(), newMasterKey()];
  const ivs = new Set<string>();
  for (let i = 0; i < 600; i++) {
    const key = keys[i % 3]!;
    const pt = node.randomBytes(i % 97);
    const ct = node.encrypt(key, pt);
    ivs.add(Buffer.from(ct.subarray(0, 16)).toString('hex'));
    expect(same(pureCrypto.decrypt(key, ct), pt), `blob ${i}`).toBe(true);
    expect(() => pureCrypto.decrypt(keys[(i + 1) % 3]!, ct)).toThrow();
  }
  expect(ivs.size).toBe(600);
});

describe('master key JSON', () => {
  test('round trip and field order', () => {
    const key = newMasterKey();
    const json = masterKeyToJSON(key);
    expect(JSON.stringify(json)).toMatch(/^\{"mac":\{"k":"[A-Za-z0-9+/]{22}==","r":"[A-Za-z0-9+/]{22}=="\},"encrypt":"[A-Za-z0-9+/]{43}="\}$/);
    expect(masterKeyFromJSON(JSON.parse(JSON.stringify(json)))).toEqual(key);
  });

  test('invalid shapes, lengths and zero keys are IntegrityErrors', () => {
    const good = masterKeyToJSON(newMasterKey());
    const bad: unknown[] = [
      null,
      'x',
      { encrypt: good.encrypt },
      { ...good, encrypt: toBase64(new Uint8Array(31).fill(1)) },
      { ...good, mac: { ...good.mac, k: toBase64(new Uint8Array(17).fill(1)) } },
      { ...good, mac: { ...good.mac, r: 5 } },
      { ...good, mac: { ...good.mac, r: 'not base64!' } },
      { ...good, encrypt: toBase64(new Uint8Array(32)) },
    ];
    for (const b of bad) expect(() => masterKeyFromJSON(b)).toThrow(IntegrityError);
  });

  test('keyFromScrypt splits 32 ‖ 16 ‖ 16', () => {
    const d = new Uint8Array(64).map((_, i) => i);
    const k = keyFromScrypt(d);
    expect(k.encrypt).toEqual(d.subarray(0, 32));
    expect(k.macK).toEqual(d.subarray(32, 48));
    expect(k.macR).toEqual(d.subarray(48, 64));
    expect(() => keyFromScrypt(new Uint8Array(32))).toThrow(UsageError);
  });
});

describe('encoding', () => {
  test('base64 agrees with Buffer for every length mod 3', () => {
    for (let n = 0; n < 40; n++) {
      const b = nc.randomBytes(n);
      const s = toBase64(b);
      expect(s).toBe(b.toString('base64'));
      expect(fromBase64(s)).toEqual(new Uint8Array(b));
    }
    expect(fromBase64('AQID\nBA==\r\n')).toEqual(new Uint8Array([1, 2, 3, 4]));
  });

  test('base64 rejects what Go rejects', () => {
    for (const s of ['A', 'AQI', 'AQ=I', 'A===', '=AAA', 'AQID-A==', 'AQ==AQ==', 'AQIDé===']) {
      expect(() => fromBase64(s), s).toThrow(IntegrityError);
    }
  });

  test('hex and sha256Hex/createSha256 from the index', () => {
    expect(toHexString(new Uint8Array([0, 1, 0xab, 0xff]))).toBe('0001abff');
    const h = createSha256();
    h.update(utf8('ab'));
    h.update(utf8('c'));
    expect(toHexString(h.digest())).toBe(sha256Hex(utf8('abc')));
    expect(decrypt).toBeTypeOf('function');
  });
});

import * as nc from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { nodeCryptoSuite } from '../src/crypto/node.js';
import { poly1305Wasm } from '../src/crypto/poly1305-wasm.js';
import { pureCrypto } from '../src/crypto/pure.js';
import { RomixKernel, romixAllLanes, scryptWithRomix, type Pbkdf2Once } from '../src/crypto/romix.js';
import { prestartRomixWorker } from '../src/crypto/romix-thread.js';

const pbkdf2: Pbkdf2Once = (pw, salt, dkLen) => new Uint8Array(nc.pbkdf2Sync(pw, salt, 1, dkLen, 'sha256'));
const openssl = (pw: Uint8Array, salt: Uint8Array, N: number, r: number, p: number): Uint8Array =>
  new Uint8Array(nc.scryptSync(pw, salt, 64, { N, r, p, maxmem: 1 << 30 }));

describe('scrypt with the WebAssembly ROMix', () => {
  test('RFC 7914 §12 vector (N=1024, r=8, p=16)', async () => {
    const out = await scryptWithRomix(pbkdf2, new TextEncoder().encode('password'), new TextEncoder().encode('NaCl'), { N: 1024, r: 8, p: 16 });
    expect(Buffer.from(out!).toString('hex')).toBe(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
    );
  });

  test('equals OpenSSL over N, r and p, with lanes on this thread and on the worker', async () => {
    for (const N of [2, 16, 1024]) {
      for (const r of [1, 2, 3, 8]) {
        for (const p of [1, 2, 3, 5]) {
          const pw = nc.randomBytes(1 + ((N + r + p) % 40));
          const salt = nc.randomBytes(32);
          expect(await scryptWithRomix(pbkdf2, pw, salt, { N, r, p }), `N=${N} r=${r} p=${p}`).toEqual(openssl(pw, salt, N, r, p));
        }
      }
    }
  });

  test("restic's usual parameters (N=2^15, r=8, p=3), with a worker started ahead", async () => {
    prestartRomixWorker();
    const salt = nc.randomBytes(64);
    const pw = new TextEncoder().encode('correct horse');
    expect(await scryptWithRomix(pbkdf2, pw, salt, { N: 32768, r: 8, p: 3 })).toEqual(openssl(pw, salt, 32768, 8, 3));
  });

  test('lanes are left alone when the table does not fit in WebAssembly memory', async () => {
    const lanes = nc.randomBytes(2 * 128 * 8);
    const copy = new Uint8Array(lanes);
    // 128·r·N = 4 GiB: more than a wasm32 memory can hold.
    expect(RomixKernel.create(8, 2 ** 22, 1)).toBeNull();
    expect(await romixAllLanes(lanes, 8, 2 ** 22, 2)).toBe(false);
    expect(new Uint8Array(lanes)).toEqual(copy);
  });

  test('both suites fall back to their own scrypt without WebAssembly', async () => {
    const g = globalThis as { WebAssembly?: unknown };
    const saved = g.WebAssembly;
    const pw = new TextEncoder().encode('pw');
    const salt = nc.randomBytes(16);
    const want = openssl(pw, salt, 1024, 8, 2);
    delete g.WebAssembly;
    try {
      expect(await scryptWithRomix(pbkdf2, pw, salt, { N: 1024, r: 8, p: 2 })).toBeNull();
      expect(await nodeCryptoSuite(nc, poly1305Wasm!).scrypt(pw, salt, { N: 1024, r: 8, p: 2 })).toEqual(want);
      expect(await pureCrypto.scrypt(pw, salt, { N: 1024, r: 8, p: 2 })).toEqual(want);
    } finally {
      g.WebAssembly = saved;
    }
    expect(await pureCrypto.scrypt(pw, salt, { N: 1024, r: 8, p: 2 })).toEqual(want);
  });
});

describe('the compiled lane worker (dist, built by npm test)', () => {
  const dist = new URL('../dist/src/crypto/', import.meta.url);

  test('returns the lanes it was sent, mixed as on this thread', async () => {
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(new URL('romix-worker.js', dist));
    try {
      // One worker, several requests: three lanes, then one with other parameters.
      for (const [count, r, N] of [[3, 2, 256], [1, 8, 1024]] as const) {
        const lanes = nc.randomBytes(count * 128 * r);
        const want = new Uint8Array(lanes);
        await RomixKernel.create(r, N, 2)!.run(want, false);
        const got = await new Promise((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
          w.postMessage({ lanes, r, N });
        });
        expect(got).toEqual(want);
      }
    } finally {
      await w.terminate();
    }
  });

  test('scrypt split between this thread and the worker equals OpenSSL', async () => {
    const built = (await import(new URL('romix.js', dist).href)) as typeof import('../src/crypto/romix.js');
    const thread = (await import(new URL('romix-thread.js', dist).href)) as typeof import('../src/crypto/romix-thread.js');
    // p = 5 and 7: the worker takes more than one pair of lanes.
    for (const p of [2, 3, 4, 5, 7]) {
      if (p === 3 || p === 7) thread.prestartRomixWorker();
      const pw = nc.randomBytes(12);
      const salt = nc.randomBytes(32);
      expect(await built.scryptWithRomix(pbkdf2, pw, salt, { N: 4096, r: 8, p }), `p=${p}`).toEqual(openssl(pw, salt, 4096, 8, p));
    }
  });
});

import type * as NodeCrypto from 'node:crypto';
import type { Poly1305 } from './poly1305-wasm.js';
import { scryptWithRomix, type Pbkdf2Once } from './romix.js';
import { makeSuite, type CryptoSuite, type Primitives } from './suite.js';

/** A view on a Buffer's bytes, so callers get a plain Uint8Array (no Buffer slice/toString quirks). */
function plain(buf: Uint8Array): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Builds the suite on a node:crypto module passed in, so this file never imports node:crypto itself.
 * `poly1305`: usually defaultPoly1305(); benchmarks pass others to compare.
 */
export function nodeCryptoSuite(nc: typeof NodeCrypto, poly1305: Poly1305): CryptoSuite {
  const ecbByKey = new WeakMap<Uint8Array, NodeCrypto.Cipher>();
  // crypto.hash (Node ≥ 20.12) skips the Hash object: ~30 % less time per small blob.
  const oneShotHash = typeof nc.hash === 'function' ? nc.hash : undefined;
  // Small requests (an IV per blob) come from a batch: one randomFillSync call costs ~7 µs.
  const POOL_SIZE = 4096;
  const POOLED_UP_TO = 64;
  let pool = new Uint8Array(0);
  let poolAt = 0;
  const primitives: Primitives = {
    name: 'node',
    randomBytes(n) {
      if (n > POOLED_UP_TO) return nc.randomFillSync(new Uint8Array(n));
      if (poolAt + n > pool.length) {
        pool = nc.randomFillSync(new Uint8Array(POOL_SIZE));
        poolAt = 0;
      }
      poolAt += n;
      return pool.slice(poolAt - n, poolAt);
    },
    aes256ctr(key, iv, input) {
      // CTR mode has no final block: update() returns all of it.
      return plain(nc.createCipheriv('aes-256-ctr', key, iv).update(input));
    },
    aes128block(key, block) {
      // ECB keeps no state between blocks: one cipher per key serves every call (a MAC per blob).
      let c = ecbByKey.get(key);
      if (!c) {
        c = nc.createCipheriv('aes-128-ecb', key, null);
        c.setAutoPadding(false);
        ecbByKey.set(key, c);
      }
      return plain(c.update(block));
    },
    sha256: (data) => plain(oneShotHash ? oneShotHash('sha256', data, 'buffer') : nc.createHash('sha256').update(data).digest()),
    sha256Hex: (data) => (oneShotHash ? oneShotHash('sha256', data, 'hex') : nc.createHash('sha256').update(data).digest('hex')),
    createSha256() {
      const h = nc.createHash('sha256');
      return {
        update(d) {
          h.update(d);
        },
        digest: () => plain(h.digest()),
      };
    },
    async scrypt(password, salt, params, maxmem) {
      const pbkdf2: Pbkdf2Once = (pw, s, dkLen) => plain(nc.pbkdf2Sync(pw, s, 1, dkLen, 'sha256'));
      const viaRomix = await scryptWithRomix(pbkdf2, password, salt, params);
      if (viaRomix) return viaRomix;
      const { N, r, p } = params;
      return new Promise((resolve, reject) => {
        nc.scrypt(password, salt, 64, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(plain(key))));
      });
    },
  };
  return makeSuite(primitives, poly1305);
}

import { ctr, ecb } from '@noble/ciphers/aes.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ResticError } from '../errors.js';
import { defaultPoly1305 } from './poly1305-wasm.js';
import { scryptWithRomix, type Pbkdf2Once } from './romix.js';
import { makeSuite, type CryptoSuite, type Primitives } from './suite.js';

/** getRandomValues refuses more than 65536 bytes per call. */
const RANDOM_CHUNK = 65536;

const purePrimitives: Primitives = {
  name: 'pure',
  randomBytes(n) {
    const webCrypto = (globalThis as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
    if (typeof webCrypto?.getRandomValues !== 'function') throw new ResticError('no secure random number source available');
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += RANDOM_CHUNK) webCrypto.getRandomValues(out.subarray(i, Math.min(n, i + RANDOM_CHUNK)));
    return out;
  },
  aes256ctr: (key, iv, input) => ctr(key, iv).encrypt(input),
  aes128block(key, block) {
    return ecb(key, { disablePadding: true }).encrypt(block);
  },
  sha256: (data) => sha256(data),
  createSha256() {
    const h = sha256.create();
    return {
      update(d) {
        h.update(d);
      },
      digest: () => h.digest(),
    };
  },
  async scrypt(password, salt, params, maxmem) {
    const pbkdf2Once: Pbkdf2Once = (pw, s, dkLen) => pbkdf2(sha256, pw, s, { c: 1, dkLen });
    return (await scryptWithRomix(pbkdf2Once, password, salt, params)) ?? scryptAsync(password, salt, { ...params, dkLen: 64, maxmem });
  },
};

/** The pure-JS implementation (@noble), used where node:crypto is missing; tests import it directly. */
export const pureCrypto: CryptoSuite = makeSuite(purePrimitives, await defaultPoly1305());

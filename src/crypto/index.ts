import type * as NodeCrypto from 'node:crypto';
import { nodeCryptoSuite } from './node.js';
import { defaultPoly1305 } from './poly1305-wasm.js';
import type { CryptoSuite, MasterKey, ScryptParams, Sha256Stream } from './suite.js';

export {
  CRYPTO_OVERHEAD,
  CiphertextError,
  DEFAULT_SCRYPT,
  SCRYPT_MAX_MEMORY,
  keyFromScrypt,
  masterKeyFromJSON,
  masterKeyToJSON,
  scryptParamsProblem,
} from './suite.js';
export type { CryptoSuite, MasterKey, ScryptParams, Sha256Stream } from './suite.js';
export { fromBase64, toBase64, toHexString } from './encoding.js';

async function loadNodeCrypto(): Promise<typeof NodeCrypto | null> {
  try {
    const mod = await import('node:crypto');
    return typeof mod.createCipheriv === 'function' && typeof mod.scrypt === 'function' ? mod : null;
  } catch {
    return null;
  }
}

const nodeCrypto = await loadNodeCrypto();

/** The implementation in use: node:crypto when the runtime has it, else pure JS (@noble, imported only then). */
export const activeCrypto: CryptoSuite = nodeCrypto
  ? nodeCryptoSuite(nodeCrypto, await defaultPoly1305())
  : (await import('./pure.js')).pureCrypto;

export function randomBytes(n: number): Uint8Array {
  return activeCrypto.randomBytes(n);
}

/** A fresh random master key (r already clamped). */
export function newMasterKey(): MasterKey {
  return activeCrypto.newMasterKey();
}

/** IV ‖ AES-256-CTR(plaintext) ‖ Poly1305-AES MAC of the ciphertext. */
export function encrypt(key: MasterKey, plaintext: Uint8Array): Uint8Array {
  return activeCrypto.encrypt(key, plaintext);
}

/** Verifies the MAC, then decrypts; throws CiphertextError on a bad MAC or data shorter than 32 bytes. */
export function decrypt(key: MasterKey, ciphertext: Uint8Array): Uint8Array {
  return activeCrypto.decrypt(key, ciphertext);
}

export function sha256(data: Uint8Array): Uint8Array {
  return activeCrypto.sha256(data);
}

export function sha256Hex(data: Uint8Array): string {
  return activeCrypto.sha256Hex(data);
}

export function createSha256(): Sha256Stream {
  return activeCrypto.createSha256();
}

/** 64 bytes of scrypt output; throws UsageError for unusable parameters. */
export function scrypt(password: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return activeCrypto.scrypt(password, salt, params);
}

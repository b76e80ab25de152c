import { IntegrityError, UsageError } from '../errors.js';
import { fromBase64, toBase64, toHexString } from './encoding.js';
import type { Poly1305 } from './poly1305-wasm.js';

/** restic's master (or scrypt-derived user) key: AES-256 key plus the Poly1305-AES key pair. */
export interface MasterKey {
  encrypt: Uint8Array;
  macK: Uint8Array;
  macR: Uint8Array;
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export interface Sha256Stream {
  update(d: Uint8Array): void;
  digest(): Uint8Array;
}

/** IV (16) + MAC (16) added to every encrypted file and blob. */
export const CRYPTO_OVERHEAD = 32;

/** The parameters restic 0.14 calibrated on typical machines; key files store their own. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 5 };

const IV_SIZE = 16;
const MAC_SIZE = 16;

/** A MAC mismatch: corrupted data, or (for key files) the wrong password. */
export class CiphertextError extends IntegrityError {
  override name = 'CiphertextError';
  constructor() {
    super('ciphertext verification failed');
  }
}

/** The few primitives that differ between node:crypto and the pure-JS fallback. */
export interface Primitives {
  readonly name: 'node' | 'pure';
  randomBytes(n: number): Uint8Array;
  /** AES-256-CTR with a 128-bit big-endian counter starting at `iv`, into new memory. */
  aes256ctr(key: Uint8Array, iv: Uint8Array, input: Uint8Array): Uint8Array;
  /** One AES-128 block encryption. */
  aes128block(key: Uint8Array, block: Uint8Array): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  /** Where the platform hashes straight to hex (ids are hex everywhere); else hex of sha256(). */
  sha256Hex?(data: Uint8Array): string;
  createSha256(): Sha256Stream;
  /** 64 bytes; params already validated. */
  scrypt(password: Uint8Array, salt: Uint8Array, params: ScryptParams, maxmem: number): Promise<Uint8Array>;
}

/** The crypto API as exported by src/crypto/index.ts, bound to one set of primitives. */
export interface CryptoSuite {
  readonly name: 'node' | 'pure';
  randomBytes(n: number): Uint8Array;
  newMasterKey(): MasterKey;
  encrypt(key: MasterKey, plaintext: Uint8Array): Uint8Array;
  decrypt(key: MasterKey, ciphertext: Uint8Array): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  sha256Hex(data: Uint8Array): string;
  createSha256(): Sha256Stream;
  scrypt(password: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array>;
}

/** Refuse scrypt parameters that would need more memory than this (restic's calibration stays far below). */
export const SCRYPT_MAX_MEMORY = 1 << 30;

/** Why `params` are unusable for scrypt, or null when they are fine. */
export function scryptParamsProblem(params: ScryptParams): string | null {
  const { N, r, p } = params;
  if (!Number.isSafeInteger(N) || N < 2 || (N & (N - 1)) !== 0) return `scrypt N=${N} is not a power of two > 1`;
  if (!Number.isSafeInteger(r) || r < 1) return `scrypt r=${r} is not a positive integer`;
  if (!Number.isSafeInteger(p) || p < 1) return `scrypt p=${p} is not a positive integer`;
  if (r * p >= 2 ** 30) return `scrypt r*p=${r * p} is too large`;
  if (scryptMemory(params) > SCRYPT_MAX_MEMORY) return `scrypt N=${N}, r=${r}, p=${p} needs more than 1 GiB of memory`;
  return null;
}

/** Bytes scrypt allocates: the V table (128·r·N) plus the B blocks (128·r·p), with slack. */
function scryptMemory({ N, r, p }: ScryptParams): number {
  return 128 * r * (N + p + 2) + 1024 * 1024;
}

/** Poly1305 ignores these bits of r; clearing them ourselves keeps unclamped stored keys working. */
function clampR(r: Uint8Array): Uint8Array {
  const c = r.slice();
  c[3]! &= 15;
  c[7]! &= 15;
  c[11]! &= 15;
  c[15]! &= 15;
  c[4]! &= 252;
  c[8]! &= 252;
  c[12]! &= 252;
  return c;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function checkKey(key: MasterKey): void {
  if (key.encrypt.length !== 32 || key.macK.length !== 16 || key.macR.length !== 16) {
    throw new UsageError('invalid key: expected 32-byte encryption key and 16-byte MAC k and r');
  }
}

/**
 * `poly1305` is the WebAssembly kernel where the runtime has WebAssembly (see defaultPoly1305): with
 * @noble's JS it was the slowest step of encrypt(). Benchmarks pass @noble's to compare.
 */
export function makeSuite(prim: Primitives, poly1305: Poly1305): CryptoSuite {
  /** Poly1305-AES (Bernstein): one-time key clamp(r) ‖ AES-128_k(nonce). */
  function mac(key: MasterKey, nonce: Uint8Array, msg: Uint8Array): Uint8Array {
    const oneTime = new Uint8Array(32);
    oneTime.set(clampR(key.macR), 0);
    oneTime.set(prim.aes128block(key.macK, nonce), 16);
    return poly1305(msg, oneTime);
  }

  function randomBytes(n: number): Uint8Array {
    return prim.randomBytes(n);
  }

  return {
    name: prim.name,
    randomBytes,
    newMasterKey(): MasterKey {
      const b = prim.randomBytes(64);
      // restic clamps r when generating; doing the same keeps older readers that do not clamp happy.
      return { encrypt: b.slice(0, 32), macK: b.slice(32, 48), macR: clampR(b.subarray(48, 64)) };
    },
    encrypt(key: MasterKey, plaintext: Uint8Array): Uint8Array {
      checkKey(key);
      const out = new Uint8Array(plaintext.length + CRYPTO_OVERHEAD);
      const iv = prim.randomBytes(IV_SIZE);
      out.set(iv, 0);
      out.set(prim.aes256ctr(key.encrypt, iv, plaintext), IV_SIZE);
      const body = out.subarray(IV_SIZE, IV_SIZE + plaintext.length);
      out.set(mac(key, iv, body), IV_SIZE + plaintext.length);
      return out;
    },
    decrypt(key: MasterKey, ciphertext: Uint8Array): Uint8Array {
      checkKey(key);
      if (ciphertext.length < CRYPTO_OVERHEAD) throw new CiphertextError();
      const iv = ciphertext.subarray(0, IV_SIZE);
      const body = ciphertext.subarray(IV_SIZE, ciphertext.length - MAC_SIZE);
      const tag = ciphertext.subarray(ciphertext.length - MAC_SIZE);
      if (!constantTimeEqual(mac(key, iv, body), tag)) throw new CiphertextError();
      // The plaintext is the cipher's own output: restores decrypt gigabytes, no copy on top.
      return prim.aes256ctr(key.encrypt, iv, body);
    },
    sha256: (data) => prim.sha256(data),
    sha256Hex: prim.sha256Hex ? (data) => prim.sha256Hex!(data) : (data) => toHexString(prim.sha256(data)),
    createSha256: () => prim.createSha256(),
    async scrypt(password: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
      const problem = scryptParamsProblem(params);
      if (problem !== null) throw new UsageError(problem);
      return prim.scrypt(password, salt, params, scryptMemory(params));
    },
  };
}

/** Splits scrypt's 64-byte output the way restic does: 32 AES key ‖ 16 MAC k ‖ 16 MAC r. */
export function keyFromScrypt(derived64: Uint8Array): MasterKey {
  if (derived64.length !== 64) throw new UsageError(`scrypt output must be 64 bytes, got ${derived64.length}`);
  return { encrypt: derived64.slice(0, 32), macK: derived64.slice(32, 48), macR: derived64.slice(48, 64) };
}

/** The JSON restic stores (encrypted) in a key file's `data`; field order matches Go's struct. */
export function masterKeyToJSON(key: MasterKey): { mac: { k: string; r: string }; encrypt: string } {
  return { mac: { k: toBase64(key.macK), r: toBase64(key.macR) }, encrypt: toBase64(key.encrypt) };
}

function keyField(value: unknown, what: string, len: number): Uint8Array {
  if (typeof value !== 'string') throw new IntegrityError(`invalid master key: ${what} is not a base64 string`);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(value);
  } catch {
    throw new IntegrityError(`invalid master key: ${what} is not valid base64`);
  }
  if (bytes.length !== len) throw new IntegrityError(`invalid master key: ${what} has ${bytes.length} bytes, expected ${len}`);
  // restic's Key.Valid() rejects all-zero components: they mean the field was missing.
  if (bytes.every((b) => b === 0)) throw new IntegrityError(`invalid master key: ${what} is all zero`);
  return bytes;
}

export function masterKeyFromJSON(json: unknown): MasterKey {
  if (typeof json !== 'object' || json === null) throw new IntegrityError('invalid master key: not a JSON object');
  const { mac, encrypt } = json as { mac?: unknown; encrypt?: unknown };
  if (typeof mac !== 'object' || mac === null) throw new IntegrityError('invalid master key: missing mac object');
  const { k, r } = mac as { k?: unknown; r?: unknown };
  return { encrypt: keyField(encrypt, 'encrypt', 32), macK: keyField(k, 'mac.k', 16), macR: keyField(r, 'mac.r', 16) };
}

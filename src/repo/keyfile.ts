import {
  CiphertextError,
  decrypt,
  encrypt,
  fromBase64,
  keyFromScrypt,
  masterKeyFromJSON,
  masterKeyToJSON,
  randomBytes,
  scrypt,
  scryptParamsProblem,
  toBase64,
  DEFAULT_SCRYPT,
  type MasterKey,
  type ScryptParams,
} from '../crypto/index.js';
import type { Backend } from '../backends/backend.js';
import { IntegrityError, ResticError, WrongPasswordError } from '../errors.js';
import { nowNs } from './clock.js';
import { goJsonString } from './gostring.js';
import { formatGoTime } from './gotime.js';
import type { Id } from './id.js';

/** A key file (`keys/<id>`): plain JSON; `data` is the master key encrypted with the scrypt-derived user key. */
export interface KeyFile {
  created: string;
  username: string;
  hostname: string;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  data: string;
}

const SALT_SIZE = 64;
/** Go's zero time.Time, what restic reports for a key file without `created`. */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Creates key file bytes exactly as restic writes them: compact JSON, restic's field order, no newline. */
export async function createKeyFile(
  master: MasterKey,
  password: string,
  opts: { username: string; hostname: string; params?: ScryptParams; created?: Date },
): Promise<Uint8Array> {
  const params = opts.params ?? DEFAULT_SCRYPT;
  const salt = randomBytes(SALT_SIZE);
  const userKey = keyFromScrypt(await scrypt(utf8.encode(password), salt, params));
  const data = encrypt(userKey, utf8.encode(JSON.stringify(masterKeyToJSON(master))));
  const json =
    `{"created":${goJsonString(formatGoTime(opts.created ? BigInt(opts.created.getTime()) * 1_000_000n : nowNs()))}` +
    `,"username":${goJsonString(opts.username)},"hostname":${goJsonString(opts.hostname)}` +
    `,"kdf":"scrypt","N":${params.N},"r":${params.r},"p":${params.p}` +
    `,"salt":"${toBase64(salt)}","data":"${toBase64(data)}"}`;
  return utf8.encode(json);
}

function stringField(obj: Record<string, unknown>, name: string, fallback?: string): string {
  const v = obj[name];
  // Like Go's decoder, a missing or null field keeps the zero value.
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  if (typeof v !== 'string') throw new IntegrityError(`invalid key file: "${name}" is not a string`);
  return v;
}

function intField(obj: Record<string, unknown>, name: string): number {
  const v = obj[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new IntegrityError(`invalid key file: "${name}" is not an integer`);
  return v;
}

/** Parses and validates key file bytes (for `cat key` and opening); malformed content is an IntegrityError. */
export function parseKeyFile(bytes: Uint8Array): KeyFile {
  let obj: unknown;
  try {
    obj = JSON.parse(utf8Strict.decode(bytes));
  } catch {
    throw new IntegrityError('invalid key file: not valid JSON');
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new IntegrityError('invalid key file: not a JSON object');
  }
  const o = obj as Record<string, unknown>;
  const kdf = stringField(o, 'kdf', '');
  if (kdf !== 'scrypt') throw new IntegrityError(`invalid key file: unsupported KDF "${kdf}", only scrypt is supported`);
  const key: KeyFile = {
    created: stringField(o, 'created', GO_ZERO_TIME),
    username: stringField(o, 'username', ''),
    hostname: stringField(o, 'hostname', ''),
    kdf,
    N: intField(o, 'N'),
    r: intField(o, 'r'),
    p: intField(o, 'p'),
    salt: stringField(o, 'salt'),
    data: stringField(o, 'data'),
  };
  const problem = scryptParamsProblem(key);
  if (problem !== null) throw new IntegrityError(`invalid key file: ${problem}`);
  for (const name of ['salt', 'data'] as const) {
    try {
      fromBase64(key[name]);
    } catch {
      throw new IntegrityError(`invalid key file: "${name}" is not valid base64`);
    }
  }
  return key;
}

/**
 * Opens a key file with a password. Returns null when the password does not fit (the MAC of `data`
 * fails, which is also what a corrupted `data` looks like); malformed files throw IntegrityError.
 */
export async function openKeyFile(bytes: Uint8Array, password: string): Promise<MasterKey | null> {
  const kf = parseKeyFile(bytes);
  const userKey = keyFromScrypt(await scrypt(utf8.encode(password), fromBase64(kf.salt), kf));
  let plain: Uint8Array;
  try {
    plain = decrypt(userKey, fromBase64(kf.data));
  } catch (err) {
    if (err instanceof CiphertextError) return null;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(utf8Strict.decode(plain));
  } catch {
    throw new IntegrityError('invalid key file: decrypted master key is not valid JSON');
  }
  return masterKeyFromJSON(json);
}

/** The master key and the key file it was opened from. */
export interface UnlockedKey {
  key: MasterKey;
  keyId: Id;
}

/**
 * Tries `password` against every key file of the repository behind `backend`. It needs nothing else of
 * the repository, so callers can start it (scrypt pauses for the event loop and shares its lanes with a
 * worker thread) while they load the rest.
 */
export async function unlockKey(backend: Backend, password: string): Promise<UnlockedKey> {
  const problems: string[] = [];
  for await (const f of backend.list('keys')) {
    try {
      const key = await openKeyFile(await backend.load('keys', f.name), password);
      if (key) return { key, keyId: f.name };
    } catch (err) {
      if (!(err instanceof ResticError)) throw err;
      problems.push(`keys/${f.name}: ${err.message}`);
    }
  }
  if (problems.length) throw new IntegrityError(`${problems.join('; ')} (and no other key matched the password)`);
  throw new WrongPasswordError();
}

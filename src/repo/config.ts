import { IntegrityError } from '../errors.js';
import { isId, type Id } from './id.js';

/** The repository `config` file (stored encrypted, never compressed, no version byte). */
export interface Config {
  version: 1 | 2;
  id: Id;
  /** Chunker polynomial as restic writes it: lower-case hex. */
  chunkerPolynomial: string;
}

export function encodeConfig(config: Config): Uint8Array {
  return Buffer.from(
    JSON.stringify({ version: config.version, id: config.id, chunker_polynomial: config.chunkerPolynomial }),
  );
}

export function decodeConfig(plaintext: Uint8Array): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(plaintext).toString('utf8'));
  } catch {
    throw new IntegrityError('config: not valid JSON');
  }
  const obj = raw as Record<string, unknown>;
  const { version, id, chunker_polynomial: pol } = obj;
  if (version !== 1 && version !== 2) throw new IntegrityError(`config: unsupported repository version ${String(version)}`);
  if (typeof id !== 'string' || !isId(id)) throw new IntegrityError('config: invalid repository id');
  if (typeof pol !== 'string' || !/^[0-9a-f]+$/i.test(pol)) throw new IntegrityError('config: invalid chunker polynomial');
  return { version, id, chunkerPolynomial: pol.toLowerCase() };
}

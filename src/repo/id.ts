import { UsageError } from '../errors.js';

/** A repository object id: 64 lower-case hex characters (SHA-256). */
export type Id = string;

const ID_RE = /^[0-9a-f]{64}$/;

export function isId(s: string): boolean {
  return ID_RE.test(s);
}

export function parseId(s: string): Id {
  if (!isId(s)) throw new UsageError(`invalid id "${s}": expected 64 hex characters`);
  return s;
}

export function shortId(id: Id): string {
  return id.slice(0, 8);
}

export function toHex(bytes: Uint8Array): Id {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

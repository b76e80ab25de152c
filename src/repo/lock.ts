import { IntegrityError } from '../errors.js';

/** A `locks/<id>` file. */
export interface Lock {
  time: string;
  exclusive: boolean;
  hostname: string;
  username: string;
  pid: number;
  uid?: number;
  gid?: number;
}

export function encodeLock(lock: Lock): Uint8Array {
  const json: Record<string, unknown> = {
    time: lock.time,
    exclusive: lock.exclusive,
    hostname: lock.hostname,
    username: lock.username,
    pid: lock.pid,
  };
  if (lock.uid !== undefined) json.uid = lock.uid;
  if (lock.gid !== undefined) json.gid = lock.gid;
  return Buffer.from(JSON.stringify(json));
}

export function decodeLock(json: Uint8Array, id: string): Lock {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(Buffer.from(json).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new IntegrityError(`lock ${id}: not valid JSON`);
  }
  if (typeof o.time !== 'string' || typeof o.pid !== 'number') throw new IntegrityError(`lock ${id}: malformed`);
  const lock: Lock = {
    time: o.time,
    exclusive: o.exclusive === true,
    hostname: typeof o.hostname === 'string' ? o.hostname : '',
    username: typeof o.username === 'string' ? o.username : '',
    pid: o.pid,
  };
  if (typeof o.uid === 'number') lock.uid = o.uid;
  if (typeof o.gid === 'number') lock.gid = o.gid;
  return lock;
}

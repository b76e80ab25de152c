import { IntegrityError } from '../errors.js';
import { isId, type Id } from './id.js';

/** A snapshot as stored in `snapshots/<id>`; `id` is the file name, not part of the JSON. */
export interface Snapshot {
  id: Id;
  /** Go RFC3339Nano time string, kept verbatim. */
  time: string;
  parent?: Id;
  tree: Id;
  paths: string[];
  hostname?: string;
  username?: string;
  uid?: number;
  gid?: number;
  excludes?: string[];
  tags?: string[];
  original?: Id;
  programVersion?: string;
  /** Backup summary written by restic ≥ 0.17; kept as is. */
  summary?: Record<string, unknown>;
}

export type NewSnapshot = Omit<Snapshot, 'id'>;

/** JSON in restic's field order with Go's omitempty rules. */
export function encodeSnapshot(s: NewSnapshot): Uint8Array {
  const json: Record<string, unknown> = { time: s.time };
  if (s.parent) json.parent = s.parent;
  json.tree = s.tree;
  json.paths = s.paths;
  if (s.hostname) json.hostname = s.hostname;
  if (s.username) json.username = s.username;
  if (s.uid) json.uid = s.uid;
  if (s.gid) json.gid = s.gid;
  if (s.excludes?.length) json.excludes = s.excludes;
  if (s.tags?.length) json.tags = s.tags;
  if (s.original) json.original = s.original;
  if (s.programVersion) json.program_version = s.programVersion;
  if (s.summary) json.summary = s.summary;
  return Buffer.from(JSON.stringify(json));
}

export function decodeSnapshot(json: Uint8Array, id: Id): Snapshot {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(json).toString('utf8'));
  } catch {
    throw new IntegrityError(`snapshot ${id}: not valid JSON`);
  }
  const o = raw as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw new IntegrityError(`snapshot ${id}: not an object`);
  if (typeof o.time !== 'string') throw new IntegrityError(`snapshot ${id}: missing time`);
  if (typeof o.tree !== 'string' || !isId(o.tree)) throw new IntegrityError(`snapshot ${id}: missing or invalid tree id`);
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);
  const snap: Snapshot = { id, time: o.time, tree: o.tree, paths: strings(o.paths) ?? [] };
  if (typeof o.parent === 'string') snap.parent = o.parent;
  if (typeof o.hostname === 'string') snap.hostname = o.hostname;
  if (typeof o.username === 'string') snap.username = o.username;
  if (typeof o.uid === 'number') snap.uid = o.uid;
  if (typeof o.gid === 'number') snap.gid = o.gid;
  const excludes = strings(o.excludes);
  if (excludes) snap.excludes = excludes;
  const tags = strings(o.tags);
  if (tags) snap.tags = tags;
  if (typeof o.original === 'string') snap.original = o.original;
  if (typeof o.program_version === 'string') snap.programVersion = o.program_version;
  if (typeof o.summary === 'object' && o.summary !== null) snap.summary = o.summary as Record<string, unknown>;
  return snap;
}

/** restic's JSON output shape for `snapshots --json` (adds id and short_id). */
export function snapshotToJSON(s: Snapshot): Record<string, unknown> {
  const body = JSON.parse(Buffer.from(encodeSnapshot(s)).toString('utf8')) as Record<string, unknown>;
  return { ...body, id: s.id, short_id: s.id.slice(0, 8) };
}

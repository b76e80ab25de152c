// The parent snapshot of a backup and restic 0.14's change detection against it.
import { ResticError, UsageError } from '../errors.js';
import { unquoteName } from '../repo/gostring.js';
import { checkGoTime, parseGoTime } from '../repo/gotime.js';
import type { Id } from '../repo/id.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { decodeTree } from '../repo/tree.js';

export interface ParentQuery {
  /** Snapshot id or unique prefix given with --parent. */
  explicit?: string;
  hostname: string;
  /** Absolute, cleaned backup targets; the parent must contain all of them. */
  paths: readonly string[];
  /** Snapshots newer than this (epoch ns) are not considered. */
  notAfterNs: bigint;
}

/** restic's choice: --parent, else the newest snapshot of this host containing every target path. */
export async function findParentSnapshot(repo: Repository, q: ParentQuery): Promise<Snapshot | undefined> {
  if (q.explicit !== undefined) {
    try {
      return await repo.loadSnapshot(await repo.resolveId('snapshots', q.explicit));
    } catch (err) {
      throw new UsageError(`invalid id "${q.explicit}": ${(err as Error).message}`);
    }
  }
  const candidates = (await repo.snapshots({ host: q.hostname, paths: q.paths })).filter((s) => parseGoTime(s.time) <= q.notAfterNs);
  return candidates[candidates.length - 1];
}

/** A directory of the parent snapshot, by raw name. */
export type ParentDir = Map<string, Node>;

export function nameKey(rawName: Buffer): string {
  return rawName.toString('latin1');
}

export async function loadParentDir(repo: Repository, treeId: Id): Promise<ParentDir> {
  const dir: ParentDir = new Map();
  for (const n of decodeParentTree(await repo.loadBlob('tree', treeId))) dir.set(nameKey(n.rawName), n);
  return dir;
}

const KNOWN_FIELDS = new Set(['name', 'type', 'mode', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'user', 'group', 'inode', 'device_id', 'size', 'links', 'linktarget', 'device', 'content', 'subtree', 'error']);
const NODE_TYPES = new Set(['file', 'dir', 'symlink', 'dev', 'chardev', 'fifo', 'socket']);
const ZERO_TIME = '0001-01-01T00:00:00Z';
const LOWER_ID = /^[0-9a-f]{64}$/;

/** Thrown inside the fast path when a tree needs the exact decoder. */
class Unusual extends Error {}

function count(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Unusual();
  return v;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new Unusual();
  return v;
}

function time(v: unknown): string {
  if (v === undefined || v === null) return ZERO_TIME;
  const t = text(v);
  checkGoTime(t);
  return t;
}

function id(v: unknown): string {
  if (typeof v !== 'string' || !LOWER_ID.test(v)) throw new Unusual();
  return v;
}

/**
 * A parent tree as decodeTree reads it, several times faster: JSON.parse handles trees as restic
 * writes them (lower-case field names, integers below 2^53, no extended attributes); anything else
 * goes to the exact decoder (src/repo/tree.ts), which also reports malformed trees.
 */
export function decodeParentTree(data: Uint8Array): Node[] {
  try {
    const doc = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.length).toString('utf8')) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Unusual();
    const list = (doc as { nodes?: unknown }).nodes;
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list)) throw new Unusual();
    return list.map((v: unknown): Node => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Unusual();
      const o = v as Record<string, unknown>;
      for (const k in o) if (!KNOWN_FIELDS.has(k)) throw new Unusual();
      const type = text(o.type);
      if (!NODE_TYPES.has(type)) throw new Unusual();
      const rawName = unquoteName(text(o.name));
      let content: string[] | null = null;
      if (Array.isArray(o.content)) content = o.content.map(id);
      else if (o.content !== undefined && o.content !== null) throw new Unusual();
      const node: Node = {
        rawName,
        name: rawName.toString('utf8'),
        type: type as Node['type'],
        mtime: time(o.mtime),
        atime: time(o.atime),
        ctime: time(o.ctime),
        uid: count(o.uid),
        gid: count(o.gid),
        content,
      };
      if (node.uid > 0xffffffff || node.gid > 0xffffffff) throw new Unusual();
      const mode = count(o.mode);
      if (mode > 0xffffffff) throw new Unusual();
      if (mode) node.mode = mode;
      const user = text(o.user);
      if (user) node.user = user;
      const group = text(o.group);
      if (group) node.group = group;
      const inode = count(o.inode);
      if (inode) node.inode = inode;
      const deviceId = count(o.device_id);
      if (deviceId) node.deviceId = deviceId;
      const size = count(o.size);
      if (size) node.size = size;
      const links = count(o.links);
      if (links) node.links = links;
      const linktarget = text(o.linktarget);
      if (linktarget) node.linktarget = linktarget;
      const device = count(o.device);
      if (device) node.device = device;
      if (o.subtree !== undefined && o.subtree !== null) node.subtree = id(o.subtree);
      const error = text(o.error);
      if (error) node.error = error;
      return node;
    });
  } catch (err) {
    if (err instanceof Unusual || err instanceof SyntaxError || err instanceof ResticError) return decodeTree(data);
    throw err;
  }
}

/** Equal instants; the strings differ only when written in different time zones. */
function sameTime(a: string, b: string): boolean {
  return a === b || parseGoTime(a) === parseGoTime(b);
}

export interface ChangeOptions {
  ignoreCtime?: boolean;
  ignoreInode?: boolean;
}

/** restic's fileChanged: type, size, mtime, then ctime and inode unless ignored. */
export function fileChanged(current: Node, previous: Node | undefined, opts: ChangeOptions): boolean {
  if (!previous || previous.type !== 'file') return true;
  if ((current.size ?? 0) !== (previous.size ?? 0)) return true;
  if (!sameTime(current.mtime, previous.mtime)) return true;
  if (!opts.ignoreCtime && !opts.ignoreInode && !sameTime(current.ctime, previous.ctime)) return true;
  if (!opts.ignoreInode && !sameUint(current.inode, previous.inode)) return true;
  return false;
}

/** Equal 64-bit values, each a number, a bigint (only above 2^53) or absent (0). */
function sameUint(a: number | bigint | undefined, b: number | bigint | undefined): boolean {
  if (typeof a !== 'bigint' && typeof b !== 'bigint') return (a ?? 0) === (b ?? 0);
  return BigInt(a ?? 0) === BigInt(b ?? 0);
}

function sameList<T>(a: readonly T[] | null | undefined, b: readonly T[] | null | undefined, eq: (x: T, y: T) => boolean): boolean {
  if (a === null || a === undefined) return b === null || b === undefined;
  if (b === null || b === undefined || a.length !== b.length) return false;
  return a.every((x, i) => eq(x, b[i]!));
}

/** restic's Node.Equals: decides "unmodified" versus "changed" in the summary. */
export function nodesEqual(a: Node, b: Node): boolean {
  if (a === b) return true;
  return (
    a.rawName.equals(b.rawName) &&
    a.type === b.type &&
    (a.mode ?? 0) === (b.mode ?? 0) &&
    sameTime(a.mtime, b.mtime) &&
    sameTime(a.atime, b.atime) &&
    sameTime(a.ctime, b.ctime) &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    (a.user ?? '') === (b.user ?? '') &&
    (a.group ?? '') === (b.group ?? '') &&
    sameUint(a.inode, b.inode) &&
    sameUint(a.deviceId, b.deviceId) &&
    (a.size ?? 0) === (b.size ?? 0) &&
    (a.links ?? 0) === (b.links ?? 0) &&
    (a.linktarget ?? '') === (b.linktarget ?? '') &&
    (a.device ?? 0) === (b.device ?? 0) &&
    sameList(a.content, b.content, (x, y) => x === y) &&
    sameList(a.extendedAttributes, b.extendedAttributes, (x, y) => x.name === y.name && x.value.equals(y.value)) &&
    a.subtree === b.subtree &&
    (a.error ?? '') === (b.error ?? '')
  );
}

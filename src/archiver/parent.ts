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

/** A directory of the parent snapshot. */
export interface ParentDir {
  byName: Map<string, Node>;
  /**
   * The tree blob is restic's own encoding of these nodes (read by the fast path, restic's framing),
   * so a directory whose nodes all equal these has this very tree id.
   */
  reusable: boolean;
}

export function nameKey(rawName: Buffer): string {
  return rawName.toString('latin1');
}

/** Packs holding parent trees are read whole once several of their trees are wanted, up to this size. */
const MAX_PACK_READ = 16 * 1024 * 1024;
const PACKS_KEPT = 4;

/**
 * Loads the parent snapshot's trees. A snapshot's trees were written together into few packs: after
 * the second tree from one pack, the rest of that pack is read in one go instead of tree by tree.
 */
export class ParentTreeLoader {
  private readonly perPack = new Map<Id, number>();
  private readonly packs = new Map<Id, Promise<Uint8Array>>();

  constructor(private readonly repo: Repository) {}

  async load(treeId: Id): Promise<ParentDir> {
    const data = await this.blob(treeId);
    const fast = fastDecode(data);
    const byName = new Map<string, Node>();
    for (const n of fast ?? decodeTree(data)) byName.set(nameKey(n.rawName), n);
    return { byName, reusable: fast !== undefined && hasResticFraming(data) };
  }

  private async blob(id: Id): Promise<Uint8Array> {
    const loc = this.repo.index.lookup('tree', id);
    if (!loc) return this.repo.loadBlob('tree', id); // reports the missing blob
    let pack = this.packs.get(loc.packId);
    if (pack) {
      // Most recently used last.
      this.packs.delete(loc.packId);
      this.packs.set(loc.packId, pack);
    } else {
      const wanted = (this.perPack.get(loc.packId) ?? 0) + 1;
      this.perPack.set(loc.packId, wanted);
      const extent = Math.max(...(this.repo.index.packs.get(loc.packId) ?? []).map((b) => b.offset + b.length));
      if (wanted < 2 || extent > MAX_PACK_READ) return this.repo.loadBlob('tree', id);
      pack = this.repo.backend.load('data', loc.packId, 0, extent);
      pack.catch(() => undefined);
      this.packs.set(loc.packId, pack);
      if (this.packs.size > PACKS_KEPT) this.packs.delete(this.packs.keys().next().value!);
    }
    return this.repo.decodeBlob(loc, loc.packId, (await pack).subarray(loc.offset, loc.offset + loc.length));
  }
}

/** restic's compact encoding starts with the first node's name and ends with a newline. */
function hasResticFraming(data: Uint8Array): boolean {
  const head = Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, 19)).toString('latin1');
  return (head.startsWith('{"nodes":[{"name":"') || head.startsWith('{"nodes":[]}')) && data[data.length - 1] === 0x0a;
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
  return fastDecode(data) ?? decodeTree(data);
}

/** The fast path of decodeParentTree; undefined when the tree needs the exact decoder. */
function fastDecode(data: Uint8Array): Node[] | undefined {
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
    if (err instanceof Unusual || err instanceof SyntaxError || err instanceof ResticError) return undefined;
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

/** Extended attributes as one comparable string; restic compares them as a set, not in order. */
function xattrKey(n: Node): string {
  return (n.extendedAttributes ?? [])
    .map((x) => `${x.name}=${x.value.toString('hex')}`)
    .sort()
    .join('\n');
}

/** restic's Node.Equals (also `diff --metadata`'s test): decides "unmodified" versus "changed" in the summary. */
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
    xattrKey(a) === xattrKey(b) &&
    a.subtree === b.subtree &&
    (a.error ?? '') === (b.error ?? '')
  );
}

/** Whether two nodes encode to the same tree JSON (every encoded field equal, times as strings). */
export function encodesEqual(a: Node, b: Node): boolean {
  return (
    a.rawName.equals(b.rawName) &&
    a.type === b.type &&
    (a.mode ?? 0) === (b.mode ?? 0) &&
    a.mtime === b.mtime &&
    a.atime === b.atime &&
    a.ctime === b.ctime &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    (a.user ?? '') === (b.user ?? '') &&
    (a.group ?? '') === (b.group ?? '') &&
    sameUint(a.inode, b.inode) &&
    sameUint(a.deviceId, b.deviceId) &&
    (a.size ?? 0) === (b.size ?? 0) &&
    (a.links ?? 0) === (b.links ?? 0) &&
    (a.linktarget ?? '') === (b.linktarget ?? '') &&
    !a.extendedAttributes?.length &&
    !b.extendedAttributes?.length &&
    (a.device ?? 0) === (b.device ?? 0) &&
    sameList(a.content, b.content, (x, y) => x === y) &&
    a.subtree === b.subtree &&
    (a.error ?? '') === (b.error ?? '')
  );
}

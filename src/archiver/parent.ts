// The parent snapshot of a backup and restic 0.14's change detection against it.
import { UsageError } from '../errors.js';
import { parseGoTime } from '../repo/gotime.js';
import type { Id } from '../repo/id.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { decodeTreeExact, decodeTreeFast } from '../repo/tree.js';

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
    const fast = decodeTreeFast(data);
    const byName = new Map<string, Node>();
    for (const n of fast ?? decodeTreeExact(data)) byName.set(nameKey(n.rawName), n);
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
  if (!n.extendedAttributes?.length) return '';
  return n.extendedAttributes
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

/**
 * Whether two nodes encode to the same tree JSON: nodesEqual with times equal as strings (not only as
 * instants), and without extended attributes (nodes the archiver makes never have any).
 */
export function encodesEqual(a: Node, b: Node): boolean {
  return (
    a.mtime === b.mtime &&
    a.atime === b.atime &&
    a.ctime === b.ctime &&
    !a.extendedAttributes?.length &&
    !b.extendedAttributes?.length &&
    nodesEqual(a, b)
  );
}

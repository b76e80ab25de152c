// The parent snapshot of a backup and restic 0.14's change detection against it.
import { UsageError } from '../errors.js';
import { parseGoTime } from '../repo/gotime.js';
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
  for (const n of decodeTree(await repo.loadBlob('tree', treeId))) dir.set(nameKey(n.rawName), n);
  return dir;
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
  if (!opts.ignoreInode && BigInt(current.inode ?? 0) !== BigInt(previous.inode ?? 0)) return true;
  return false;
}

function sameList<T>(a: readonly T[] | null | undefined, b: readonly T[] | null | undefined, eq: (x: T, y: T) => boolean): boolean {
  if (a === null || a === undefined) return b === null || b === undefined;
  if (b === null || b === undefined || a.length !== b.length) return false;
  return a.every((x, i) => eq(x, b[i]!));
}

/** restic's Node.Equals: decides "unmodified" versus "changed" in the summary. */
export function nodesEqual(a: Node, b: Node): boolean {
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
    BigInt(a.inode ?? 0) === BigInt(b.inode ?? 0) &&
    BigInt(a.deviceId ?? 0) === BigInt(b.deviceId ?? 0) &&
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

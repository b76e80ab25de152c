// The archiver's walk calls lstat on every entry. On Linux a synchronous lstat of a cached inode costs a
// few microseconds, while the promise API costs several times that in thread-pool round trips; so the
// walk stats synchronously and builds nodes here, with the same rules as src/fs/node.ts's nodeFromPath
// (test/backup-node.test.ts checks that both give equal nodes).
import { lstatSync, readlinkSync, type BigIntStats } from 'node:fs';
import { ResticError } from '../errors.js';
import { goModeFromStat } from '../fs/node.js';
import { lookupGroupName, lookupUserName } from '../fs/users.js';
import { goStringFromBytes } from '../repo/gostring.js';
import { formatGoTime } from '../repo/gotime.js';
import type { Node, NodeType } from '../repo/node.js';

const TYPES: Record<number, NodeType> = {
  0o100000: 'file',
  0o040000: 'dir',
  0o120000: 'symlink',
  0o060000: 'dev',
  0o020000: 'chardev',
  0o010000: 'fifo',
  0o140000: 'socket',
};

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function exact(v: bigint): number | bigint {
  return v <= MAX_SAFE ? Number(v) : v;
}

/** uid/gid → name, filled before nodes are built (the lookups are asynchronous, once per id). */
export class OwnerNames {
  private readonly users = new Map<number, string>();
  private readonly groups = new Map<number, string>();

  /** Makes sure the names of these owners are known. */
  async load(stats: readonly (BigIntStats | undefined)[]): Promise<void> {
    for (const st of stats) {
      if (!st) continue;
      const uid = Number(st.uid);
      const gid = Number(st.gid);
      if (!this.users.has(uid)) this.users.set(uid, await lookupUserName(uid));
      if (!this.groups.has(gid)) this.groups.set(gid, await lookupGroupName(gid));
    }
  }

  user(uid: number): string {
    return this.users.get(uid) ?? '';
  }

  group(gid: number): string {
    return this.groups.get(gid) ?? '';
  }
}

/** lstat (symlinks not followed), synchronously. */
export function lstatEntry(path: Buffer): BigIntStats {
  return lstatSync(path, { bigint: true });
}

/** The node restic 0.14 records for an lstat result (names must have been loaded into `owners`). */
export function nodeFromStats(path: Buffer, rawName: Buffer, st: BigIntStats, owners: OwnerNames, withAtime: boolean): Node {
  const stMode = Number(st.mode);
  const type = TYPES[stMode & 0o170000];
  if (type === undefined) throw new ResticError(`${path.toString()}: unsupported file type (mode ${stMode.toString(8)})`);
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const mtime = formatGoTime(st.mtimeNs);
  const node: Node = {
    rawName,
    name: rawName.toString('utf8'),
    type,
    mtime,
    atime: withAtime ? formatGoTime(st.atimeNs) : mtime,
    ctime: formatGoTime(st.ctimeNs),
    uid,
    gid,
    content: type === 'file' ? [] : null,
  };
  const mode = goModeFromStat(stMode);
  if (mode) node.mode = mode;
  const user = owners.user(uid);
  const group = owners.group(gid);
  if (user) node.user = user;
  if (group) node.group = group;
  if (st.ino) node.inode = exact(st.ino);
  if (st.dev) node.deviceId = exact(st.dev);
  // restic records links for everything but directories, fifos and sockets.
  const links = type === 'dir' || type === 'fifo' || type === 'socket' ? 0 : Number(st.nlink);
  if (links) node.links = links;
  if (type === 'file' && st.size) node.size = Number(st.size);
  else if (type === 'symlink') node.linktarget = goStringFromBytes(readlinkSync(path, { encoding: 'buffer' }));
  else if ((type === 'dev' || type === 'chardev') && st.rdev) node.device = Number(st.rdev);
  return node;
}

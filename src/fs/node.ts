// Filesystem entry <-> tree node, as restic 0.14's archiver builds nodes and its restorer applies
// metadata. Extended attributes are not read or restored: Node.js has no xattr API without a
// native addon, so a file with xattrs gets a node (and tree id) that differs from restic's.
import type { BigIntStats } from 'node:fs';
import { chmodSync, lchownSync, lutimesSync, utimesSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';

import { ResticError } from '../errors.js';
import { goStringFromBytes } from '../repo/gostring.js';
import { formatGoTime, parseGoTime } from '../repo/gotime.js';
import type { Node, NodeType } from '../repo/node.js';
import { lookupGroupName, lookupUserName } from './users.js';

// Go os.FileMode bits.
const MODE_DIR = 0x80000000;
const MODE_SYMLINK = 0x08000000;
const MODE_DEVICE = 0x04000000;
const MODE_NAMED_PIPE = 0x02000000;
const MODE_SOCKET = 0x01000000;
const MODE_SETUID = 0x00800000;
const MODE_SETGID = 0x00400000;
const MODE_CHAR_DEVICE = 0x00200000;
const MODE_STICKY = 0x00100000;

// POSIX st_mode bits.
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

/** POSIX st_mode → Go os.FileMode (as Go's os.Lstat reports it). */
export function goModeFromStat(stMode: number): number {
  let mode = stMode & 0o777;
  switch (stMode & S_IFMT) {
    case S_IFBLK:
      mode |= MODE_DEVICE;
      break;
    case S_IFCHR:
      mode |= MODE_DEVICE | MODE_CHAR_DEVICE;
      break;
    case S_IFDIR:
      mode |= MODE_DIR;
      break;
    case S_IFIFO:
      mode |= MODE_NAMED_PIPE;
      break;
    case S_IFLNK:
      mode |= MODE_SYMLINK;
      break;
    case S_IFSOCK:
      mode |= MODE_SOCKET;
      break;
  }
  if (stMode & S_ISUID) mode |= MODE_SETUID;
  if (stMode & S_ISGID) mode |= MODE_SETGID;
  if (stMode & S_ISVTX) mode |= MODE_STICKY;
  // Bitwise ops yield int32: bring MODE_DIR's sign bit back to an unsigned value.
  return mode >>> 0;
}

/** Go os.FileMode → POSIX st_mode (file type, permission and setuid/setgid/sticky bits). */
export function statModeFromGo(goMode: number): number {
  let mode = goMode & 0o777;
  if (goMode & MODE_DIR) mode |= S_IFDIR;
  else if (goMode & MODE_SYMLINK) mode |= S_IFLNK;
  else if (goMode & MODE_DEVICE) mode |= goMode & MODE_CHAR_DEVICE ? S_IFCHR : S_IFBLK;
  else if (goMode & MODE_NAMED_PIPE) mode |= S_IFIFO;
  else if (goMode & MODE_SOCKET) mode |= S_IFSOCK;
  else mode |= S_IFREG;
  if (goMode & MODE_SETUID) mode |= S_ISUID;
  if (goMode & MODE_SETGID) mode |= S_ISGID;
  if (goMode & MODE_STICKY) mode |= S_ISVTX;
  return mode;
}

function nodeType(stMode: number): NodeType | undefined {
  switch (stMode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    case S_IFBLK:
      return 'dev';
    case S_IFCHR:
      return 'chardev';
    case S_IFIFO:
      return 'fifo';
    case S_IFSOCK:
      return 'socket';
  }
  return undefined;
}

function exact(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export interface NodeFromPathOptions {
  /** Record the access time; restic (without --with-atime) stores mtime as atime. */
  withAtime?: boolean;
}

/** What nodeFromStats needs besides the lstat result: owner names, and a symlink's target. */
export interface NodeExtras {
  user: string;
  group: string;
  /** Read for symlinks only (see isSymlinkStats). */
  linktarget?: Buffer;
  withAtime: boolean;
}

export function isSymlinkStats(st: BigIntStats): boolean {
  return (Number(st.mode) & S_IFMT) === S_IFLNK;
}

/**
 * The node restic 0.14's archiver makes for an lstat result of `path`. Files get `content: []`
 * and directories no `subtree`: the caller fills them in.
 */
export function nodeFromStats(path: string | Buffer, rawName: Buffer, st: BigIntStats, extras: NodeExtras): Node {
  const stMode = Number(st.mode);
  const type = nodeType(stMode);
  if (type === undefined) throw new ResticError(`${String(path)}: unsupported file type (mode ${stMode.toString(8)})`);
  const mtime = formatGoTime(st.mtimeNs);
  const node: Node = {
    rawName,
    name: rawName.toString('utf8'),
    type,
    mtime,
    atime: extras.withAtime ? formatGoTime(st.atimeNs) : mtime,
    ctime: formatGoTime(st.ctimeNs),
    uid: Number(st.uid),
    gid: Number(st.gid),
    content: type === 'file' ? [] : null,
  };
  const mode = goModeFromStat(stMode);
  if (mode) node.mode = mode;
  if (extras.user) node.user = extras.user;
  if (extras.group) node.group = extras.group;
  if (st.ino) node.inode = exact(st.ino);
  if (st.dev) node.deviceId = exact(st.dev);
  // restic records links for everything but directories, fifos and sockets.
  const links = type === 'dir' || type === 'fifo' || type === 'socket' ? 0 : Number(st.nlink);
  if (links) node.links = links;
  if (type === 'file' && st.size) node.size = Number(st.size);
  else if (type === 'symlink') node.linktarget = goStringFromBytes(extras.linktarget ?? Buffer.alloc(0));
  else if ((type === 'dev' || type === 'chardev') && st.rdev) node.device = Number(st.rdev);
  return node;
}

/** nodeFromStats for `path` (not followed if a symlink), with the owner names looked up. */
export async function nodeFromPath(path: string | Buffer, rawName: Buffer, options: NodeFromPathOptions = {}): Promise<Node> {
  const st = await lstat(path, { bigint: true });
  const [user, group] = await Promise.all([lookupUserName(Number(st.uid)), lookupGroupName(Number(st.gid))]);
  const linktarget = isSymlinkStats(st) ? await readlink(path, { encoding: 'buffer' }) : undefined;
  return nodeFromStats(path, rawName, st, { user, group, linktarget, withAtime: options.withAtime === true });
}

/**
 * A time for fs.utimes: libuv truncates to microseconds, so aim at the middle of the wanted
 * microsecond. Passed as a numeric string because Node replaces negative numbers by "now".
 */
function utimeArg(goTime: string): string {
  const ns = parseGoTime(goTime);
  const us = ns >= 0n ? ns / 1000n : -((-ns + 999n) / 1000n);
  // libuv truncates toward zero, also for negative times: stay on the right side of the boundary.
  const t = us * 10n + (us >= 0n ? 5n : -5n);
  const abs = t < 0n ? -t : t;
  return `${t < 0n ? '-' : ''}${abs / 10_000_000n}.${(abs % 10_000_000n).toString().padStart(7, '0')}`;
}

/**
 * Applies a node's metadata like restic 0.14's restorer: owner (lchown; a permission error is
 * ignored unless running as root), permission bits (not on symlinks), then access and
 * modification times, to the microsecond (Node.js' utimes cannot do nanoseconds). Every step
 * is tried; the first failure is thrown at the end. Extended attributes are not restored.
 * Synchronous: three short syscalls cost less on the calling thread than three trips each through
 * libuv's thread pool, where a restore of thousands of files would queue them ahead of pack reads.
 */
export function restoreMetadata(path: string | Buffer, node: Node): void {
  let first: unknown;
  const attempt = (step: () => void, tolerate?: (e: NodeJS.ErrnoException) => boolean): void => {
    try {
      step();
    } catch (e) {
      if (tolerate?.(e as NodeJS.ErrnoException) !== true) first ??= e;
    }
  };
  // chown before chmod: chown clears setuid/setgid bits.
  attempt(
    () => lchownSync(path, node.uid, node.gid),
    (e) => e.code === 'EPERM' && process.geteuid?.() !== 0,
  );
  if (node.type !== 'symlink') attempt(() => chmodSync(path, statModeFromGo(node.mode ?? 0) & 0o7777));
  attempt(() => (node.type === 'symlink' ? lutimesSync : utimesSync)(path, utimeArg(node.atime), utimeArg(node.mtime)));
  if (first !== undefined) throw first;
}

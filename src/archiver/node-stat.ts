// The archiver's walk calls lstat on every entry. On Linux a synchronous lstat of a cached inode costs a
// few microseconds, while the promise API costs several times that in thread-pool round trips; so the
// walk stats synchronously, with owner names cached, and builds nodes with src/fs/node.ts's rules.
import { lstatSync, readlinkSync, type BigIntStats } from 'node:fs';
import { isSymlinkStats, nodeFromStats } from '../fs/node.js';
import { lookupGroupName, lookupUserName } from '../fs/users.js';
import type { Node } from '../repo/node.js';

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
export function nodeFromLstat(path: Buffer, rawName: Buffer, st: BigIntStats, owners: OwnerNames, withAtime: boolean): Node {
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const linktarget = isSymlinkStats(st) ? readlinkSync(path, { encoding: 'buffer' }) : undefined;
  return nodeFromStats(path, rawName, st, { user: owners.user(uid), group: owners.group(gid), linktarget, withAtime });
}

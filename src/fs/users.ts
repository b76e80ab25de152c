// uid/gid → name as restic 0.14 records them in nodes: the first matching line of /etc/passwd or
// /etc/group (Go's os/user rules), "" when there is none; cached for the life of the process.
import { readFile } from 'node:fs/promises';

import { goStringFromBytes } from '../repo/gostring.js';

/** Parses a colon file into id → name, first line wins; `minFields` as Go's os/user requires. */
function parseColonFile(data: Buffer, minFields: number, isPasswd: boolean): Map<number, string> {
  const names = new Map<number, string>();
  for (const raw of data.toString('latin1').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    if (parts.length < minFields) continue;
    const [name, , id] = parts as [string, string, string];
    // NIS compat entries (+name, -name) are not users; ids must be canonical decimal.
    if (name === '' || name.startsWith('+') || name.startsWith('-') || !/^(0|[1-9][0-9]*)$/.test(id)) continue;
    // Go also skips passwd lines whose gid is not a number.
    if (isPasswd && !/^[+-]?[0-9]+$/.test(parts[3]!)) continue;
    const n = Number(id);
    if (n > 0xffffffff || names.has(n)) continue;
    names.set(n, goStringFromBytes(Buffer.from(name, 'latin1')));
  }
  return names;
}

function loader(path: string, minFields: number, isPasswd: boolean): () => Promise<Map<number, string>> {
  let table: Promise<Map<number, string>> | undefined;
  return () =>
    (table ??= readFile(path).then(
      (data) => parseColonFile(data, minFields, isPasswd),
      // An unreadable file means no names, as in restic.
      () => new Map<number, string>(),
    ));
}

const passwd = loader('/etc/passwd', 7, true);
const group = loader('/etc/group', 4, false);

/** User name of `uid`, or "" when /etc/passwd has none. */
export async function lookupUserName(uid: number): Promise<string> {
  return (await passwd()).get(uid) ?? '';
}

/** Group name of `gid`, or "" when /etc/group has none. */
export async function lookupGroupName(gid: number): Promise<string> {
  return (await group()).get(gid) ?? '';
}

import type { Node } from '../repo/node.js';
import type { Snapshot } from '../repo/snapshot.js';
import { parseGoTime } from '../repo/gotime.js';

/** Sizes as restic prints them: "12.345 MiB". */
export function formatBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (n < 1024) return `${n} B`;
  let v = n;
  let unit = 'B';
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return `${v.toFixed(3)} ${unit}`;
}

/** Go's time layout "2006-01-02 15:04:05" in the local zone. */
export function formatLocalTime(goTime: string): string {
  const d = new Date(Number(parseGoTime(goTime) / 1_000_000n));
  const p = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Go's os.FileMode.String(), e.g. "drwxr-xr-x", "Lrwxrwxrwx", "Dcrw-rw-rw-". */
export function formatGoMode(mode: number): string {
  const typeLetters = 'dalTLDpSugct?';
  let out = '';
  for (let i = 0; i < typeLetters.length; i++) {
    if (mode & (2 ** (31 - i))) out += typeLetters[i];
  }
  if (out === '') out = '-';
  const rwx = 'rwxrwxrwx';
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? rwx[i] : '-';
  return out;
}

export function snapshotTable(snapshots: readonly Snapshot[]): string {
  const rows = snapshots.map((s) => [s.id.slice(0, 8), formatLocalTime(s.time), s.hostname ?? '', (s.tags ?? []).join(','), s.paths.join('\n')]);
  const header = ['ID', 'Time', 'Host', 'Tags', 'Paths'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => Math.max(...r[i]!.split('\n').map((l) => l.length)))));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  const out = [line(header), rule];
  for (const r of rows) {
    const [first, ...more] = r[4]!.split('\n');
    out.push(line([...r.slice(0, 4), first ?? '']));
    for (const p of more) out.push(line(['', '', '', '', p]));
  }
  out.push(rule, `${snapshots.length} snapshots`);
  return out.join('\n') + '\n';
}

/** One `ls -l` line as restic prints it. */
export function formatLsLong(path: string, node: Node): string {
  const target = node.type === 'symlink' ? ` -> ${node.linktarget ?? ''}` : '';
  const user = node.user || String(node.uid);
  const group = node.group || String(node.gid);
  return `${formatGoMode(node.mode ?? 0)} ${user.padStart(5)} ${group.padStart(5)} ${String(node.size ?? 0).padStart(6)} ${formatLocalTime(node.mtime)} ${path}${target}`;
}

/** restic's `ls --json` line for a node. */
export function lsNodeJSON(path: string, node: Node): Record<string, unknown> {
  const json: Record<string, unknown> = { name: node.name, type: node.type, path, uid: node.uid, gid: node.gid };
  if (node.type === 'file') json.size = node.size ?? 0;
  if (node.mode) json.mode = node.mode;
  json.permissions = formatGoMode(node.mode ?? 0);
  json.mtime = node.mtime;
  json.atime = node.atime;
  json.ctime = node.ctime;
  json.struct_type = 'node';
  return json;
}

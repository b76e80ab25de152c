// Text and JSON shapes of restic 0.14's output (cmd/restic/format.go and the commands' printers).
import type { Node } from '../repo/node.js';
import type { Snapshot } from '../repo/snapshot.js';
import { parseGoTime } from '../repo/gotime.js';
import { goJsonString } from '../repo/gostring.js';

export { formatBytes } from '../ui/format.js';

/** Go's Duration.String() of milliseconds (restic rounds durations to ms): "143ms", "1.5s", "2m3.004s". */
export function formatDurationMs(ms: number): string {
  ms = Math.round(ms);
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = ((ms % 60_000) / 1000).toFixed(3).replace(/\.?0+$/, '');
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

const pad = (x: number, n = 2) => String(x).padStart(n, '0');

/** Go's time layout "2006-01-02 15:04:05" in the local zone. */
export function formatLocalTime(goTime: string): string {
  const d = new Date(Number(parseGoTime(goTime) / 1_000_000n));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * Go's Time.String() of a time parsed from RFC 3339 text, in the zone it was written with:
 * "2026-11-27 21:58:26.472322975 +0000 UTC". A non-zero offset prints as "+0100 +0100" (Go names
 * the zone only when it matches the local one; the abbreviation is not available here).
 */
export function formatGoTimeString(goTime: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(goTime);
  if (!m) return goTime;
  const frac = (m[3] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = m[4] === 'Z' || m[4] === '+00:00' || m[4] === '-00:00' ? '+0000 UTC' : `${m[4]!.replace(':', '')} ${m[4]!.replace(':', '')}`;
  return `${m[1]} ${m[2]}${frac ? `.${frac}` : ''} ${zone}`;
}

/** Go's re-encoding of a parsed RFC 3339 time: fraction without trailing zeros, a zero offset as "Z". */
export function goTimeJSON(t: string): string {
  return t.replace(/\.(\d*?)0+(?=[Z+-])/, (_m, digits: string) => (digits ? `.${digits}` : '')).replace(/[+-]00:00$/, 'Z');
}

/** Go's %v of a string slice: "[a b c]". */
export function goList(items: readonly string[]): string {
  return `[${items.join(' ')}]`;
}

/** restic's Snapshot.String(): "<Snapshot 1f09ca44 of [/src] at 2026-… +0000 UTC by root@host>". */
export function snapshotString(s: Snapshot): string {
  return `<Snapshot ${s.id.slice(0, 8)} of ${goList(s.paths)} at ${formatGoTimeString(s.time)} by ${s.username ?? ''}@${s.hostname ?? ''}>`;
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

// Go os.FileMode type bits restic's formatNode adds from the node type.
const TYPE_MODE: Record<Node['type'], number> = {
  file: 0,
  dir: 0x80000000,
  symlink: 0x08000000,
  dev: 0x04000000,
  chardev: 0x04000000 | 0x00200000,
  fifo: 0x02000000,
  socket: 0x01000000,
};

/** restic's formatNode: the path, or with `long` the `ls -l` line (numeric uid/gid, local time). */
export function formatNode(path: Buffer, node: Node, long: boolean): Buffer {
  if (!long) return path;
  const mode = (TYPE_MODE[node.type] | (node.mode ?? 0)) >>> 0;
  const head = `${formatGoMode(mode)} ${String(node.uid).padStart(5)} ${String(node.gid).padStart(5)} ${String(node.size ?? 0).padStart(6)} ${formatLocalTime(node.mtime)} `;
  const target = node.type === 'symlink' ? ` -> ${node.linktarget ?? ''}` : '';
  return Buffer.concat([Buffer.from(head), path, Buffer.from(target)]);
}

/** restic's `ls --json` line for a node (without the newline). */
export function lsNodeJSON(path: Buffer, node: Node): string {
  let s = `{"name":${goJsonString(node.rawName)},"type":${goJsonString(node.type)},"path":${goJsonString(path)},"uid":${node.uid},"gid":${node.gid}`;
  if (node.type === 'file') s += `,"size":${node.size ?? 0}`;
  if (node.mode) s += `,"mode":${node.mode}`;
  s += `,"permissions":${goJsonString(formatGoMode(node.mode ?? 0))}`;
  s += `,"mtime":${goJsonString(goTimeJSON(node.mtime))},"atime":${goJsonString(goTimeJSON(node.atime))},"ctime":${goJsonString(goTimeJSON(node.ctime))}`;
  return s + ',"struct_type":"node"}';
}

/**
 * restic's `find --json` match: the node as Go encodes restic's Node struct, without name, inode,
 * extended attributes, device, content and subtree, and with path and permissions first.
 */
export function findNodeJSON(path: Buffer, node: Node): string {
  let s = `{"path":${goJsonString(path)},"permissions":${goJsonString(formatGoMode(node.mode ?? 0))},"type":${goJsonString(node.type)}`;
  if (node.mode) s += `,"mode":${node.mode}`;
  s += `,"mtime":${goJsonString(goTimeJSON(node.mtime))},"atime":${goJsonString(goTimeJSON(node.atime))},"ctime":${goJsonString(goTimeJSON(node.ctime))}`;
  s += `,"uid":${node.uid},"gid":${node.gid}`;
  if (node.user) s += `,"user":${goJsonString(node.user)}`;
  if (node.group) s += `,"group":${goJsonString(node.group)}`;
  if (node.deviceId) s += `,"device_id":${String(node.deviceId)}`;
  if (node.size) s += `,"size":${node.size}`;
  if (node.links) s += `,"links":${node.links}`;
  if (node.linktarget) s += `,"linktarget":${goJsonString(node.linktarget)}`;
  if (node.error) s += `,"error":${goJsonString(node.error)}`;
  return s + '}';
}

/** Collects output and writes it to stdout in large chunks, waiting for the pipe (back-pressure). */
export class Output {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly write: (chunk: Buffer) => Promise<void>) {}

  async add(s: string | Buffer): Promise<void> {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    this.parts.push(b);
    this.size += b.length;
    if (this.size >= 64 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const chunk = Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    await this.write(chunk);
  }
}

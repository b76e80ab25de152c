// Scans a directory tree by raw byte names and compares two scans entry by entry.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface Entry {
  /** Path relative to the scanned root, raw bytes; the root itself is the empty buffer. */
  rel: Buffer;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (st_mode & 0o7777). */
  perm: number;
  mtimeNs: bigint;
  size: bigint;
  /** SHA-256 hex of a regular file's content. */
  sha256?: string;
  /** Raw bytes of a symlink's target. */
  target?: Buffer;
  ino: bigint;
  nlink: bigint;
}

/** Entries keyed by their relative path's bytes read as latin1 (a lossless 1:1 mapping). */
export type TreeScan = Map<string, Entry>;

const SLASH = Buffer.from('/');

function hashFile(p: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(p)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Walks `root` without following symlinks; names stay raw bytes so invalid UTF-8 survives. */
export async function scanTree(root: string | Buffer): Promise<TreeScan> {
  const rootBuf = Buffer.isBuffer(root) ? root : Buffer.from(root);
  const scan: TreeScan = new Map();
  const visit = async (rel: Buffer): Promise<void> => {
    const abs = rel.length === 0 ? rootBuf : Buffer.concat([rootBuf, SLASH, rel]);
    const st = await lstat(abs, { bigint: true });
    const type: EntryType = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    const entry: Entry = {
      rel,
      type,
      perm: Number(st.mode & 0o7777n),
      mtimeNs: st.mtimeNs,
      size: st.size,
      ino: st.ino,
      nlink: st.nlink,
    };
    if (type === 'file') entry.sha256 = await hashFile(abs);
    if (type === 'symlink') entry.target = await readlink(abs, { encoding: 'buffer' });
    scan.set(rel.toString('latin1'), entry);
    if (type === 'dir') {
      for (const name of await readdir(abs, { encoding: 'buffer' })) {
        await visit(rel.length === 0 ? name : Buffer.concat([rel, SLASH, name]));
      }
    }
  };
  await visit(Buffer.alloc(0));
  return scan;
}

/** A raw path for messages: valid UTF-8 as is, other bytes as \xNN, control characters escaped. */
export function showPath(rel: Buffer | string): string {
  const buf = Buffer.isBuffer(rel) ? rel : Buffer.from(rel, 'latin1');
  const text = buf.toString('utf8');
  const shown = Buffer.from(text).equals(buf)
    ? text
    : [...buf].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
  return JSON.stringify(shown === '' ? '.' : shown);
}

export interface CompareOptions {
  /** 'ns': exact; 'us': within one microsecond (Node sets times with µs precision); 'none': skip. */
  mtime: 'ns' | 'us' | 'none';
  /** Check mode and mtime of the root directory itself too. */
  rootMeta: boolean;
  /** Files hard-linked together in `expected` must share one inode in `actual`. */
  hardlinks: boolean;
}

/** Every difference between two scans, one line each; empty when the trees match. */
export function compareTrees(expected: TreeScan, actual: TreeScan, opts: CompareOptions): string[] {
  const diffs: string[] = [];
  for (const [key, e] of expected) {
    const a = actual.get(key);
    const where = showPath(e.rel);
    if (!a) {
      diffs.push(`missing: ${where} (${e.type})`);
      continue;
    }
    if (a.type !== e.type) {
      diffs.push(`type: ${where}: expected ${e.type}, got ${a.type}`);
      continue;
    }
    const isRoot = e.rel.length === 0;
    if (e.type === 'file') {
      if (a.size !== e.size) diffs.push(`size: ${where}: expected ${e.size}, got ${a.size}`);
      else if (a.sha256 !== e.sha256) diffs.push(`content: ${where}: sha256 differs`);
    }
    if (e.type === 'symlink' && !a.target!.equals(e.target!)) {
      diffs.push(`symlink target: ${where}: expected ${showPath(e.target!)}, got ${showPath(a.target!)}`);
    }
    // Symlink permission bits are always 0777 on Linux and cannot be set.
    if (e.type !== 'symlink' && (!isRoot || opts.rootMeta) && a.perm !== e.perm) {
      diffs.push(`mode: ${where}: expected ${e.perm.toString(8)}, got ${a.perm.toString(8)}`);
    }
    if (opts.mtime !== 'none' && (!isRoot || opts.rootMeta)) {
      const delta = a.mtimeNs - e.mtimeNs;
      const ok = opts.mtime === 'ns' ? delta === 0n : delta > -1000n && delta < 1000n;
      if (!ok) diffs.push(`mtime: ${where}: expected ${formatNs(e.mtimeNs)}, got ${formatNs(a.mtimeNs)}`);
    }
  }
  for (const [key, a] of actual) {
    if (!expected.has(key)) diffs.push(`unexpected: ${showPath(a.rel)} (${a.type})`);
  }
  if (opts.hardlinks) diffs.push(...compareHardlinks(expected, actual));
  return diffs;
}

function compareHardlinks(expected: TreeScan, actual: TreeScan): string[] {
  const groups = new Map<bigint, string[]>();
  for (const [key, e] of expected) {
    if (e.type === 'file' && e.nlink > 1n) groups.set(e.ino, [...(groups.get(e.ino) ?? []), key]);
  }
  const diffs: string[] = [];
  for (const keys of groups.values()) {
    if (keys.length < 2) continue;
    const inodes = new Set(keys.map((k) => actual.get(k)?.ino));
    if (inodes.size !== 1) diffs.push(`hardlink: ${keys.map((k) => showPath(k)).join(', ')} are not one inode`);
  }
  return diffs;
}

function formatNs(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  const neg = frac < 0n;
  const s = neg ? sec - 1n : sec;
  const f = neg ? frac + 1_000_000_000n : frac;
  return `${new Date(Number(s) * 1000).toISOString().slice(0, 19)}.${f.toString().padStart(9, '0')}Z`;
}

/** Short report for assertion messages: the first `max` differences and a count. */
export function summarize(diffs: string[], max = 40): string {
  if (diffs.length === 0) return 'trees match';
  const more = diffs.length > max ? `\n... and ${diffs.length - max} more` : '';
  return `${diffs.length} difference(s):\n${diffs.slice(0, max).join('\n')}${more}`;
}

import { NotFoundError, UsageError } from '../errors.js';
import { parseGoTime } from '../repo/gotime.js';
import type { Id } from '../repo/id.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import type { SnapshotFilter } from '../repo/snapshot-filter.js';
import { joinRaw, loadTree, walkTree } from '../walker/walker.js';

export interface DumpOptions {
  /** Snapshot id, unique prefix or "latest". */
  snapshot: string;
  /** Narrows which snapshot "latest" means. */
  filter?: SnapshotFilter;
  /** Path inside the snapshot: a file (its content) or a directory ("/" for all; a tar archive). */
  path: string;
}

export interface DumpResult {
  snapshot: Snapshot;
  /** True when `data` is a tar archive (a directory was asked for), false for a file's content. */
  archive: boolean;
  /** The bytes, produced as they are read: pipe them with `Readable.from(data)` or `for await`. */
  data: AsyncGenerator<Uint8Array>;
}

/**
 * `restic dump`: a file's content, or a directory as a tar archive written the way restic 0.14's
 * (Go's archive/tar) writer does: USTAR headers, PAX records only where USTAR cannot hold a value
 * (long or non-ASCII names, times before 1970), mtimes rounded to the second, and entries for the
 * directory's content (not the directory itself). Hard links are stored as regular files and
 * special files are left out, as restic does.
 */
export async function dump(repo: Repository, options: DumpOptions): Promise<DumpResult> {
  await repo.loadIndex();
  const snapshot = await repo.findSnapshot(options.snapshot, options.filter);
  const parts = splitDumpPath(options.path);
  const blobs = new BlobCache(repo);
  if (parts.length === 0) return { snapshot, archive: true, data: tarTree(repo, blobs, snapshot.tree, Buffer.from('/')) };
  let tree: Id = snapshot.tree;
  let prefix: Buffer = Buffer.alloc(0);
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    const item = joinRaw(prefix, name);
    const node = (await loadTree(repo, tree)).find((n) => n.rawName.equals(name));
    const shown = JSON.stringify(item.toString());
    if (!node) throw new NotFoundError(`path ${shown} not found in snapshot`);
    const last = i === parts.length - 1;
    if (last && node.type === 'file') return { snapshot, archive: false, data: fileContent(blobs, node) };
    if (node.type !== 'dir') throw new UsageError(`${shown} should be a ${last ? 'file' : 'dir'}, but is a "${node.type}"`);
    if (!node.subtree) throw new NotFoundError(`directory ${shown} has no subtree`);
    if (last) return { snapshot, archive: true, data: tarTree(repo, blobs, node.subtree, item) };
    tree = node.subtree;
    prefix = item;
  }
  throw new Error('unreachable');
}

/** restic's splitPath(path.Clean(p)) as raw components; "/" (or "") gives none. */
function splitDumpPath(p: string): Buffer[] {
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.map((x) => Buffer.from(x));
}

/** Recently loaded data blobs (restic's dumper keeps a 64 MiB LRU): files often repeat blobs. */
class BlobCache {
  private readonly blobs = new Map<Id, Uint8Array>();
  private size = 0;
  constructor(
    private readonly repo: Repository,
    private readonly budget = 64 * 1024 * 1024,
  ) {}

  async get(id: Id): Promise<Uint8Array> {
    const hit = this.blobs.get(id);
    if (hit) {
      this.blobs.delete(id);
      this.blobs.set(id, hit);
      return hit;
    }
    const data = await this.repo.loadBlob('data', id);
    this.blobs.set(id, data);
    this.size += data.length;
    for (const [k, v] of this.blobs) {
      if (this.size <= this.budget || k === id) break;
      this.blobs.delete(k);
      this.size -= v.length;
    }
    return data;
  }
}

async function* fileContent(blobs: BlobCache, node: Node): AsyncGenerator<Uint8Array> {
  for (const id of node.content ?? []) yield await blobs.get(id);
}

// ---- tar, as Go 1.19's archive/tar writes it with an unspecified header format ----

const BLOCK = 512;
const NAME_SIZE = 100;
const PREFIX_SIZE = 155;

/** Every node below `tree` (files, directories, symlinks) as a tar stream, names relative to "/". */
async function* tarTree(repo: Repository, blobs: BlobCache, tree: Id, root: Buffer): AsyncGenerator<Uint8Array> {
  const prefix = root.length === 1 ? Buffer.alloc(0) : root;
  for await (const { node, rawPath } of walkTree(repo, tree, { prefix })) {
    if (node.type !== 'file' && node.type !== 'dir' && node.type !== 'symlink') continue;
    // Names are relative to "/": drop the leading slash.
    const name = rawPath.subarray(1);
    yield tarHeader(node, node.type === 'dir' ? Buffer.concat([name, Buffer.from('/')]) : name);
    if (node.type !== 'file') continue;
    let written = 0;
    for await (const chunk of fileContent(blobs, node)) {
      written += chunk.length;
      yield chunk;
    }
    const size = node.size ?? 0;
    if (written !== size) throw new UsageError(`${rawPath.toString()}: content is ${written} bytes, the snapshot says ${size}`);
    if (size % BLOCK) yield Buffer.alloc(BLOCK - (size % BLOCK));
  }
  yield Buffer.alloc(2 * BLOCK);
}

interface TarFields {
  name: Buffer;
  linkname: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  uname: Buffer;
  gname: Buffer;
}

const MODE_SETUID = 0x00800000;
const MODE_SETGID = 0x00400000;
const MODE_STICKY = 0x00100000;

/** The header block(s) Go writes for one node: USTAR when it can hold every field, else PAX + header. */
export function tarHeader(node: Node, name: Buffer): Buffer {
  const goMode = node.mode ?? 0;
  let mode = goMode & 0o777;
  if (goMode & MODE_SETUID) mode |= 0o4000;
  if (goMode & MODE_SETGID) mode |= 0o2000;
  if (goMode & MODE_STICKY) mode |= 0o1000;
  const f: TarFields = {
    name,
    linkname: Buffer.from(node.type === 'symlink' ? (node.linktarget ?? '') : ''),
    mode,
    uid: node.uid,
    gid: node.gid,
    size: node.type === 'file' ? (node.size ?? 0) : 0,
    // An unspecified format makes Go round ModTime to the second (halves up) and drop atime/ctime.
    mtime: roundedSeconds(node.mtime),
    typeflag: node.type === 'file' ? '0' : node.type === 'dir' ? '5' : '2',
    uname: Buffer.from(node.user ?? ''),
    gname: Buffer.from(node.group ?? ''),
  };
  const pax = new Map<string, Buffer>();
  let ustar = true;
  const str = (v: Buffer, size: number, key: string) => {
    if (isAscii(v) && v.length <= size) return;
    if (key === 'path' && splitUstarPath(v)) return;
    ustar = false;
    pax.set(key, v);
  };
  const num = (v: number, size: number, key: string) => {
    if (fitsOctal(size, v)) return;
    ustar = false;
    pax.set(key, Buffer.from(String(v)));
  };
  str(f.name, NAME_SIZE, 'path');
  str(f.linkname, NAME_SIZE, 'linkpath');
  str(f.uname, 32, 'uname');
  str(f.gname, 32, 'gname');
  num(f.uid, 8, 'uid');
  num(f.gid, 8, 'gid');
  num(f.size, 12, 'size');
  num(f.mtime, 12, 'mtime');
  for (const x of node.extendedAttributes ?? []) {
    // restic turns POSIX ACLs into SCHILY.acl records; other attributes become SCHILY.xattr records.
    if (x.name.startsWith('system.posix_acl_')) continue;
    ustar = false;
    pax.set(`SCHILY.xattr.${x.name}`, x.value);
  }
  if (ustar) {
    const split = f.name.length > NAME_SIZE ? splitUstarPath(f.name)! : undefined;
    return headerBlock({ ...f, name: split ? split.name : f.name }, split?.prefix);
  }
  return Buffer.concat([paxHeader(f, pax), headerBlock(f, undefined, true)]);
}

// Go's zero time.Time (year 1): archive/tar writes it as the Unix epoch.
const GO_ZERO_TIME_NS = -62135596800n * 1_000_000_000n;

function roundedSeconds(goTime: string): number {
  const ns = parseGoTime(goTime);
  if (ns === GO_ZERO_TIME_NS) return 0;
  const sec = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  const frac = ns - sec * 1_000_000_000n;
  return Number(sec + (frac >= 500_000_000n ? 1n : 0n));
}

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c === 0 || c >= 0x80) return false;
  return true;
}

function fitsOctal(size: number, v: number): boolean {
  return v >= 0 && (size >= 22 || v < 8 ** (size - 1));
}

/** Go's splitUSTARPath: a long ASCII name split at a "/" into a prefix (≤ 155) and a name (≤ 100). */
function splitUstarPath(name: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  let length = name.length;
  if (length <= NAME_SIZE || !isAscii(name)) return undefined;
  if (length > PREFIX_SIZE + 1) length = PREFIX_SIZE + 1;
  else if (name[length - 1] === 0x2f) length--;
  const i = name.subarray(0, length).lastIndexOf(0x2f);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > NAME_SIZE || nlen === 0 || i > PREFIX_SIZE) return undefined;
  return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
}

/** Go's toASCII: drops every non-ASCII character (and NUL) for header fields of a PAX entry. */
function toAscii(b: Buffer): Buffer {
  if (isAscii(b)) return b;
  // Go ranges over runes: a multi-byte character and each invalid byte are dropped alike.
  return Buffer.from([...b].filter((c) => c !== 0 && c < 0x80));
}

/** Writes `s` into the field: cut to the field size, NUL-terminated when shorter (Go's formatString). */
function putString(block: Buffer, at: number, size: number, s: Buffer): void {
  s.copy(block, at, 0, Math.min(size, s.length));
  // Some readers take a V7 name ending in "/" for a directory even when a PAX path says otherwise.
  if (s.length > size && block[at + size - 1] === 0x2f) {
    let n = size;
    while (n > 0 && block[at + n - 1] === 0x2f) n--;
    block[at + n] = 0;
  }
}

/** Zero-padded octal with a trailing NUL; a value that does not fit is written as 0 (Go's formatOctal). */
function putOctal(block: Buffer, at: number, size: number, v: number): void {
  const digits = (fitsOctal(size, v) ? v : 0).toString(8).padStart(size - 1, '0');
  putString(block, at, size, Buffer.from(digits));
}

function setFormat(block: Buffer): void {
  block.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  putOctal(block, 148, 7, sum);
  block[155] = 0x20;
}

function headerBlock(f: TarFields, prefix: Buffer | undefined, forPax = false): Buffer {
  const b = Buffer.alloc(BLOCK);
  const s = (at: number, size: number, v: Buffer) => putString(b, at, size, forPax ? toAscii(v) : v);
  s(0, NAME_SIZE, f.name);
  putOctal(b, 100, 8, f.mode);
  putOctal(b, 108, 8, f.uid);
  putOctal(b, 116, 8, f.gid);
  putOctal(b, 124, 12, f.size);
  putOctal(b, 136, 12, f.mtime);
  b.write(f.typeflag, 156, 'latin1');
  s(157, NAME_SIZE, f.linkname);
  s(265, 32, f.uname);
  s(297, 32, f.gname);
  putOctal(b, 329, 8, 0);
  putOctal(b, 337, 8, 0);
  if (prefix) putString(b, 345, PREFIX_SIZE, prefix);
  setFormat(b);
  return b;
}

/** A PAX extended header entry ("typeflag x") with the records sorted by key, padded to blocks. */
function paxHeader(f: TarFields, records: Map<string, Buffer>): Buffer {
  const body = Buffer.concat(
    [...records.keys()].sort().map((k) => {
      const v = records.get(k)!;
      // "<len> <key>=<value>\n" where <len> counts itself (Go's formatPAXRecord).
      const rest = Buffer.concat([Buffer.from(` ${k}=`), v, Buffer.from('\n')]);
      let size = rest.length + String(rest.length).length;
      if (String(size).length + rest.length !== size) size = String(size).length + rest.length;
      return Buffer.concat([Buffer.from(String(size)), rest]);
    }),
  );
  // Go names it path.Join(dir, "PaxHeaders.0", base) of the entry's name, ASCII only, cut to 100
  // bytes, without trailing slashes.
  const full = f.name.toString('latin1');
  const slash = full.lastIndexOf('/');
  const joined = `${full.slice(0, slash + 1)}PaxHeaders.0/${full.slice(slash + 1)}`;
  const cleaned = joined.replace(/\/+/g, '/').replace(/\/$/, '');
  let name = toAscii(Buffer.from(cleaned, 'latin1'));
  if (name.length > NAME_SIZE) name = name.subarray(0, NAME_SIZE);
  while (name.length > 0 && name[name.length - 1] === 0x2f) name = name.subarray(0, name.length - 1);
  const b = Buffer.alloc(BLOCK);
  putString(b, 0, NAME_SIZE, name);
  putOctal(b, 100, 8, 0);
  putOctal(b, 108, 8, 0);
  putOctal(b, 116, 8, 0);
  putOctal(b, 124, 12, body.length);
  putOctal(b, 136, 12, 0);
  b.write('x', 156, 'latin1');
  setFormat(b);
  const pad = body.length % BLOCK ? Buffer.alloc(BLOCK - (body.length % BLOCK)) : Buffer.alloc(0);
  return Buffer.concat([b, body, pad]);
}

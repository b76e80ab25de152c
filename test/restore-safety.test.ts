// Restore never writes outside --target, whatever names a tree holds: hand-crafted trees with "..",
// "/" inside names, duplicate names and a target that holds a symlink where a directory goes.
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalBackend, Repository, encodeTree, sortNodes, type Node } from '../src/index.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { formatRun, ours } from './helpers/run.js';

let work: string;
let repoDir: string;
let passwordFile: string;
let repo: Repository;
let n = 0;
const PASSWORD = 'crafted trees';

beforeAll(async () => {
  work = await makeTempDir('restore-safety');
  repoDir = path.join(work, 'repo');
  passwordFile = path.join(work, 'password');
  await writeFile(passwordFile, `${PASSWORD}\n`);
  repo = await Repository.init(new LocalBackend(repoDir), PASSWORD);
});

afterAll(async () => {
  await removeDir(work);
});

const TIME = '2021-02-03T04:05:06.123456789Z';

function node(name: string | Buffer, type: Node['type'], extra: Partial<Node> = {}): Node {
  const rawName = Buffer.isBuffer(name) ? name : Buffer.from(name);
  return {
    rawName,
    name: rawName.toString('utf8'),
    type,
    mode: type === 'dir' ? 0x800001ed : 0o644,
    mtime: TIME,
    atime: TIME,
    ctime: TIME,
    uid: 0,
    gid: 0,
    content: type === 'file' ? [] : null,
    ...extra,
  };
}

async function file(name: string | Buffer, text: string, extra: Partial<Node> = {}): Promise<Node> {
  const { id } = await repo.saveBlob('data', Buffer.from(text));
  return node(name, 'file', { content: [id], size: text.length, ...extra });
}

async function dir(name: string | Buffer, children: Node[]): Promise<Node> {
  return node(name, 'dir', { subtree: await tree(children) });
}

async function tree(children: Node[]): Promise<string> {
  return (await repo.saveBlob('tree', encodeTree(sortNodes(children)))).id;
}

/** Saves a snapshot of `root` and returns its id. */
async function snapshot(rootTree: string): Promise<string> {
  await repo.flush();
  const s = await repo.saveSnapshot({ time: TIME, tree: rootTree, paths: ['/crafted'], hostname: 'h', username: 'u' });
  return s.id;
}

/** A sandbox dir with the target inside it, so anything written next to the target shows up. */
async function sandbox(): Promise<{ box: string; target: string }> {
  const box = path.join(work, `box-${n++}`);
  await mkdir(box);
  return { box, target: path.join(box, 'target') };
}

const restore = (id: string, target: string, ...more: string[]) =>
  ours(['-r', repoDir, '--password-file', passwordFile, 'restore', id, '--target', target, ...more]);

it('skips names with "..", "." or "/" (reported, exit 1) and restores the rest inside the target', async () => {
  const evil = ['..', '.', '../escape.txt', '/abs-escape.txt', 'sub/inner.txt', '../../../../../../tmp/restic-ts-escape'];
  const nodes: Node[] = [await file('ok.txt', 'fine\n', { uid: 4242, gid: 4343, mode: 0o640 })];
  for (const name of evil) nodes.push(await file(name, `evil ${name}\n`));
  nodes.push(await dir('d', [await file('..', 'nested evil\n'), await file('inner-ok.txt', 'inner\n'), await dir('.', [await file('x', 'x\n')])]));
  nodes.push(node('fifo', 'fifo', { mode: 0x02000000 | 0o600 }));
  nodes.push(node('link', 'symlink', { linktarget: '../../outside', mode: 0x08000000 | 0o777 }));
  const id = await snapshot(await tree(nodes));

  const { box, target } = await sandbox();
  const r = await restore(id, target);
  const info = formatRun('restore of a crafted tree', r);
  expect(r.code, info).toBe(1);
  expect(r.stderr, info).toMatch(/^Fatal: There were 8 errors$/m);
  expect(r.stderr.match(/^ignoring error for .*: invalid child node name/gm), info).toHaveLength(8);

  expect(await readdir(box)).toEqual(['target']);
  expect((await readdir(target)).sort()).toEqual(['d', 'fifo', 'link', 'ok.txt']);
  expect(await readdir(path.join(target, 'd'))).toEqual(['inner-ok.txt']);
  expect(await readFile(path.join(target, 'ok.txt'), 'utf8')).toBe('fine\n');
  await expect(lstat('/abs-escape.txt')).rejects.toThrow();
  await expect(lstat('/tmp/restic-ts-escape')).rejects.toThrow();
  // Metadata as recorded: owner (we run as root), mode, mtime; a fifo; a symlink kept as a link.
  const st = await lstat(path.join(target, 'ok.txt'));
  if (process.getuid?.() === 0) expect([st.uid, st.gid]).toEqual([4242, 4343]);
  expect(st.mode & 0o777).toBe(0o640);
  expect(st.mtime.toISOString()).toBe('2021-02-03T04:05:06.123Z');
  expect((await lstat(path.join(target, 'fifo'))).isFIFO()).toBe(true);
  expect(await readlink(path.join(target, 'link'))).toBe('../../outside');
});

it('refuses a tree with two nodes of one name (a symlink and a directory) and writes nothing', async () => {
  const { box, target } = await sandbox();
  const outside = path.join(box, 'outside');
  await mkdir(outside);
  const link = node('x', 'symlink', { linktarget: outside, mode: 0x08000000 | 0o777 });
  const d = await dir('x', [await file('planted.txt', 'planted\n')]);
  // encodeTree refuses duplicates, so join two encoded trees by hand.
  const one = encodeTree([link]).toString();
  const two = encodeTree([d]).toString();
  const blob = `{"nodes":[${one.slice('{"nodes":['.length, -3)},${two.slice('{"nodes":['.length, -3)}]}\n`;
  const { id: treeId } = await repo.saveBlob('tree', Buffer.from(blob));
  const id = await snapshot(treeId);
  const r = await restore(id, target);
  expect(r.code, formatRun('restore', r)).toBe(1);
  expect(r.stderr).toMatch(/^Fatal: .*"x" twice\n$/);
  expect(await readdir(outside)).toEqual([]);
  await expect(lstat(target)).rejects.toThrow();
});

it('does not follow a symlink in the target where the snapshot has a directory', async () => {
  const { box, target } = await sandbox();
  const outside = path.join(box, 'outside');
  await mkdir(outside);
  await mkdir(target);
  await symlink(outside, path.join(target, 'd'));
  const id = await snapshot(await tree([await dir('d', [await file('planted.txt', 'planted\n')]), await file('other.txt', 'other\n')]));
  const r = await restore(id, target);
  expect(r.code, formatRun('restore', r)).toBe(1);
  expect(r.stderr).toMatch(/^Fatal: cannot restore .*\/d: a file of that name exists in the target\n$/);
  expect(await readdir(outside)).toEqual([]);
  // Nothing was moved in: the target holds only what was there before.
  expect(await readdir(target)).toEqual(['d']);
});

it('replaces a symlink in the target by the restored file instead of writing through it', async () => {
  const { box, target } = await sandbox();
  const victim = path.join(box, 'victim.txt');
  await writeFile(victim, 'untouched\n');
  await mkdir(target);
  await symlink(victim, path.join(target, 'f.txt'));
  const id = await snapshot(await tree([await file('f.txt', 'restored\n')]));
  const r = await restore(id, target);
  expect(r.code, formatRun('restore', r)).toBe(0);
  expect(await readFile(victim, 'utf8')).toBe('untouched\n');
  expect((await lstat(path.join(target, 'f.txt'))).isFile()).toBe(true);
  expect(await readFile(path.join(target, 'f.txt'), 'utf8')).toBe('restored\n');
});

it('restores names with arbitrary bytes, and hard links within the restored set', async () => {
  const raw = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x0a]);
  const a = await file('a', 'linked\n', { inode: 77, deviceId: 5, links: 2 });
  const b = await file('b', 'linked\n', { inode: 77, deviceId: 5, links: 2 });
  const id = await snapshot(await tree([await file(raw, 'raw name\n'), a, b]));
  const { target } = await sandbox();
  const r = await restore(id, target);
  expect(r.code, formatRun('restore', r)).toBe(0);
  const names = await readdir(target, { encoding: 'buffer' });
  expect(names.some((x) => x.equals(raw))).toBe(true);
  const [sa, sb] = await Promise.all([lstat(path.join(target, 'a')), lstat(path.join(target, 'b'))]);
  expect(sa.ino).toBe(sb.ino);
  expect(sa.nlink).toBe(2);
});

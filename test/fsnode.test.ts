// Filesystem → node exactly as restic 0.14's archiver makes it (same node JSON, same tree ids),
// under two time zones, and node → filesystem metadata restore.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { goModeFromStat, nodeFromPath, restoreMetadata, statModeFromGo } from '../src/fs/node.js';
import { parseGoTime } from '../src/repo/gotime.js';
import type { Node } from '../src/repo/node.js';
import { decodeTree, encodeTree, sortNodes } from '../src/repo/tree.js';
import { expectOk, restic } from './helpers/run.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const bpath = (dir: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(dir + '/'), name]);
const isRoot = process.geteuid?.() === 0;

let dir = '';
let repo = '';
let pwFile = '';
let fixture = '';
let hasDevice = false;
const savedTz = process.env.TZ;

const R = (args: string[], tz: string, cwd?: string) =>
  restic(['-r', repo, '--password-file', pwFile, ...args], { cwd, env: { TZ: tz }, timeoutMs: 120_000 });

async function catBlob(id: string, tz: string): Promise<Buffer> {
  return expectOk('cat blob', await R(['cat', 'blob', id], tz)).stdoutBytes;
}

/** Backs the fixture up with restic (as ".", so the snapshot tree is the fixture's content). */
async function backup(tz: string, extra: string[]): Promise<string> {
  const out = expectOk('backup', await R(['backup', '--json', ...extra, '.'], tz, fixture)).stdout;
  const summary = out
    .split('\n')
    .filter((l) => l.includes('"summary"'))
    .map((l) => JSON.parse(l) as { snapshot_id: string })[0]!;
  const snap = JSON.parse(expectOk('cat snapshot', await R(['cat', 'snapshot', summary.snapshot_id], tz)).stdout) as { tree: string };
  return snap.tree;
}

/** Our node for a restic node's entry, with restic's content/subtree (the caller's job). */
async function ours(parent: string, theirs: Node, withAtime: boolean): Promise<Node> {
  const node = await nodeFromPath(bpath(parent, theirs.rawName), theirs.rawName, { withAtime });
  if (theirs.content !== null && node.content !== null) node.content = theirs.content;
  if (theirs.subtree !== undefined) node.subtree = theirs.subtree;
  return node;
}

const json = (n: Node): string => encodeTree([n]).toString('utf8');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'restic-ts-fsnode-'));
  repo = join(dir, 'repo');
  pwFile = join(dir, 'pw');
  fixture = join(dir, 'fx');
  await writeFile(pwFile, 'secret\n');
  await mkdir(join(fixture, 'sub', 'deeper'), { recursive: true });
  await mkdir(join(fixture, 'emptydir'));
  await writeFile(join(fixture, 'empty'), '');
  await writeFile(join(fixture, 'small.txt'), 'hello\n');
  await writeFile(join(fixture, 'sub', 'inner.txt'), 'inner\n');
  await writeFile(join(fixture, 'sub', 'deeper', 'x'), 'x');
  for (const name of ['with space', 'quote"q', 'back\\slash', '<&>', 'new\nline', 'tab\tname', 'é', '日本語', 'emoji😀', 'ctl\x01']) {
    await writeFile(join(fixture, name), name);
  }
  await writeFile(bpath(fixture, Buffer.from([0x69, 0x6e, 0xff, 0xfe])), 'invalid utf-8');
  await writeFile(join(fixture, 'lit-\\xff-name'), 'literal');
  await symlink('x<&>.txt', join(fixture, 'link'));
  await symlink(Buffer.from([0x74, 0xff, 0x08, 0xe2, 0x80, 0xa8]), join(fixture, 'badlink'));
  await writeFile(join(fixture, 'hard1'), 'hard\n');
  await link(join(fixture, 'hard1'), join(fixture, 'hard2'));
  await writeFile(join(fixture, 'setuid'), '#!/bin/sh\n');
  await chmod(join(fixture, 'setuid'), 0o4755);
  await writeFile(join(fixture, 'noperm'), '');
  await chmod(join(fixture, 'noperm'), 0);
  await mkdir(join(fixture, 'sticky'));
  await chmod(join(fixture, 'sticky'), 0o1777);
  await writeFile(join(fixture, 'old'), 'old');
  await utimes(join(fixture, 'old'), '-631152000.123456', '-631152000.123456');
  await writeFile(join(fixture, 'future'), 'future');
  await utimes(join(fixture, 'future'), '13569465600.5', '13569465600.5');
  execFileSync('mkfifo', [join(fixture, 'fifo')]);
  if (isRoot) {
    await writeFile(join(fixture, 'nobody'), '');
    await chown(join(fixture, 'nobody'), 65534, 65534);
    await writeFile(join(fixture, 'unnamed'), '');
    await chown(join(fixture, 'unnamed'), 54321, 54321);
    try {
      execFileSync('mknod', [join(fixture, 'null'), 'c', '1', '3'], { stdio: 'ignore' });
      hasDevice = true;
    } catch {
      // No CAP_MKNOD (container): device nodes stay untested.
    }
  }
  expectOk('init', await R(['init'], 'UTC'));
});

afterAll(async () => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('nodeFromPath matches restic 0.14', () => {
  // The second run records atime: restic's first backup already read every file, so with relatime
  // the access times no longer move and both sides see the same ones.
  for (const [tz, withAtime] of [
    ['UTC', false],
    ['Asia/Kolkata', true],
  ] as const) {
    it(`same node JSON and tree ids (TZ=${tz}${withAtime ? ', --with-atime' : ''})`, async () => {
      process.env.TZ = tz;
      const rootId = await backup(tz, withAtime ? ['--with-atime'] : []);
      const rootBlob = await catBlob(rootId, tz);
      const theirs = decodeTree(rootBlob);
      if (tz !== 'UTC') expect(theirs[0]!.mtime).toMatch(/\+05:30$/);
      expect(theirs.map((n) => n.name)).toContain('fifo');
      if (hasDevice) expect(theirs.find((n) => n.name === 'null')?.type).toBe('chardev');
      if (isRoot) {
        expect(theirs.find((n) => n.name === 'nobody')?.user).toBe('nobody');
        expect(theirs.find((n) => n.name === 'unnamed')?.user).toBeUndefined();
      }

      const mine: Node[] = [];
      for (const t of theirs) {
        const o = await ours(fixture, t, withAtime);
        expect(json(o), t.name).toBe(json(t));
        mine.push(o);
      }
      // Every entry on disk (restic skips only sockets; there are none here) → the same tree id.
      const names = await readdir(fixture, { encoding: 'buffer' });
      expect(names.length).toBe(theirs.length);
      expect(sha256(encodeTree(sortNodes(mine)))).toBe(rootId);

      // A directory built entirely by us, down to its subdirectory, gives restic's ids.
      const sub = theirs.find((n) => n.name === 'sub')!;
      const subTheirs = decodeTree(await catBlob(sub.subtree!, tz));
      const deeper = subTheirs.find((n) => n.name === 'deeper')!;
      const deeperTheirs = decodeTree(await catBlob(deeper.subtree!, tz));
      const deeperMine = await Promise.all(deeperTheirs.map((t) => ours(join(fixture, 'sub', 'deeper'), t, withAtime)));
      expect(sha256(encodeTree(sortNodes(deeperMine)))).toBe(deeper.subtree);
      const subMine = await Promise.all(subTheirs.map((t) => ours(join(fixture, 'sub'), t, withAtime)));
      expect(sha256(encodeTree(sortNodes(subMine)))).toBe(sub.subtree);
    });
  }

  it('accepts string and Buffer paths and leaves content/subtree to the caller', async () => {
    const file = await nodeFromPath(join(fixture, 'small.txt'), Buffer.from('small.txt'));
    expect(file.content).toEqual([]);
    expect(file.size).toBe(6);
    expect(file.atime).toBe(file.mtime);
    const d = await nodeFromPath(Buffer.from(join(fixture, 'sub')), Buffer.from('sub'));
    expect(d.content).toBeNull();
    expect(d.subtree).toBeUndefined();
    expect(d.links).toBeUndefined();
  });
});

describe('Go file modes', () => {
  it('maps st_mode to os.FileMode and back', () => {
    const cases: [number, number][] = [
      [0o100644, 0o644],
      [0o104755, 0x00800000 | 0o755],
      [0o102755, 0x00400000 | 0o755],
      [0o041777, 0x80000000 + 0x00100000 + 0o777],
      [0o040755, 0x80000000 + 0o755],
      [0o120777, 0x08000000 | 0o777],
      [0o060660, 0x04000000 | 0o660],
      [0o020666, 0x04000000 | 0x00200000 | 0o666],
      [0o010644, 0x02000000 | 0o644],
      [0o140755, 0x01000000 | 0o755],
    ];
    for (const [st, go] of cases) {
      expect(goModeFromStat(st), st.toString(8)).toBe(go);
      expect(statModeFromGo(go), st.toString(8)).toBe(st);
    }
  });
});

describe('restoreMetadata', () => {
  it('restores permissions, owner (as root) and times to the microsecond', async () => {
    process.env.TZ = 'Asia/Kolkata';
    const names = ['small.txt', 'setuid', 'noperm', 'old', 'future', 'sticky', 'link', 'badlink', 'fifo', ...(isRoot ? ['nobody', 'unnamed'] : [])];
    const target = join(dir, 'restore');
    await mkdir(target);
    for (const name of names) {
      const src = await nodeFromPath(join(fixture, name), Buffer.from(name), { withAtime: true });
      const dst = join(target, name);
      switch (src.type) {
        case 'file':
          await writeFile(dst, '');
          break;
        case 'dir':
          await mkdir(dst);
          break;
        case 'symlink':
          await symlink(src.linktarget!, dst);
          break;
        case 'fifo':
          execFileSync('mkfifo', [dst]);
          break;
        default:
          throw new Error(`unexpected ${src.type}`);
      }
      restoreMetadata(dst, src);
      const back = await nodeFromPath(dst, Buffer.from(name), { withAtime: true });
      expect(back.mode, name).toBe(src.mode);
      if (isRoot) expect([back.uid, back.gid, back.user, back.group], name).toEqual([src.uid, src.gid, src.user, src.group]);
      for (const field of ['mtime', 'atime'] as const) {
        const want = parseGoTime(src[field]);
        const got = parseGoTime(back[field]);
        // Node.js sets times through a double of seconds: microseconds survive, nanoseconds don't.
        const floorUs = (ns: bigint): bigint => (ns >= 0n ? ns / 1000n : -((-ns + 999n) / 1000n));
        expect(floorUs(got), `${name} ${field}`).toBe(floorUs(want));
      }
    }
    const st = await lstat(join(target, 'setuid'));
    expect(st.mode & 0o7777).toBe(0o4755);
  });
});

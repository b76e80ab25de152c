// ls, find, dump, diff and stats: same output as restic 0.14 on restic-made repositories; bad input
// gives a one-line error and exit code 1.
import { spawn } from 'node:child_process';
import { chmod, chown, link, mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend, Repository } from '../src/index.js';
import { RESTIC_REPO_NAMES, makeTempDir, removeDir, removeResticRepos, resticRepos, resticSnapshots, type ResticRepos, type SnapshotJson } from './helpers/fixtures.js';
import { CLI, expectOk, formatRun, ours, restic, run, type RunResult } from './helpers/run.js';

let fx: ResticRepos;
let work: string;
const snaps = new Map<string, SnapshotJson[]>();

beforeAll(async () => {
  fx = await resticRepos();
  work = await makeTempDir('read-cmds');
  for (const name of RESTIC_REPO_NAMES) snaps.set(name, await resticSnapshots(fx.repo(name), fx.passwordFile));
});

afterAll(async () => {
  await removeDir(work);
  await removeResticRepos();
});

const g = (name: string) => ['-r', fx.repo(name), '--password-file', fx.passwordFile];

/** Runs the same command with restic and with ours; both must succeed. */
async function both(name: string, args: string[]): Promise<{ theirs: RunResult; mine: RunResult }> {
  const [theirs, mine] = await Promise.all([restic([...g(name), ...args]), ours([...g(name), ...args])]);
  expectOk(`restic ${args.join(' ')}`, theirs);
  expectOk(`ours ${args.join(' ')}`, mine);
  return { theirs, mine };
}

async function expectSameOutput(name: string, args: string[]): Promise<void> {
  const { theirs, mine } = await both(name, args);
  expect(mine.stdoutBytes.equals(theirs.stdoutBytes), `${name}: ${args.join(' ')}\n--- restic ---\n${theirs.stdout.slice(0, 3000)}\n--- ours ---\n${mine.stdout.slice(0, 3000)}`).toBe(true);
}

describe.each(RESTIC_REPO_NAMES)('%s repo', (name) => {
  const first = () => snaps.get(name)![0]!.short_id;
  const second = () => snaps.get(name)![1]!.short_id;

  it('ls --json: the same snapshot line and nodes, byte for byte', async () => {
    const { theirs, mine } = await both(name, ['ls', '--json', 'latest']);
    expect(mine.stdout.split('\n').length).toBeGreaterThan(1200);
    expect(mine.stdout).toBe(theirs.stdout);
  });

  it('ls -l with directories, and --recursive', async () => {
    await expectSameOutput(name, ['ls', '-l', first(), `${fx.src}/names`, `${fx.src}/hard`, `${fx.src}/links`]);
    await expectSameOutput(name, ['ls', '--recursive', 'latest', `${fx.src}/nested`]);
    await expectSameOutput(name, ['ls', 'latest', '/']);
  });

  it('diff between the two snapshots, both directions, with --metadata and --json', async () => {
    await expectSameOutput(name, ['diff', first(), second()]);
    await expectSameOutput(name, ['diff', second(), first()]);
    await expectSameOutput(name, ['diff', '--metadata', first(), second()]);
    await expectSameOutput(name, ['diff', '--json', first(), second()]);
  });

  it('stats in all four modes, text and JSON, all snapshots and one', async () => {
    for (const mode of ['restore-size', 'raw-data', 'files-by-contents']) {
      await expectSameOutput(name, ['stats', '--mode', mode]);
      await expectSameOutput(name, ['stats', '--json', '--mode', mode, first()]);
    }
    // blobs-per-file counts a content under the path where it is first seen, so the result depends on
    // the order of the snapshots, which restic leaves to chance when it lists them itself.
    await expectSameOutput(name, ['stats', '--json', '--mode', 'blobs-per-file', second()]);
    await expectSameOutput(name, ['stats', '--mode', 'blobs-per-file', first(), second()]);
    await expectSameOutput(name, ['stats', '--mode', 'blobs-per-file', second(), first()]);
    const all = expectOk('restic stats', await restic([...g(name), 'stats', '--mode', 'blobs-per-file'])).stdout;
    const orders = await Promise.all([
      ours([...g(name), 'stats', '--mode', 'blobs-per-file', first(), second()]),
      ours([...g(name), 'stats', '--mode', 'blobs-per-file', second(), first()]),
    ]);
    expect(orders.map((r) => r.stdout)).toContain(all);
  });

  it('dump of files is byte-equal; of directories the tar is byte-equal and lists the same', async () => {
    await expectSameOutput(name, ['dump', 'latest', `${fx.src}/big/random-12m.bin`]);
    await expectSameOutput(name, ['dump', first(), `${fx.src}/text/lorem.txt`]);
    for (const dir of [`${fx.src}/names`, `${fx.src}/links`, `${fx.src}/times`, '/']) {
      const { theirs, mine } = await both(name, ['dump', 'latest', dir]);
      const listing = async (tar: Buffer, label: string) => {
        const file = path.join(work, `${name}-${label}.tar`);
        await writeFile(file, tar);
        return expectOk('tar -tvf', await run('tar', ['--full-time', '-tvf', file])).stdout;
      };
      const [a, b] = await Promise.all([listing(theirs.stdoutBytes, 'theirs'), listing(mine.stdoutBytes, 'mine')]);
      expect(b).toBe(a);
      expect(mine.stdoutBytes.equals(theirs.stdoutBytes), `tar of ${dir} is byte-equal to restic's`).toBe(true);
    }
  });
});

it('dump into a pipe whose reader stops early ends quietly with the status restic gets from SIGPIPE', async () => {
  const name = RESTIC_REPO_NAMES[0]!;
  const child = spawn(process.execPath, [CLI, ...g(name), 'dump', 'latest', `${fx.src}/big/random-12m.bin`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(stderr).toBe('');
  expect(code).toBe(141);
});

it('dump: long names, long link targets, big ids and special mode bits come out as restic writes them', async () => {
  const src = path.join(work, 'tar-edge');
  const long = (c: string, n: number) => c.repeat(n);
  const deep = path.join(src, long('d', 120), long('e', 90));
  await mkdir(deep, { recursive: true });
  await writeFile(path.join(deep, long('f', 60)), 'deep\n');
  await writeFile(path.join(src, long('g', 150)), 'one long component\n');
  await writeFile(path.join(src, 'empty'), '');
  await writeFile(path.join(src, 'owned'), 'owned by someone else\n');
  await writeFile(path.join(src, 'suid'), '#!/bin/sh\n');
  await chmod(path.join(src, 'suid'), 0o6755);
  await mkdir(path.join(src, 'sticky'));
  await chmod(path.join(src, 'sticky'), 0o1777);
  await symlink(long('t', 130), path.join(src, 'long-link'));
  await link(path.join(src, 'owned'), path.join(src, 'hardlink'));
  if (process.getuid?.() === 0) await chown(path.join(src, 'owned'), 3_000_000, 2_200_000);
  const repo = path.join(work, 'tar-edge-repo');
  const rg = ['-r', repo, '--password-file', fx.passwordFile];
  expectOk('restic init', await restic([...rg, 'init']));
  expectOk('restic backup', await restic([...rg, 'backup', src]));
  for (const p of ['/', src, path.join(src, long('d', 120))]) {
    const [theirs, mine] = await Promise.all([restic([...rg, 'dump', 'latest', p]), ours([...rg, 'dump', 'latest', p])]);
    expectOk('restic dump', theirs);
    expectOk('our dump', mine);
    expect(mine.stdoutBytes.length).toBeGreaterThan(2048);
    expect(mine.stdoutBytes.equals(theirs.stdoutBytes), `tar of ${p} is byte-equal to restic's`).toBe(true);
  }
});

it('diff reports type changes (T), added and removed trees and metadata-only changes as restic does', async () => {
  const src = path.join(work, 'diff-types');
  await mkdir(path.join(src, 'gone/sub'), { recursive: true });
  await writeFile(path.join(src, 'gone/sub/f'), 'f\n');
  await writeFile(path.join(src, 'becomes-dir'), 'file first\n');
  await writeFile(path.join(src, 'becomes-link'), 'file first\n');
  await writeFile(path.join(src, 'chmod-only'), 'same\n');
  await symlink('somewhere', path.join(src, 'link-becomes-file'));
  const repo = path.join(work, 'diff-types-repo');
  const rg = ['-r', repo, '--password-file', fx.passwordFile];
  expectOk('restic init', await restic([...rg, 'init']));
  expectOk('restic backup 1', await restic([...rg, 'backup', src]));
  await rm(path.join(src, 'gone'), { recursive: true });
  await rm(path.join(src, 'becomes-dir'));
  await mkdir(path.join(src, 'becomes-dir/new'), { recursive: true });
  await writeFile(path.join(src, 'becomes-dir/new/g'), 'g\n');
  await rm(path.join(src, 'becomes-link'));
  await symlink('target', path.join(src, 'becomes-link'));
  await rm(path.join(src, 'link-becomes-file'));
  await writeFile(path.join(src, 'link-becomes-file'), 'now a file\n');
  await chmod(path.join(src, 'chmod-only'), 0o600);
  expectOk('restic backup 2', await restic([...rg, 'backup', src]));
  const ids = (await resticSnapshots(repo, fx.passwordFile)).map((x) => x.short_id);
  for (const args of [['diff', ids[0]!, ids[1]!], ['diff', '--metadata', ids[0]!, ids[1]!], ['diff', '--json', ids[1]!, ids[0]!]]) {
    const [theirs, mine] = await Promise.all([restic([...rg, ...args]), ours([...rg, ...args])]);
    expectOk('restic diff', theirs);
    expect(expectOk('our diff', mine).stdout).toBe(theirs.stdout);
    expect(mine.stdout).toMatch(/T/);
  }
});

describe('find', () => {
  /** restic prints one block per snapshot, in no fixed snapshot order: compare the blocks as a set. */
  const blocks = (text: string) => text.split('\n\n').map((b) => b.trim()).sort();

  it('the same matches as restic, per snapshot, for several kinds of patterns', async () => {
    const patterns = [['*.bin'], ['dup', 'small*'], ['/tmp/*'], [`${fx.src}/nested`], ['**/d*'], ['names/*'], ['nothing-matches']];
    for (const p of patterns) {
      const { theirs, mine } = await both('v2-auto', ['find', ...p]);
      expect(blocks(mine.stdout), `find ${p.join(' ')}`).toEqual(blocks(theirs.stdout));
      if (!p.includes('nothing-matches')) expect(mine.stdout).toContain('Found matching entries in snapshot');
      await expectSameOutput('v2-auto', ['find', '-s', 'latest', '-l', ...p]);
    }
  });

  it('--ignore-case, --path, --snapshot and --json', async () => {
    await expectSameOutput('v1', ['find', '-s', 'latest', '-i', 'CAFE*', '*.TXT']);
    const { theirs, mine } = await both('v2-max', ['find', '--path', fx.src, '--json', '*.sh']);
    const parsed = (s: string) => (JSON.parse(s) as { snapshot: string }[]).sort((a, b) => a.snapshot.localeCompare(b.snapshot));
    expect(parsed(mine.stdout)).toEqual(parsed(theirs.stdout));
    await expectSameOutput('v2-off', ['find', '--json', '-s', snaps.get('v2-off')![0]!.id, '-s', 'latest', 'x*']);
    await expectSameOutput('v2-off', ['find', '--json', '-s', 'latest', 'no-such-file']);
    // --path with a path no snapshot has: nothing is searched.
    const none = expectOk('ours find', await ours([...g('v2-auto'), 'find', '--path', '/elsewhere', '*']));
    expect(none.stdout).toBe('');
  });
});

describe('bad input: one-line error, exit code 1', () => {
  let repo: string;
  let ambiguous: string;

  beforeAll(async () => {
    // A copy with extra snapshots until two ids share their first hex digit.
    repo = path.join(work, 'ambiguous-repo');
    expectOk('cp -a', await run('cp', ['-a', fx.repo('v2-auto'), repo]));
    const r = await Repository.open(new LocalBackend(repo), 'correct horse battery staple');
    const base = await r.findSnapshot('latest');
    const ids = [...snaps.get('v2-auto')!.map((s) => s.id)];
    for (let i = 0; ; i++) {
      const { id: _id, ...rest } = base;
      const s = await r.saveSnapshot({ ...rest, time: `2020-01-01T00:00:${String(i).padStart(2, '0')}Z` });
      const clash = ids.find((x) => x[0] === s.id[0]);
      ids.push(s.id);
      if (clash) {
        ambiguous = s.id[0]!;
        break;
      }
    }
  });

  async function expectFailure(args: string[], message: RegExp): Promise<void> {
    const r = await ours(['-r', repo, '--password-file', fx.passwordFile, ...args]);
    const info = formatRun(`ours ${args.join(' ')}`, r);
    expect(r.code, info).toBe(1);
    expect(r.stderr.trim().split('\n'), info).toHaveLength(1);
    expect(r.stderr, info).toMatch(message);
  }

  it('unknown snapshot id', async () => {
    const never = path.join(work, 'never');
    for (const args of [
      ['ls', 'abcdef12'],
      ['dump', 'abcdef12', '/'],
      ['stats', 'abcdef12'],
      ['find', '-s', 'abcdef12', 'x'],
      ['diff', 'abcdef12', 'latest'],
      ['restore', 'abcdef12', '--target', never],
    ]) {
      await expectFailure(args, /abcdef12/);
    }
    await expectFailure(['ls', 'not-hex'], /invalid id/);
    await expect(stat(never)).rejects.toThrow();
  });

  it('ambiguous prefix', async () => {
    await expectFailure(['ls', ambiguous], /ambiguous/);
    await expectFailure(['dump', ambiguous, '/'], /ambiguous/);
    await expectFailure(['diff', ambiguous, 'latest'], /ambiguous/);
    await expectFailure(['stats', ambiguous], /ambiguous/);
    await expectFailure(['restore', ambiguous, '--target', path.join(work, 'never')], /ambiguous/);
  });

  it('a path that is not in the snapshot', async () => {
    await expectFailure(['ls', 'latest', `${fx.src}/no-such-dir`], /not found/);
    await expectFailure(['dump', 'latest', `${fx.src}/no-such-file`], /not found/);
    await expectFailure(['dump', 'latest', `${fx.src}/links/to-file`], /should be a file, but is a "symlink"/);
    await expectFailure(['restore', `latest:${fx.src}/no-such-dir`, '--target', path.join(work, 'never')], /not found/);
    await expectFailure(['ls', 'latest', 'relative/path'], /absolute/);
  });

  it('bad flags', async () => {
    await expectFailure(['stats', '--mode', 'nope'], /unknown counting mode/);
    await expectFailure(['restore', 'latest', '--target', path.join(work, 'never'), '--include', 'a', '--exclude', 'b'], /mutually exclusive/);
    await expectFailure(['restore', 'latest', '--target', path.join(work, 'never'), '--include', '[x'], /invalid pattern/);
    await expectFailure(['find', '-s', 'latest', '[x'], /invalid pattern/);
  });
});

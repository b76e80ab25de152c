// restic -> restic-ts: repositories written by restic 0.14 are read and restored exactly by our CLI.
import { chmod, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RESTIC_REPO_NAMES, makeTempDir, removeDir, removeResticRepos, resticRepos, resticSnapshots,
  type ResticRepos, type SnapshotJson,
} from './helpers/fixtures.js';
import { compareTrees, scanTree, summarize, type TreeScan } from './helpers/fstree.js';
import { expectOk, jsonLines, ours, restic } from './helpers/run.js';

let fx: ResticRepos;
let work: string;
let latestScan: TreeScan;
let state1Scan: TreeScan;

beforeAll(async () => {
  fx = await resticRepos();
  work = await makeTempDir('r2u');
  [latestScan, state1Scan] = await Promise.all([scanTree(fx.src), scanTree(fx.state1)]);
});

afterAll(async () => {
  await removeDir(work);
  await removeResticRepos();
});

/** The path where a full restore of a snapshot of `fx.src` puts the tree under `target`. */
const restoredRoot = (target: string) => path.join(target, fx.src);

const pick = (s: SnapshotJson) => ({
  id: s.id, short_id: s.short_id, time: s.time, tree: s.tree, paths: s.paths, hostname: s.hostname,
  username: s.username, parent: s.parent, tags: s.tags,
});

interface LsNode { name: string; type: string; path: string }

function lsNodes(stdout: string): { snapshotId: unknown; nodes: string[] } {
  const lines = jsonLines(stdout) as Record<string, unknown>[];
  const nodes = lines.slice(1).map((n) => {
    const { name, type, path: p } = n as unknown as LsNode;
    return JSON.stringify([p, name, type]);
  });
  return { snapshotId: lines[0]?.id, nodes: nodes.sort() };
}

it('control: restic restore of its own repo matches the source exactly (ns mtimes, hardlinks)', async () => {
  const target = await mkdtemp(path.join(work, 'control-'));
  expectOk('restic restore', await restic(['-r', fx.repo('v2-auto'), '--password-file', fx.passwordFile, 'restore', 'latest', '--target', target]));
  const root = restoredRoot(target);
  const diffs = compareTrees(latestScan, await scanTree(root), { mtime: 'ns', rootMeta: true, hardlinks: true });
  expect(diffs, summarize(diffs)).toEqual([]);

  // The comparison is not vacuous: each kind of damage is reported.
  await utimes(path.join(root, 'text/small.txt'), 1_600_000_000.5, 1_600_000_000.5);
  await chmod(path.join(root, 'modes/0600.txt'), 0o644);
  await writeFile(path.join(root, 'many/f0001.txt'), 'changed');
  await rm(path.join(root, 'hard/second-name.txt'));
  await writeFile(path.join(root, 'hard/second-name.txt'), 'hardlinked content\n');
  await rm(path.join(root, 'links/dangling'));
  await symlink('elsewhere', path.join(root, 'links/dangling'));
  await writeFile(path.join(root, 'extra'), '');
  const damaged = compareTrees(latestScan, await scanTree(root), { mtime: 'ns', rootMeta: false, hardlinks: true });
  for (const kind of ['mtime: "text/small.txt"', 'mode: "modes/0600.txt"', 'size: "many/f0001.txt"', 'hardlink: "hard/original.txt"',
    'symlink target: "links/dangling"', 'unexpected: "extra"']) {
    expect(damaged.some((d) => d.startsWith(kind)), `${kind} in ${summarize(damaged)}`).toBe(true);
  }
  await removeDir(target);
});

describe.each(RESTIC_REPO_NAMES)('repo %s', (name) => {
  const g = () => ['-r', fx.repo(name), '--password-file', fx.passwordFile];
  let snaps: SnapshotJson[];

  beforeAll(async () => {
    snaps = await resticSnapshots(fx.repo(name), fx.passwordFile);
    expect(snaps.map((s) => s.tags)).toEqual([['first'], ['second']]);
  });

  it('snapshots --json lists the same snapshots as restic', async () => {
    const r = expectOk('our snapshots --json', await ours([...g(), 'snapshots', '--json']));
    const mine = JSON.parse(r.stdout) as SnapshotJson[];
    expect(mine.map(pick)).toEqual(snaps.map(pick));
  });

  it('restore latest is byte-equal to the source (names, content, modes, mtimes, links)', async () => {
    const target = await mkdtemp(path.join(work, `${name}-latest-`));
    expectOk('our restore latest', await ours([...g(), 'restore', 'latest', '--target', target]));
    const diffs = compareTrees(latestScan, await scanTree(restoredRoot(target)), { mtime: 'us', rootMeta: true, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
    const links = compareTrees(latestScan, await scanTree(restoredRoot(target)), { mtime: 'none', rootMeta: false, hardlinks: true });
    expect(links, `hard links are restored as restic does: ${summarize(links)}`).toEqual([]);
    await removeDir(target);
  });

  it('restore of the first snapshot by short id matches the first state', async () => {
    const target = await mkdtemp(path.join(work, `${name}-first-`));
    expectOk('our restore <short id>', await ours([...g(), 'restore', snaps[0]!.short_id, '--target', target]));
    const diffs = compareTrees(state1Scan, await scanTree(restoredRoot(target)), { mtime: 'us', rootMeta: true, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
    await removeDir(target);
  });

  it('restore latest:SUBFOLDER puts that folder\'s content into the target', async () => {
    const target = await mkdtemp(path.join(work, `${name}-sub-`));
    expectOk('our restore latest:sub', await ours([...g(), 'restore', `latest:${fx.src}/names`, '--target', target]));
    const expected = await scanTree(path.join(fx.src, 'names'));
    const diffs = compareTrees(expected, await scanTree(target), { mtime: 'us', rootMeta: false, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
    await removeDir(target);
  });

  it('ls --json lists the same nodes as restic', async () => {
    const theirs = lsNodes(expectOk('restic ls --json', await restic([...g(), 'ls', '--json', 'latest'])).stdout);
    const mine = lsNodes(expectOk('our ls --json', await ours([...g(), 'ls', '--json', 'latest'])).stdout);
    expect(mine.snapshotId).toBe(snaps[1]!.id);
    const ancestors = fx.src.split('/').filter(Boolean).length - 1; // restic lists the parent dirs too
    expect(theirs.nodes.length).toBe(latestScan.size + ancestors);
    expect(mine.nodes).toEqual(theirs.nodes);
  });
});

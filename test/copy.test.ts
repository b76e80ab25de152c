// `copy` between repositories with different keys and chunker polynomials, checked with restic 0.14:
// restic repo -> ours, ours -> restic repo, restic copy into ours; copies are recognised on later runs
// (by us and by restic) and blobs the destination has are not stored again.
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backends/local/local.js';
import { copy, type CopyEvent } from '../src/commands/copy.js';
import { Repository } from '../src/repo/repository.js';
import { makeTempDir, removeDir, removeResticRepos, resticRepos, resticSnapshots, type ResticRepos, type SnapshotJson } from './helpers/fixtures.js';
import { compareTrees, scanTree, summarize, type TreeScan } from './helpers/fstree.js';
import { expectOk, formatRun, ours, restic, type RunResult } from './helpers/run.js';

let fx: ResticRepos;
let work: string;
let latestScan: TreeScan;
let state1Scan: TreeScan;
let dstPw: string;
const DST_PASSWORD = 'destination password';

beforeAll(async () => {
  fx = await resticRepos();
  work = await makeTempDir('copy');
  dstPw = path.join(work, 'dst-pw');
  await writeFile(dstPw, `${DST_PASSWORD}\n`);
  [latestScan, state1Scan] = await Promise.all([scanTree(fx.src), scanTree(fx.state1)]);
}, 300_000);

afterAll(async () => {
  await removeDir(work);
  await removeResticRepos();
});

const dst = (repo: string) => ['-r', repo, '--password-file', dstPw];

/** `restic list blobs` lines ("data <id>"), sorted, duplicates kept: a blob stored twice shows twice. */
async function blobLines(repo: string, passwordFile: string): Promise<string[]> {
  const r = expectOk('restic list blobs', await restic(['-r', repo, '--password-file', passwordFile, 'list', 'blobs']));
  return r.stdout.split('\n').filter(Boolean).sort();
}

async function polynomial(repo: string, passwordFile: string): Promise<string> {
  return (JSON.parse(expectOk('restic cat config', await restic(['-r', repo, '--password-file', passwordFile, 'cat', 'config'])).stdout) as { chunker_polynomial: string }).chunker_polynomial;
}

async function filesOf(repo: string): Promise<string[]> {
  const entries = await readdir(repo, { recursive: true });
  return entries.filter((e) => !e.startsWith('locks')).sort();
}

async function expectCheckReadData(repo: string, passwordFile: string): Promise<void> {
  const r = await restic(['-r', repo, '--password-file', passwordFile, 'check', '--read-data']);
  expect(r.code, formatRun('restic check --read-data', r)).toBe(0);
  expect(r.stdout).toContain('no errors were found');
}

async function expectRestoresTo(repo: string, passwordFile: string, snapshot: string, expected: TreeScan): Promise<void> {
  const target = await mkdtemp(path.join(work, 'restore-'));
  expectOk('restic restore', await restic(['-r', repo, '--password-file', passwordFile, 'restore', snapshot, '--target', target]));
  const diffs = compareTrees(expected, await scanTree(path.join(target, fx.src)), { mtime: 'ns', rootMeta: true, hardlinks: true });
  expect(diffs, summarize(diffs)).toEqual([]);
  await removeDir(target);
}

/** The copies of the fixture's two snapshots in `repo`, first then second, checked against the sources. */
async function copiesOf(repo: string, passwordFile: string, sources: SnapshotJson[]): Promise<SnapshotJson[]> {
  const copies = (await resticSnapshots(repo, passwordFile)) as (SnapshotJson & { original?: string })[];
  expect(copies).toHaveLength(2);
  const byOriginal = new Map(copies.map((c) => [c.original, c]));
  return sources.map((s) => {
    const c = byOriginal.get((s as SnapshotJson & { original?: string }).original ?? s.id)!;
    expect(c, `copy of ${s.short_id}`).toBeDefined();
    expect({ ...c, id: '', short_id: '', original: '' }).toEqual({ ...s, id: '', short_id: '', original: '', parent: undefined });
    return c;
  });
}

describe('restic v1 repo -> our fresh v2 repo (other password and polynomial)', () => {
  let repo: string;
  let sources: SnapshotJson[];
  let firstRun: RunResult;

  beforeAll(async () => {
    repo = path.join(work, 'from-restic');
    expectOk('our init', await ours([...dst(repo), 'init']));
    sources = await resticSnapshots(fx.repo('v1'), fx.passwordFile);
    expect(await polynomial(repo, dstPw)).not.toBe(await polynomial(fx.repo('v1'), fx.passwordFile));
    firstRun = await ours([...dst(repo), 'copy', '--from-repo', fx.repo('v1'), '--from-password-file', fx.passwordFile]);
  }, 300_000);

  it('copies both snapshots: restic check --read-data passes, restores are byte-equal', async () => {
    expect(firstRun.code, formatRun('our copy', firstRun)).toBe(0);
    expect(firstRun.stdout.match(/^snapshot [0-9a-f]{8} saved$/gm)).toHaveLength(2);
    await expectCheckReadData(repo, dstPw);
    const [first, second] = await copiesOf(repo, dstPw, sources);
    expect(first!.parent).toBeUndefined();
    expect(second!.parent).toBeUndefined();
    await expectRestoresTo(repo, dstPw, first!.id, state1Scan);
    await expectRestoresTo(repo, dstPw, second!.id, latestScan);
    // Every blob once: what the two snapshots need, shared blobs deduplicated.
    expect(await blobLines(repo, dstPw)).toEqual(await blobLines(fx.repo('v1'), fx.passwordFile));
  }, 300_000);

  it('a second copy (source from RESTIC_FROM_* variables) copies nothing', async () => {
    const before = await filesOf(repo);
    const r = await ours([...dst(repo), 'copy'], { env: { RESTIC_FROM_REPOSITORY: fx.repo('v1'), RESTIC_FROM_PASSWORD: 'correct horse battery staple' } });
    expect(r.code, formatRun('second copy', r)).toBe(0);
    expect(r.stdout.match(/^skipping source snapshot [0-9a-f]{8}, was already copied to snapshot [0-9a-f]{8}$/gm)).toHaveLength(2);
    expect(await filesOf(repo)).toEqual(before);
  }, 300_000);

  it('restic copy recognises our copies too', async () => {
    const before = await filesOf(repo);
    const r = expectOk('restic copy', await restic([...dst(repo), 'copy', '--from-repo', fx.repo('v1')], { env: { RESTIC_FROM_PASSWORD: 'correct horse battery staple' } }));
    expect(r.stdout.match(/^skipping source snapshot/gm)).toHaveLength(2);
    expect(await filesOf(repo)).toEqual(before);
  }, 300_000);

  it('our repo -> a restic-made repo, by id, then the rest: only new blobs are added', async () => {
    const target = path.join(work, 'restic-dst');
    expectOk('restic init', await restic([...dst(target), 'init']));
    const ourSnaps = await resticSnapshots(repo, dstPw);
    const from = ['--from-repo', repo, '--from-password-file', dstPw];
    expectOk('copy first', await ours([...dst(target), 'copy', ...from, ourSnaps[0]!.short_id]));
    const afterFirst = await blobLines(target, dstPw);
    expect(afterFirst.length).toBeGreaterThan(0);
    const r = expectOk('copy rest', await ours([...dst(target), 'copy', ...from]));
    expect(r.stdout.match(/^skipping source snapshot/gm)).toHaveLength(1);
    expect(r.stdout.match(/^snapshot [0-9a-f]{8} saved$/gm)).toHaveLength(1);
    const all = await blobLines(target, dstPw);
    expect(all).toEqual(await blobLines(repo, dstPw));
    expect(all.length).toBeGreaterThan(afterFirst.length);
    await expectCheckReadData(target, dstPw);
    const copies = await copiesOf(target, dstPw, await resticSnapshots(repo, dstPw));
    // The chain keeps the first repo's snapshot ids as `original`.
    expect(copies.map((c) => (c as SnapshotJson & { original?: string }).original).sort()).toEqual(sources.map((s) => s.id).sort());
    await expectRestoresTo(target, dstPw, copies[1]!.id, latestScan);
  }, 300_000);
});

describe('restic copy into our repo', () => {
  it('restic writes into a repo we initialised; we then skip what it copied', async () => {
    const repo = path.join(work, 'restic-into-ours');
    expectOk('our init', await ours([...dst(repo), 'init']));
    expectOk('restic copy', await restic([...dst(repo), 'copy', '--from-repo', fx.repo('v2-auto')], { env: { RESTIC_FROM_PASSWORD_FILE: fx.passwordFile } }));
    const before = await filesOf(repo);
    const r = expectOk('our copy', await ours([...dst(repo), 'copy', '--from-repo', fx.repo('v2-auto'), '--from-password-file', fx.passwordFile]));
    expect(r.stdout.match(/^skipping source snapshot/gm)).toHaveLength(2);
    expect(await filesOf(repo)).toEqual(before);
    expectOk('our check', await ours([...dst(repo), 'check']));
  }, 300_000);
});

describe('copy library', () => {
  it('filters, events and counts', async () => {
    const srcRepo = await Repository.open(new LocalBackend(fx.repo('v2-max')), 'correct horse battery staple');
    const dstRepo = await Repository.init(new LocalBackend(path.join(work, 'lib-dst')), DST_PASSWORD, { version: 1 });
    const events: CopyEvent['type'][] = [];
    const first = await copy(srcRepo, dstRepo, { filter: { tags: ['first'] }, onEvent: (e) => events.push(e.type) });
    expect(events).toEqual(['start', 'copy', 'copied']);
    expect(first.copied).toHaveLength(1);
    expect(first.copied[0]!.snapshot.original).toBe(first.copied[0]!.source.id);
    expect(first.blobs).toBeGreaterThan(0);
    const second = await copy(srcRepo, dstRepo);
    expect(second.skipped.map((s) => s.existing.id)).toEqual([first.copied[0]!.snapshot.id]);
    expect(second.copied).toHaveLength(1);
    expect(second.blobs).toBeGreaterThan(0);
    expect(second.blobs).toBeLessThan(first.blobs);
    const third = await copy(srcRepo, dstRepo, { ids: ['latest', 'ffffffffff'] });
    expect([third.copied.length, third.skipped.length, third.blobs, third.unresolved]).toEqual([0, 1, 0, ['ffffffffff']]);
    await expectCheckReadData(path.join(work, 'lib-dst'), dstPw);
  }, 300_000);
});

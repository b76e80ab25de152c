// Snapshot listing: the library API (filters, async iteration, findSnapshot, group-by, --latest) and the
// `snapshots` command against restic 0.14 on a repo with snapshots from several hosts, tags and paths.
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory/memory.js';
import { listSnapshots, selectSnapshots, snapshotGroups } from '../src/commands/snapshots.js';
import { NotFoundError, UsageError } from '../src/errors.js';
import { Repository } from '../src/repo/repository.js';
import type { Snapshot } from '../src/repo/snapshot.js';
import { groupSnapshots, latestSnapshots, matchesFilter, parseGroupBy } from '../src/repo/snapshot-filter.js';
import { makeTempDir, removeDir, type SnapshotJson } from './helpers/fixtures.js';
import { expectOk, formatRun, ours, restic, type RunResult } from './helpers/run.js';

const TREE = 'a'.repeat(64);

describe('library', () => {
  let repo: Repository;
  const saved: Snapshot[] = [];
  const add = async (day: number, hostname: string, paths: string[], tags?: string[]) => {
    const time = `2024-01-${String(day).padStart(2, '0')}T10:00:00Z`;
    saved.push(await repo.saveSnapshot({ time, tree: TREE, paths, hostname, ...(tags ? { tags } : {}) }));
  };

  beforeAll(async () => {
    repo = await Repository.init(new MemoryBackend(), 'secret');
    await add(1, 'h1', ['/a'], ['x', 'y']);
    await add(2, 'h2', ['/a', '/b'], ['x']);
    await add(3, 'h1', ['/b']);
    await add(4, 'h1', ['/a'], ['z']);
    // 17 snapshots in all, so two of them share a first hex digit (an ambiguous prefix).
    for (let day = 5; day <= 17; day++) await add(day, day % 2 ? 'h3' : 'h4', ['/c']);
  });

  const ids = (snaps: readonly Snapshot[]) => snaps.map((s) => s.id);

  it('awaiting snapshots() gives all of them oldest first; iterating streams the same set', async () => {
    expect(ids(await repo.snapshots())).toEqual(ids(saved));
    const streamed: string[] = [];
    for await (const s of repo.snapshots()) streamed.push(s.id);
    expect(streamed.sort()).toEqual(ids(saved).sort());
  });

  it('filters by host (any), tag lists (any list, all tags in one) and paths (all)', async () => {
    const collect = async (filter: Parameters<Repository['snapshots']>[0]) => {
      const out: string[] = [];
      for await (const s of repo.snapshots(filter)) out.push(s.id);
      return out.sort();
    };
    const want = (...i: number[]) => i.map((n) => saved[n]!.id).sort();
    expect(await collect({ host: 'h1' })).toEqual(want(0, 2, 3));
    expect(await collect({ host: ['h1', 'h2'] })).toEqual(want(0, 1, 2, 3));
    expect(await collect({ tags: ['x'] })).toEqual(want(0, 1));
    expect(await collect({ tags: [['x', 'y']] })).toEqual(want(0));
    expect(await collect({ tags: [['x', 'y'], 'z'] })).toEqual(want(0, 3));
    expect(await collect({ tags: [''], host: ['h1', 'h2'] })).toEqual(want(2));
    expect(await collect({ paths: ['/a'] })).toEqual(want(0, 1, 3));
    expect(await collect({ paths: ['/a', '/b'] })).toEqual(want(1));
    expect(await collect({ host: 'h1', tags: ['x'], paths: ['/a'] })).toEqual(want(0));
    expect(await collect({ host: 'nope' })).toEqual([]);
  });

  it('stops early without leaving loads behind', async () => {
    for await (const s of repo.snapshots()) {
      expect(s.id).toMatch(/^[0-9a-f]{64}$/);
      break;
    }
  });

  it('findSnapshot: latest (with filter), full id, unique prefix; clear errors otherwise', async () => {
    expect((await repo.findSnapshot('latest')).id).toBe(saved[16]!.id);
    expect((await repo.findSnapshot('latest', { host: 'h1' })).id).toBe(saved[3]!.id);
    expect((await repo.findSnapshot('latest', { tags: ['x'], paths: ['/a'] })).id).toBe(saved[1]!.id);
    await expect(repo.findSnapshot('latest', { host: 'nope' })).rejects.toThrow(new NotFoundError('no snapshot found'));
    expect((await repo.findSnapshot(saved[2]!.id)).id).toBe(saved[2]!.id);
    const firstDigits = saved.map((s) => s.id[0]!);
    const shared = firstDigits.find((d, i) => firstDigits.indexOf(d) !== i)!;
    await expect(repo.findSnapshot(shared)).rejects.toThrow(UsageError);
    await expect(repo.findSnapshot(shared)).rejects.toThrow(/ambiguous/);
    const unique = saved.find((s) => saved.every((o) => o === s || !o.id.startsWith(s.id.slice(0, 6))))!;
    expect((await repo.findSnapshot(unique.id.slice(0, 6))).id).toBe(unique.id);
    const unused = '0123456789abcdef'.split('').find((d) => !firstDigits.includes(d));
    if (unused) await expect(repo.findSnapshot(unused)).rejects.toThrow(NotFoundError);
    await expect(repo.findSnapshot('f'.repeat(64))).rejects.toThrow(saved.some((s) => s.id === 'f'.repeat(64)) ? Error : NotFoundError);
    await expect(repo.findSnapshot('not-hex')).rejects.toThrow(/invalid id/);
  });

  it('group-by and latest N per host and paths', async () => {
    const all = await listSnapshots(repo);
    expect(() => parseGroupBy('host,bogus')).toThrow(new UsageError("unknown grouping option: 'bogus'"));
    expect(parseGroupBy('hosts,path,tag')).toEqual({ host: true, paths: true, tags: true });
    const byHost = groupSnapshots(all, { host: true });
    expect(byHost.map((g) => g.key.hostname)).toEqual(['h1', 'h2', 'h3', 'h4']);
    expect(byHost[0]!.snapshots.map((s) => s.id)).toEqual([saved[0]!.id, saved[2]!.id, saved[3]!.id]);
    const byTags = groupSnapshots(all.slice(0, 4), { tags: true });
    expect(byTags.map((g) => g.key.tags)).toEqual([null, ['x'], ['x', 'y'], ['z']]);
    expect(groupSnapshots(all, {})).toHaveLength(1);
    expect(groupSnapshots([], {})).toEqual([]);
    expect(ids(latestSnapshots(all.slice(0, 4), 1))).toEqual([saved[3]!.id, saved[2]!.id, saved[1]!.id]);
    const res = await snapshotGroups(repo, { groupBy: 'host', latest: 2, filter: { host: ['h3', 'h1'] } });
    expect(res.grouped).toBe(true);
    expect(res.groups.map((g) => [g.key.hostname, g.snapshots.length])).toEqual([
      ['h1', 3],
      ['h3', 2],
    ]);
    expect(ids(res.groups[1]!.snapshots)).toEqual([saved[14]!.id, saved[16]!.id]);
  });

  it('selectSnapshots: explicit ids ignore the filter except for "latest"; unknown ids are reported', async () => {
    const sel = await selectSnapshots(repo, { ids: [saved[1]!.id.slice(0, 10), 'latest', saved[1]!.id], filter: { host: 'h1' } });
    expect(ids(sel.snapshots)).toEqual([saved[1]!.id, saved[3]!.id]);
    expect(sel.warnings).toEqual([]);
    const bad = await selectSnapshots(repo, { ids: ['abcdefabcdef0123456789', saved[0]!.id], filter: { tags: ['q'] } });
    expect(ids(bad.snapshots)).toEqual([saved[0]!.id]);
    expect(bad.unresolved).toEqual(['abcdefabcdef0123456789']);
    expect(bad.warnings).toEqual(['Ignoring "abcdefabcdef0123456789": no snapshot matches "abcdefabcdef0123456789"', 'Ignoring filters as there are explicit snapshot ids given']);
    expect(matchesFilter(saved[0]!, { tags: [['x', 'y']], paths: ['/a'], host: [] })).toBe(true);
  });
});

describe('snapshots command vs restic 0.14', () => {
  let work: string;
  let repo: string;
  let pw: string;
  const dirs: Record<string, string> = {};
  let snaps: SnapshotJson[];
  const g = () => ['-r', repo, '--password-file', pw];

  beforeAll(async () => {
    work = await makeTempDir('snapshots');
    repo = path.join(work, 'repo');
    pw = path.join(work, 'pw');
    await writeFile(pw, 'snapshots test\n');
    for (const d of ['d1', 'd2', 'd3']) {
      dirs[d] = path.join(work, d);
      await mkdir(dirs[d]!);
      await writeFile(path.join(dirs[d]!, 'file'), `content of ${d}\n`);
    }
    expectOk('restic init', await restic([...g(), 'init']));
    const rb = async (day: number, host: string, tags: string, ...paths: string[]) => {
      const t = tags ? ['--tag', tags] : [];
      expectOk('restic backup', await restic([...g(), 'backup', '-q', '--host', host, ...t, '--time', `2024-01-0${day} 10:00:00`, ...paths.map((p) => dirs[p]!)]));
    };
    await rb(1, 'h1', 'a,b', 'd1');
    await rb(2, 'h2', 'a', 'd1', 'd2');
    await rb(3, 'h1', '', 'd2');
    await rb(4, 'h1', 'c', 'd1');
    await rb(5, 'hösté-ü', 'x&y<z>', 'd3');
    await rb(6, 'h2', 'c,a', 'd2', 'd1');
    expectOk('our backup', await ours([...g(), 'backup', '--host', 'h2', '--tag', 'b', dirs.d2!]));
    expectOk('our backup', await ours([...g(), 'backup', '--host', 'h1', '--tag', 'a,b', dirs.d3!, dirs.d1!]));
    snaps = JSON.parse(expectOk('restic snapshots', await restic([...g(), 'snapshots', '--json'])).stdout) as SnapshotJson[];
    expect(snaps).toHaveLength(8);
  }, 240_000);

  afterAll(async () => {
    await removeDir(work);
  });

  // restic prints groups in Go's random map order: compare them as a set. A block ends with its count line
  // (a group with an empty key has no header).
  const textBlocks = (out: string) => out.split(/(?<=^\d+ snapshots\n)/m).sort();
  const jsonGroups = (out: string) =>
    (JSON.parse(out) as { group_key: unknown }[]).map((x) => JSON.stringify(x)).sort();

  type Case = { name: string; args: () => string[] };
  const cases: Case[] = [
    { name: 'no filter', args: () => [] },
    { name: 'one host', args: () => ['--host', 'h1'] },
    { name: 'two hosts', args: () => ['--host', 'h1', '-H', 'h2'] },
    { name: 'non-ASCII host', args: () => ['-H', 'hösté-ü'] },
    { name: 'tag', args: () => ['--tag', 'a'] },
    { name: 'tag list (AND)', args: () => ['--tag', 'a,b'] },
    { name: 'two tag flags (OR)', args: () => ['--tag', 'a,b', '--tag', 'c'] },
    { name: 'untagged', args: () => ['--tag', ''] },
    { name: 'tag needing JSON escapes', args: () => ['--tag', 'x&y<z>'] },
    { name: 'path', args: () => ['--path', dirs.d1!] },
    { name: 'two paths (all)', args: () => ['--path', dirs.d1!, '--path', dirs.d2!] },
    { name: 'path and host', args: () => ['--path', dirs.d2!, '--host', 'h1'] },
    { name: 'unknown host', args: () => ['--host', 'nope'] },
    { name: 'latest 1', args: () => ['--latest', '1'] },
    { name: 'latest 2 of a host', args: () => ['--latest', '2', '--host', 'h1'] },
    { name: 'group by host', args: () => ['--group-by', 'host'] },
    { name: 'group by paths', args: () => ['--group-by', 'paths'] },
    { name: 'group by tags', args: () => ['--group-by', 'tags'] },
    { name: 'group by all', args: () => ['-g', 'host,paths,tags'] },
    { name: 'group by host, latest 1', args: () => ['--group-by', 'host', '--latest', '1'] },
    { name: 'group by tag, filtered', args: () => ['-g', 'tag', '--tag', 'a'] },
    { name: 'compact', args: () => ['--compact'] },
    { name: 'compact grouped by tags', args: () => ['-c', '--group-by', 'tags'] },
    { name: 'compact, non-ASCII host', args: () => ['-c', '-H', 'hösté-ü'] },
    { name: 'ids', args: () => [snaps[0]!.short_id, snaps[6]!.id.slice(0, 12), snaps[2]!.id] },
    { name: 'ids with a filter (ignored)', args: () => [snaps[1]!.short_id, '--host', 'h1'] },
    { name: 'latest', args: () => ['latest'] },
    { name: 'latest of a host', args: () => ['latest', '--host', 'h2'] },
    { name: 'latest with path and tag', args: () => ['latest', '--path', dirs.d1!, '--tag', 'a'] },
  ];

  const compare = (c: Case, json: boolean, r: RunResult, o: RunResult) => {
    const what = `${c.name}${json ? ' --json' : ''}`;
    expect(o.code, formatRun(`ours ${what}`, o)).toBe(r.code);
    const grouped = c.args().some((a) => a === '-g' || a === '--group-by');
    if (!grouped) expect(o.stdout, `${what}\n${formatRun('restic', r)}`).toBe(r.stdout);
    else if (json) expect(jsonGroups(o.stdout), what).toEqual(jsonGroups(r.stdout));
    else expect(textBlocks(o.stdout), what).toEqual(textBlocks(r.stdout));
  };

  it.each(cases)('$name: same text and JSON as restic', async (c) => {
    for (const json of [false, true]) {
      const args = [...g(), ...(json ? ['--json'] : []), 'snapshots', ...c.args()];
      compare(c, json, await restic(args), await ours(args));
    }
  }, 60_000);

  it('prints the filter warning as restic does', async () => {
    const args = [...g(), 'snapshots', snaps[1]!.short_id, '--host', 'h1'];
    const [r, o] = [await restic(args), await ours(args)];
    expect(o.stderr).toBe(r.stderr);
  }, 60_000);

  it('an unknown id is reported; unlike restic 0.14 the exit code is 1', async () => {
    const o = await ours([...g(), 'snapshots', 'abcdef12']);
    expect(o.code).toBe(1);
    expect(o.stderr).toBe('Ignoring "abcdef12": no snapshot matches "abcdef12"\n');
    expect(o.stdout).toBe('');
    const bad = await ours([...g(), 'snapshots', '--group-by', 'host,color']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("Fatal: unknown grouping option: 'color'\n");
  }, 60_000);
});

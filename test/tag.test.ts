// `tag`: the same operations applied by us to one copy of a repo and by restic 0.14 to another give the
// same tags and `original` links; restic reads and checks what we rewrote, we read what restic rewrote.
import { cp, mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backends/local/local.js';
import { tag } from '../src/commands/tag.js';
import { UsageError } from '../src/errors.js';
import { Repository } from '../src/repo/repository.js';
import { makeTempDir, removeDir, resticSnapshots, type SnapshotJson } from './helpers/fixtures.js';
import { expectOk, formatRun, ours, restic } from './helpers/run.js';

let work: string;
let pw: string;
let ourRepo: string;
let resticRepo: string;
const dirs: Record<string, string> = {};
let initial: SnapshotJson[];

beforeAll(async () => {
  work = await makeTempDir('tag');
  pw = path.join(work, 'pw');
  await writeFile(pw, 'tag test\n');
  for (const d of ['d1', 'd2']) {
    dirs[d] = path.join(work, d);
    await mkdir(dirs[d]!);
    await writeFile(path.join(dirs[d]!, 'f'), d);
  }
  ourRepo = path.join(work, 'ours');
  resticRepo = path.join(work, 'restic');
  const g = ['-r', ourRepo, '--password-file', pw];
  expectOk('restic init', await restic([...g, 'init']));
  const rb = async (day: number, host: string, tags: string[], ...paths: string[]) =>
    expectOk('restic backup', await restic([...g, 'backup', '-q', '--host', host, ...tags.flatMap((t) => ['--tag', t]), '--time', `2024-02-0${day} 08:00:00`, ...paths]));
  await rb(1, 'h1', ['a,b'], dirs.d1!);
  await rb(2, 'h2', ['a'], dirs.d1!, dirs.d2!);
  await rb(3, 'h1', [], dirs.d2!);
  expectOk('our backup', await ours([...g, 'backup', '--host', 'h2', '--tag', 'b', dirs.d2!]));
  await cp(ourRepo, resticRepo, { recursive: true });
  initial = await resticSnapshots(ourRepo, pw);
  expect(initial).toHaveLength(4);
}, 180_000);

afterAll(async () => {
  await removeDir(work);
});

/** Tags and original per snapshot chain (keyed by the first id), as restic lists them. */
async function tagState(repo: string): Promise<Record<string, { tags: string[]; rewritten: boolean }>> {
  const state: Record<string, { tags: string[]; rewritten: boolean }> = {};
  for (const s of await resticSnapshots(repo, pw)) {
    const original = (s as SnapshotJson & { original?: string }).original;
    state[original ?? s.id] = { tags: s.tags ?? [], rewritten: original !== undefined };
  }
  return state;
}

describe('tag vs restic 0.14', () => {
  const ops: { name: string; args: () => string[] }[] = [
    { name: 'add and remove by id', args: () => ['--add', 'x,y', '--remove', 'a', initial[0]!.short_id] },
    { name: 'add by host', args: () => ['--add', 'f', '--host', 'h2'] },
    { name: 'remove by tag list (AND)', args: () => ['--remove', 'b', '--tag', 'x,y'] },
    { name: 'set on tag OR untagged', args: () => ['--set', 'q,r', '--tag', 'f', '--tag', ''] },
    { name: 'set "" changes nothing', args: () => ['--set', ''] },
    { name: 'add by path', args: () => ['--add', 'z', '--path', dirs.d1!] },
    { name: 'remove a missing tag', args: () => ['--remove', 'nope'] },
    { name: 'several flags, latest of a host', args: () => ['--add', 'w', '--add', 'v,u', 'latest', '--host', 'h1'] },
    { name: 'remove across the chain', args: () => ['--remove', 'q', '--remove', 'z,x'] },
  ];

  it.each(ops)('$name: same result and output', async (op) => {
    const o = await ours(['-r', ourRepo, '--password-file', pw, 'tag', ...op.args()]);
    const r = await restic(['-r', resticRepo, '--password-file', pw, 'tag', ...op.args()]);
    expect(o.code, formatRun('ours', o)).toBe(r.code);
    expect(o.stdout, formatRun('restic', r)).toBe(r.stdout);
    expect(await tagState(ourRepo)).toEqual(await tagState(resticRepo));
  }, 60_000);

  it('restic check passes on the repo we rewrote; originals point at the first snapshots', async () => {
    const r = await restic(['-r', ourRepo, '--password-file', pw, 'check']);
    expect(r.code, formatRun('restic check', r)).toBe(0);
    const state = await tagState(ourRepo);
    expect(Object.keys(state).sort()).toEqual(initial.map((s) => s.id).sort());
    expect(Object.values(state).every((s) => s.rewritten)).toBe(true);
  }, 60_000);

  it('we read the snapshots restic rewrote exactly as restic lists them', async () => {
    const args = ['-r', resticRepo, '--password-file', pw, '--json', 'snapshots'];
    expect(expectOk('ours', await ours(args)).stdout).toBe(expectOk('restic', await restic(args)).stdout);
  }, 60_000);

  it('refuses contradictory or empty requests before asking for a password', async () => {
    const none = await ours(['-r', ourRepo, 'tag']);
    expect([none.code, none.stderr]).toEqual([1, 'Fatal: nothing to do!\n']);
    const both = await ours(['-r', ourRepo, 'tag', '--set', 'a', '--add', 'b']);
    expect([both.code, both.stderr]).toEqual([1, 'Fatal: --set and --add/--remove cannot be given at the same time\n']);
  }, 60_000);
});

describe('tag library', () => {
  it('returns the rewritten pairs, keeps the first original and removes the old files', async () => {
    const repo = await Repository.open(new LocalBackend(ourRepo), 'tag test');
    const before = await repo.snapshots({ host: 'h2' });
    const first = await tag(repo, { filter: { host: 'h2' }, add: ['lib'] });
    expect(first.changed.map((c) => c.from.id).sort()).toEqual(before.map((s) => s.id).sort());
    for (const { from, to } of first.changed) {
      expect(to.tags).toEqual([...(from.tags ?? []), 'lib']);
      expect(to.original).toBe(from.original ?? from.id);
      await expect(repo.loadSnapshot(from.id)).rejects.toThrow();
      expect((await repo.loadSnapshot(to.id)).tags).toEqual(to.tags);
    }
    const again = await tag(repo, { filter: { host: 'h2' }, add: ['lib'] });
    expect(again.changed).toEqual([]);
    await expect(tag(repo, {})).rejects.toThrow(UsageError);
    const missing = await tag(repo, { ids: ['0000000000'], add: ['x'] });
    expect(missing.unresolved).toEqual(['0000000000']);
  }, 60_000);
});

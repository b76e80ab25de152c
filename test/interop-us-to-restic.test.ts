// restic-ts -> restic: repositories written by our CLI pass restic's check and restore exactly with restic.
import { mkdtemp, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, makeTree, removeDir, resticSnapshots } from './helpers/fixtures.js';
import { compareTrees, scanTree, summarize, type TreeScan } from './helpers/fstree.js';
import { expectOk, formatRun, ours, restic } from './helpers/run.js';

let work: string;
let src: string;
let passwordFile: string;
let srcScan: TreeScan;

beforeAll(async () => {
  work = await makeTempDir('u2r');
  src = path.join(work, 'src');
  passwordFile = path.join(work, 'password');
  await writeFile(passwordFile, 'interop password\n');
  await makeTree(src);
  srcScan = await scanTree(src);
});

afterAll(async () => {
  await removeDir(work);
});

describe.each(['2', '1'])('repository version %s', (version) => {
  let repo: string;
  let shortId: string;
  const g = () => ['-r', repo, '--password-file', passwordFile];

  beforeAll(() => {
    repo = path.join(work, `repo-v${version}`);
  });

  it('our init + backup succeed', async () => {
    expectOk('our init', await ours([...g(), 'init', '--repository-version', version]));
    const config = JSON.parse(expectOk('restic cat config', await restic([...g(), 'cat', 'config'])).stdout) as { version: number };
    expect(config.version).toBe(Number(version));
    const r = expectOk('our backup', await ours([...g(), 'backup', src, '--host', 'interop-host', '--tag', 'from-us']));
    const m = /snapshot ([0-9a-f]{8}) saved/.exec(r.stdout);
    expect(m, formatRun('backup stdout must say "snapshot <8hex> saved"', r)).not.toBeNull();
    shortId = m![1]!;
  });

  it('restic check --read-data finds no errors', async () => {
    const r = await restic([...g(), 'check', '--read-data']);
    expect(r.code, formatRun('restic check --read-data', r)).toBe(0);
    expect(r.stdout).toContain('no errors were found');
    expect(r.stderr, formatRun('restic check --read-data', r)).not.toMatch(/error|warning/i);
  });

  it('restic snapshots --json lists our snapshot', async () => {
    const snaps = await resticSnapshots(repo, passwordFile);
    expect(snaps).toHaveLength(1);
    const s = snaps[0]!;
    expect(s.short_id).toBe(shortId);
    expect(s.id.startsWith(shortId)).toBe(true);
    expect(s.paths).toEqual([src]);
    expect(s.hostname).toBe('interop-host');
    expect(s.tags).toEqual(['from-us']);
  });

  it('restic restore is byte-equal to the source (ns mtimes, hard links)', async () => {
    const target = await mkdtemp(path.join(work, `restore-v${version}-`));
    expectOk('restic restore', await restic([...g(), 'restore', shortId, '--target', target]));
    const diffs = compareTrees(srcScan, await scanTree(path.join(target, src)), { mtime: 'ns', rootMeta: true, hardlinks: true });
    expect(diffs, summarize(diffs)).toEqual([]);
    await removeDir(target);
  });
});

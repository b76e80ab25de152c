// Exclusion rules: a table of patterns and flags with the entries each must leave out, cross-checked
// against restic 0.14 backing up the same tree with the same flags (`restic ls --json` path sets).
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { expectOk, jsonLines, ours, restic, type RunResult } from './helpers/run.js';

let work: string;
let tree: string;
let repo: string;
let passwordFile: string;
let baseline: Set<string>;

const FILES: Record<string, string> = {
  'a.txt': 'a',
  'b.log': 'b',
  'B.LOG': 'B',
  'keep.tmp': 'k',
  'x.tmp': 'x',
  'docs/readme.md': 'r',
  'docs/notes.txt': 'n',
  'docs/img/pic.jpg': 'p',
  'docs/img/PIC2.JPG': 'P',
  'src/main.go': 'm',
  'src/main_test.go': 't',
  'src/vendor/lib/lib.go': 'l',
  'src/vendor/lib/x.c': 'c',
  'cache/CACHEDIR.TAG': 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache',
  'cache/data.bin': 'cached',
  'badcache/CACHEDIR.TAG': 'not a signature',
  'badcache/data.bin': 'kept',
  'nobackup/.nobackup': 'header line\n',
  'nobackup/secret.txt': 's',
  'big/huge.bin': 'h'.repeat(200 * 1024),
  'big/small.bin': 'tiny',
  '[weird]/q?.txt': 'w',
  'deep/a/b/c/d.txt': 'd',
  'deep/x/b/y.txt': 'y',
};

beforeAll(async () => {
  work = await makeTempDir('exclude');
  tree = path.join(work, 't');
  for (const [rel, content] of Object.entries(FILES)) {
    await mkdir(path.dirname(path.join(tree, rel)), { recursive: true });
    await writeFile(path.join(tree, rel), content);
  }
  await writeFile(path.join(work, 'excludes'), '# comment line\n\n   *.tmp   \n!keep.tmp\n$EXCL_DIR/img\n# ${EXCL_DIR}\nsrc/**/lib\r\n');
  await writeFile(path.join(work, 'iexcludes'), '*.JPG\nREADME.MD\n');
  await writeFile(path.join(work, 'files-from'), '# targets\nt/docs/*.md\n\nt/src\nt/no-such-*\n');
  passwordFile = path.join(work, 'password');
  await writeFile(passwordFile, 'exclude test\n');
  repo = path.join(work, 'repo');
  expectOk('restic init', await restic(['-r', repo, '--password-file', passwordFile, 'init']));
  baseline = await snapshotPaths(await backupWith(restic, []));
}, 120_000);

afterAll(async () => {
  await removeDir(work);
});

const ENV = { EXCL_DIR: 'docs' };

function backupWith(tool: typeof restic, flags: readonly string[], targets: readonly string[] = [tree]): Promise<RunResult> {
  return tool(['-r', repo, '--password-file', passwordFile, 'backup', '--host', 'excl', ...flags, ...targets], { cwd: work, env: ENV });
}

async function snapshotPaths(r: RunResult): Promise<Set<string>> {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  const id = /snapshot ([0-9a-f]{8}) saved/.exec(r.stdout)![1]!;
  const ls = expectOk('restic ls', await restic(['-r', repo, '--password-file', passwordFile, 'ls', '--json', id]));
  return new Set(
    jsonLines(ls.stdout)
      .filter((x) => (x as { struct_type?: string }).struct_type === 'node')
      .map((x) => (x as { path: string }).path),
  );
}

const abs = (rel: string) => path.join(tree, rel);

// flags, entries (relative to the tree) that must be left out, entries that must stay
const TABLE: [string, () => string[], string[], string[]][] = [
  ['*.tmp', () => ['--exclude', '*.tmp'], ['keep.tmp', 'x.tmp'], ['a.txt']],
  ['negation: *.tmp, !keep.tmp', () => ['--exclude', '*.tmp', '--exclude', '!keep.tmp'], ['x.tmp'], ['keep.tmp']],
  ['a directory name anywhere', () => ['--exclude', 'docs'], ['docs', 'docs/readme.md', 'docs/img/pic.jpg'], ['src']],
  ['absolute path', () => ['--exclude', abs('docs/img')], ['docs/img', 'docs/img/pic.jpg'], ['docs/readme.md']],
  ['anchored at the root, not found there', () => ['--exclude', '/docs'], [], ['docs/readme.md']],
  ['** spans directories', () => ['--exclude', 'src/**/*.go'], ['src/main.go', 'src/main_test.go', 'src/vendor/lib/lib.go'], ['src/vendor/lib/x.c']],
  ['**/ prefix', () => ['--exclude', '**/lib'], ['src/vendor/lib'], ['src/vendor']],
  ['? wildcard', () => ['--exclude', '?.txt'], ['a.txt'], ['docs/notes.txt']],
  ['character class', () => ['--exclude', '[ab].*'], ['a.txt', 'b.log'], ['B.LOG']],
  ['escaped brackets', () => ['--exclude', '\\[weird\\]'], ['[weird]', '[weird]/q?.txt'], ['a.txt']],
  ['* inside a path', () => ['--exclude', 'deep/*/b'], ['deep/a/b', 'deep/x/b', 'deep/a/b/c/d.txt'], ['deep/a']],
  ['--iexclude', () => ['--iexclude', '*.log', '--iexclude', '*.jpg'], ['b.log', 'B.LOG', 'docs/img/pic.jpg', 'docs/img/PIC2.JPG'], ['a.txt']],
  ['--exclude-file (comments, $VAR, negation, CRLF)', () => ['--exclude-file', path.join(work, 'excludes')], ['x.tmp', 'docs/img', 'src/vendor/lib'], ['keep.tmp', 'docs/readme.md']],
  ['--iexclude-file', () => ['--iexclude-file', path.join(work, 'iexcludes')], ['docs/img/pic.jpg', 'docs/img/PIC2.JPG', 'docs/readme.md'], ['docs/notes.txt']],
  ['--exclude-caches', () => ['--exclude-caches'], ['cache/data.bin'], ['cache', 'cache/CACHEDIR.TAG', 'badcache/data.bin']],
  ['--exclude-if-present', () => ['--exclude-if-present', '.nobackup'], ['nobackup/secret.txt'], ['nobackup/.nobackup']],
  ['--exclude-if-present with a header', () => ['--exclude-if-present', '.nobackup:header'], ['nobackup/secret.txt'], ['nobackup/.nobackup']],
  ['--exclude-if-present with a wrong header', () => ['--exclude-if-present', '.nobackup:other'], [], ['nobackup/secret.txt']],
  ['--exclude-larger-than', () => ['--exclude-larger-than', '100k'], ['big/huge.bin'], ['big/small.bin']],
  ['--one-file-system (one file system here)', () => ['--one-file-system'], [], ['a.txt', 'deep/a/b/c/d.txt']],
  ['several rules at once', () => ['--exclude', '*.go', '--iexclude', 'b.LOG', '--exclude-caches', '--exclude-larger-than', '1k'], ['src/main.go', 'b.log', 'B.LOG', 'cache/data.bin', 'big/huge.bin'], ['src/vendor/lib/x.c']],
];

describe('exclude rules match restic 0.14', () => {
  it.each(TABLE)('%s', async (_name, flags, out, kept) => {
    const theirs = await backupWith(restic, flags());
    const mine = await backupWith(ours, flags());
    const theirPaths = await snapshotPaths(theirs);
    const myPaths = await snapshotPaths(mine);
    expect([...myPaths].sort()).toEqual([...theirPaths].sort());
    for (const rel of out) {
      expect(baseline.has(abs(rel)), `${rel} is in the tree`).toBe(true);
      expect(myPaths.has(abs(rel)), `${rel} must be excluded`).toBe(false);
    }
    for (const rel of kept) expect(myPaths.has(abs(rel)), `${rel} must be kept`).toBe(true);
    // Warnings (e.g. a CACHEDIR.TAG without the signature) are the same too.
    const warnings = (r: RunResult) => r.stderr.split('\n').filter((l) => /tagfile/.test(l));
    expect(warnings(mine)).toEqual(warnings(theirs));
  }, 60_000);

  it('records only --exclude patterns in the snapshot, as restic does', async () => {
    const flags = ['--exclude', '*.tmp', '--iexclude', '*.LOG', '--exclude-file', path.join(work, 'excludes'), '--exclude-caches'];
    const excludesOf = async (r: RunResult) => {
      const id = /snapshot ([0-9a-f]{8}) saved/.exec(r.stdout)![1]!;
      const cat = expectOk('restic cat snapshot', await restic(['-r', repo, '--password-file', passwordFile, 'cat', 'snapshot', id]));
      return (JSON.parse(cat.stdout) as { excludes?: string[] }).excludes;
    };
    const mine = await excludesOf(expectOk('ours', await backupWith(ours, flags)));
    expect(mine).toEqual(await excludesOf(expectOk('restic', await backupWith(restic, flags))));
    expect(mine).toEqual(['*.tmp']);
  }, 60_000);

  it('--files-from: glob lines, comments, missing matches warned about', async () => {
    const flags = ['--files-from', path.join(work, 'files-from')];
    const theirs = await backupWith(restic, flags, []);
    const mine = await backupWith(ours, flags, []);
    expect([...(await snapshotPaths(mine))].sort()).toEqual([...(await snapshotPaths(theirs))].sort());
    expect(mine.stderr).toContain('pattern "t/no-such-*" does not match any files, skipping');
    expect(theirs.stderr).toContain('pattern "t/no-such-*" does not match any files, skipping');
  }, 60_000);

  it('rejects invalid patterns before backing up anything', async () => {
    const r = await backupWith(ours, ['--exclude', 'a[']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Fatal: invalid pattern\(s\): a\[\n$/);
  });
});

// Backup at restic 0.14's level, proven against the real restic binary: byte-identical trees, parent
// reuse without reading file contents, --force, stdin, dry-run, unreadable files (exit 3), JSON output.
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backends/local/local.js';
import { backup, type BackupItemEvent, type BackupOptions, type BackupResult, type BackupStatus, type ScanTotals } from '../src/commands/backup.js';
import { Repository } from '../src/repo/repository.js';
import { makeTempDir, removeDir, resticSnapshots } from './helpers/fixtures.js';
import { CLI, expectOk, formatRun, jsonLines, ours, restic, run } from './helpers/run.js';

const PASSWORD = 'backup test password';
let work: string;
let src: string;
let passwordFile: string;
let socketServer: Server;
let totalBytes = 0;
let fileCount = 0;

async function addFile(rel: string, data: Buffer): Promise<void> {
  await writeFile(path.join(src, rel), data);
  totalBytes += data.length;
  fileCount++;
}

beforeAll(async () => {
  work = await makeTempDir('backup');
  src = path.join(work, 'src');
  passwordFile = path.join(work, 'password');
  await writeFile(passwordFile, `${PASSWORD}\n`);
  await mkdir(path.join(src, 'dir', 'sub'), { recursive: true });
  await mkdir(path.join(src, 'empty'));
  await addFile('small.txt', Buffer.from('hello\n'));
  await addFile('empty-file', Buffer.alloc(0));
  await addFile('dir/medium.bin', randomBytes(300 * 1024));
  await addFile('dir/sub/large.bin', randomBytes(3 * 1024 * 1024 + 12345)); // several chunks
  await addFile('dir/sub/a<b>&c.txt', Buffer.from('odd name'));
  // A name that is not valid UTF-8.
  await writeFile(Buffer.concat([Buffer.from(`${src}/bad`), Buffer.from([0xff, 0xfe])]), 'x');
  totalBytes += 1;
  fileCount++;
  await link(path.join(src, 'small.txt'), path.join(src, 'dir', 'hardlink.txt'));
  totalBytes += 6;
  fileCount++;
  await symlink('small.txt', path.join(src, 'link'));
  spawnSync('mkfifo', [path.join(src, 'fifo')]);
  // Device nodes need CAP_MKNOD; without it the tree simply has none.
  spawnSync('mknod', [path.join(src, 'chardev'), 'c', '1', '3']);
  spawnSync('mknod', [path.join(src, 'blockdev'), 'b', '7', '200']);
  // restic leaves sockets out of snapshots.
  socketServer = createServer();
  await new Promise<void>((resolve) => socketServer.listen(path.join(src, 'sock'), resolve));
  // Fixed times so that nothing in the tree depends on when the test ran.
  for (const rel of ['small.txt', 'dir/medium.bin', 'dir/sub/large.bin']) await utimes(path.join(src, rel), 1_600_000_000, 1_600_000_000);
});

afterAll(async () => {
  await new Promise<void>((resolve) => socketServer.close(() => resolve()));
  await removeDir(work);
});

async function initRepo(name: string): Promise<string> {
  const repo = path.join(work, name);
  expectOk('restic init', await restic(['-r', repo, '--password-file', passwordFile, 'init']));
  return repo;
}

async function openRepo(repo: string): Promise<Repository> {
  return Repository.open(new LocalBackend(repo), PASSWORD);
}

/** Our backup through the library, counting the bytes read from files. */
async function ourBackup(repoDir: string, opts: Partial<BackupOptions> = {}): Promise<BackupResult & { read: number }> {
  const repo = await openRepo(repoDir);
  let read = 0;
  try {
    const r = await backup(repo, { paths: ['src'], cwd: work, hostname: 'test-host', onRead: (n) => (read += n), ...opts });
    return { ...r, read };
  } finally {
    await repo.close();
  }
}

const g = (repo: string) => ['-r', repo, '--password-file', passwordFile];

async function lsPaths(repo: string, id: string): Promise<string[]> {
  const r = expectOk('restic ls', await restic([...g(repo), 'ls', '--json', id]));
  return jsonLines(r.stdout)
    .filter((x) => (x as { struct_type?: string }).struct_type === 'node')
    .map((x) => (x as { path: string }).path)
    .sort();
}

async function listRepoFiles(repo: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(repo, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(`${path.relative(repo, path.join(e.parentPath, e.name))} ${(await stat(path.join(e.parentPath, e.name))).size}`);
  }
  return out.sort();
}

describe('backup', () => {
  it('writes trees byte-identical to restic 0.14 (same root tree id, no new data)', async () => {
    const repo = await initRepo('same-tree');
    const r = expectOk('restic backup', await restic([...g(repo), 'backup', '--host', 'test-host', 'src'], { cwd: work }));
    const resticId = /snapshot ([0-9a-f]{8}) saved/.exec(r.stdout)![1]!;
    const theirs = (await resticSnapshots(repo, passwordFile)).find((s) => s.short_id === resticId)!;
    const mine = await ourBackup(repo, { force: true });
    expect(mine.snapshot.tree).toBe(theirs.tree);
    expect(mine.stats.dataBlobs).toBe(0);
    expect(mine.stats.treeBlobs).toBe(0);
    expect(mine.stats.files.new).toBe(fileCount);
    const paths = await lsPaths(repo, mine.snapshot.id);
    expect(paths).toContain('/src/fifo');
    expect(paths).toContain('/src/link');
    expect(paths).not.toContain('/src/sock');
  });

  describe('parent snapshot', () => {
    let repo: string;
    let first: BackupResult & { read: number };

    beforeAll(async () => {
      repo = await initRepo('parent');
      first = await ourBackup(repo);
    });

    it('the first backup reads everything', () => {
      expect(first.parent).toBeUndefined();
      expect(first.read).toBe(totalBytes);
      expect(first.stats.files).toEqual({ new: fileCount, changed: 0, unmodified: 0 });
      expect(first.stats.processedBytes).toBe(totalBytes);
    });

    it('an unchanged re-backup reads no file contents and adds no data blobs', async () => {
      const second = await ourBackup(repo);
      expect(second.parent?.id).toBe(first.snapshot.id);
      expect(second.snapshot.parent).toBe(first.snapshot.id);
      expect(second.read).toBe(0);
      expect(second.stats.bytesRead).toBe(0);
      expect(second.stats.dataBlobs).toBe(0);
      expect(second.stats.treeBlobs).toBe(0);
      expect(second.stats.files).toEqual({ new: 0, changed: 0, unmodified: fileCount });
      expect(second.stats.processedBytes).toBe(totalBytes);
      expect(second.snapshot.tree).toBe(first.snapshot.tree);
      const snaps = await resticSnapshots(repo, passwordFile);
      expect(snaps.find((s) => s.id === second.snapshot.id)?.parent).toBe(first.snapshot.id);
    });

    it('a changed file is read again, and only that file', async () => {
      const file = path.join(src, 'dir', 'medium.bin');
      const data = Buffer.concat([await readFile(file), Buffer.from('more')]);
      await writeFile(file, data);
      totalBytes += 4;
      const third = await ourBackup(repo);
      expect(third.read).toBe(data.length);
      expect(third.stats.files).toEqual({ new: 0, changed: 1, unmodified: fileCount - 1 });
      expect(third.stats.dataBlobs).toBe(1);
      // Trees reused from the parent and trees written anew are exactly restic's.
      const r = expectOk('restic backup', await restic([...g(repo), 'backup', '--host', 'test-host', 'src'], { cwd: work }));
      const id = /snapshot ([0-9a-f]{8}) saved/.exec(r.stdout)![1]!;
      expect((await resticSnapshots(repo, passwordFile)).find((s) => s.short_id === id)!.tree).toBe(third.snapshot.tree);
    });

    it('a new ctime alone means changed, unless --ignore-ctime / --ignore-inode', async () => {
      const file = path.join(src, 'small.txt');
      await chmod(file, 0o640); // changes ctime only
      const ignored = await ourBackup(repo, { ignoreCtime: true });
      expect(ignored.read).toBe(0);
      const inodeIgnored = await ourBackup(repo, { ignoreInode: true, force: false });
      expect(inodeIgnored.read).toBe(0);
      await chmod(file, 0o644);
      const reread = await ourBackup(repo);
      // small.txt and its hard link share the inode, so both have the new ctime.
      expect(reread.read).toBe(12);
    });

    it('--force reads every file again', async () => {
      const forced = await ourBackup(repo, { force: true });
      expect(forced.parent).toBeUndefined();
      expect(forced.snapshot.parent).toBeUndefined();
      expect(forced.read).toBe(totalBytes);
      expect(forced.stats.dataBlobs).toBe(0);
      expect(forced.stats.files.new).toBe(fileCount);
    });

    it('--parent picks the given snapshot', async () => {
      const r = await ourBackup(repo, { parent: first.snapshot.id.slice(0, 10) });
      expect(r.snapshot.parent).toBe(first.snapshot.id);
      await expect(ourBackup(repo, { parent: 'ffffffffff' })).rejects.toThrow(/invalid id/);
    });

    it('restic check --read-data accepts the repository', async () => {
      const r = await restic([...g(repo), 'check', '--read-data']);
      expect(r.code, formatRun('restic check', r)).toBe(0);
      expect(r.stdout).toContain('no errors were found');
    });

    it('the CLI reports the parent and the summary as restic does', async () => {
      const r = expectOk('our backup', await ours([...g(repo), 'backup', '--host', 'test-host', 'src'], { cwd: work }));
      expect(r.stdout).toMatch(/^using parent snapshot [0-9a-f]{8}\n\nFiles: {11}0 new, {5}0 changed, +\d+ unmodified\nDirs: {12}0 new, {5}0 changed, {5}4 unmodified\nAdded to the repository: 0 B {3}\(0 B {3}stored\)\n\nprocessed \d+ files, [\d.]+ MiB in \d+:\d\d\nsnapshot [0-9a-f]{8} saved\n$/);
    });
  });

  it('JSON output: status lines while running, a summary with restic\'s field names', async () => {
    const repo = await initRepo('json');
    const theirs = jsonLines(expectOk('restic backup --json', await restic([...g(repo), 'backup', '--json', 'src'], { cwd: work })).stdout) as Record<string, unknown>[];
    const r = expectOk('our backup --json', await ours([...g(repo), 'backup', '--json', '--force', 'src'], { cwd: work }));
    const lines = jsonLines(r.stdout) as Record<string, unknown>[];
    const statuses = lines.filter((l) => l.message_type === 'status');
    const summary = lines.filter((l) => l.message_type === 'summary');
    expect(statuses.length).toBeGreaterThan(0);
    expect(summary).toHaveLength(1);
    expect(lines.length).toBe(statuses.length + 1);
    const statusFields = ['message_type', 'seconds_elapsed', 'seconds_remaining', 'percent_done', 'total_files', 'files_done', 'total_bytes', 'bytes_done', 'error_count', 'current_files'];
    for (const s of statuses) for (const k of Object.keys(s)) expect(statusFields).toContain(k);
    const resticSummary = theirs.find((l) => l.message_type === 'summary')!;
    expect(Object.keys(summary[0]!).sort()).toEqual(Object.keys(resticSummary).sort());
    expect(summary[0]).toMatchObject({ files_new: fileCount, data_blobs: 0, total_files_processed: fileCount, total_bytes_processed: totalBytes });
  });

  it('library progress: scanner totals, status updates, item events', async () => {
    const repo = await initRepo('progress');
    const statuses: BackupStatus[] = [];
    const items: BackupItemEvent[] = [];
    let totals: ScanTotals | undefined;
    const r = await ourBackup(repo, {
      statusIntervalMs: 1,
      onStatus: (s) => statuses.push(s),
      onItem: (e) => items.push(e),
      onScanFinished: (t) => (totals = t),
    });
    expect(totals).toMatchObject({ files: fileCount, bytes: totalBytes });
    expect(statuses.length).toBeGreaterThan(0);
    for (let i = 1; i < statuses.length; i++) expect(statuses[i]!.bytesDone).toBeGreaterThanOrEqual(statuses[i - 1]!.bytesDone);
    expect(items.filter((e) => e.type === 'file' && e.action === 'new')).toHaveLength(fileCount);
    expect(items.find((e) => e.item === '/src/dir/sub/large.bin')?.stats.dataSize).toBe(3 * 1024 * 1024 + 12345);
    expect(r.stats.dirs.new).toBe(items.filter((e) => e.type === 'dir').length);
  });

  it('status updates keep coming while thousands of page-cached or unchanged files are saved', async () => {
    // Such files need no waiting on I/O, so the backup has to make room for timers itself.
    const many = path.join(work, 'many');
    const count = 6000;
    for (let d = 0; d < 20; d++) {
      await mkdir(path.join(many, `d${d}`), { recursive: true });
      await Promise.all(Array.from({ length: count / 20 }, (_, i) => writeFile(path.join(many, `d${d}`, `f${i}`), randomBytes(512))));
    }
    const repo = await initRepo('many');
    for (const run of ['new', 'unchanged']) {
      const statuses: BackupStatus[] = [];
      await ourBackup(repo, { paths: ['many'], statusIntervalMs: 5, onStatus: (s) => statuses.push(s) });
      const midway = statuses.filter((s) => s.filesDone > 0 && s.filesDone < count);
      expect(midway.length, `${run} files: ${statuses.map((s) => s.filesDone).join(' ')}`).toBeGreaterThanOrEqual(2);
      // The scanner keeps ahead: totals never trail what has been saved.
      expect(statuses.filter((s) => s.filesDone > s.totalFiles), `${run} files`).toEqual([]);
    }
    await removeDir(many);
  });

  it('-v / -vv messages have restic\'s shape', async () => {
    const repo = await initRepo('verbose');
    const shape = (out: string) =>
      out
        .split('\n')
        .map((l) => l.replace(/\b[0-9a-f]{8}\b/g, 'ID').replace(/\/src\S*/, 'PATH').replace(/[\d.]+ ?(B|KiB|MiB|s)\b/g, 'N').replace(/\d+/g, 'N').replace(/ +/g, ' '))
        .filter((l, i, all) => all.indexOf(l) === i)
        .sort();
    const theirs = expectOk('restic -vv', await restic([...g(repo), 'backup', '-vv', 'src'], { cwd: work }));
    const mine = expectOk('ours -vv', await ours([...g(repo), 'backup', '-vv', '--force', 'src'], { cwd: work }));
    expect(shape(mine.stdout)).toEqual(shape(theirs.stdout));
  });

  it('--stdin stores the stream as one file that restic dumps byte-equal', async () => {
    const repo = await initRepo('stdin');
    const data = randomBytes(2 * 1024 * 1024 + 333);
    const input = path.join(work, 'stdin.bin');
    await writeFile(input, data);
    const r = await run('sh', ['-c', `"${process.execPath}" "${CLI}" -r "${repo}" --password-file "${passwordFile}" backup --stdin --stdin-filename some/dir/data.bin < "${input}"`]);
    expect(r.code, formatRun('our backup --stdin', r)).toBe(0);
    const dumped = await restic([...g(repo), 'dump', 'latest', '/some/dir/data.bin']);
    expect(dumped.code, formatRun('restic dump', dumped)).toBe(0);
    expect(dumped.stdoutBytes.equals(data)).toBe(true);
    // The same layout as restic's own --stdin snapshot.
    const rr = await run('sh', ['-c', `restic --no-cache -r "${repo}" --password-file "${passwordFile}" backup --stdin --stdin-filename some/dir/data.bin < "${input}"`]);
    expect(rr.code, formatRun('restic backup --stdin', rr)).toBe(0);
    const snaps = await resticSnapshots(repo, passwordFile);
    expect(snaps).toHaveLength(2);
    expect(snaps.map((s) => s.paths)).toEqual([['/some/dir/data.bin'], ['/some/dir/data.bin']]);
    expect(await lsPaths(repo, snaps[0]!.id)).toEqual(await lsPaths(repo, snaps[1]!.id));
    const empty = await run('sh', ['-c', `"${process.execPath}" "${CLI}" -r "${repo}" --password-file "${passwordFile}" backup --stdin < /dev/null`]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('error: read /stdin: no data read');
    expect(empty.stderr).toContain('Fatal: unable to save snapshot: snapshot is empty');
  });

  it('--dry-run writes nothing', async () => {
    const repo = await initRepo('dry');
    const before = await listRepoFiles(repo);
    const r = expectOk('our backup --dry-run', await ours([...g(repo), 'backup', '--dry-run', 'src'], { cwd: work }));
    expect(r.stdout).toMatch(/Would add to the repository: [\d.]+ MiB/);
    expect(r.stdout).not.toContain('saved');
    expect(await listRepoFiles(repo)).toEqual(before);
    const lib = await ourBackup(repo, { dryRun: true });
    expect(lib.dryRun).toBe(true);
    expect(lib.stats.files.new).toBe(fileCount);
    expect(await listRepoFiles(repo)).toEqual(before);
  });

  it('several paths, tags, host and time in one snapshot', async () => {
    const repo = await initRepo('multi');
    const r = expectOk(
      'our backup',
      await ours([...g(repo), 'backup', '--tag', 'a,b', '--tag', 'c', '--host', 'h1', '--time', '2021-02-03 04:05:06', path.join(src, 'dir'), path.join(src, 'small.txt')], { env: { TZ: 'UTC' } }),
    );
    const id = /snapshot ([0-9a-f]{8}) saved/.exec(r.stdout)![1]!;
    const s = (await resticSnapshots(repo, passwordFile)).find((x) => x.short_id === id)!;
    expect(s.paths).toEqual([path.join(src, 'dir'), path.join(src, 'small.txt')]);
    expect(s.tags).toEqual(['a', 'b', 'c']);
    expect(s.hostname).toBe('h1');
    expect(s.time).toBe('2021-02-03T04:05:06Z');
    const paths = await lsPaths(repo, id);
    expect(paths).toContain(`${src}/dir/sub/large.bin`);
    expect(paths).toContain(`${src}/small.txt`);
    expect(paths).not.toContain(`${src}/empty`);
  });

  const canDropPrivileges = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
  it.skipIf(!canDropPrivileges)('unreadable files and directories are reported and skipped: snapshot saved, exit code 3', async () => {
    // As root every file is readable: run the CLI as "nobody" on a tree with chmod 000 entries.
    const dir = await makeTempDir('backup-nobody');
    try {
      await chmod(dir, 0o755);
      const tree = path.join(dir, 'tree');
      await mkdir(path.join(tree, 'ok'), { recursive: true });
      await mkdir(path.join(tree, 'closed'));
      await writeFile(path.join(tree, 'ok', 'a'), 'a');
      await writeFile(path.join(tree, 'closed', 'b'), 'b');
      await writeFile(path.join(tree, 'secret'), 'secret');
      await chmod(path.join(tree, 'closed'), 0o000);
      await chmod(path.join(tree, 'secret'), 0o000);
      const repo = path.join(dir, 'repo');
      const pw = path.join(dir, 'pw');
      await writeFile(pw, PASSWORD);
      await chmod(pw, 0o644);
      expectOk('restic init', await restic(['-r', repo, '--password-file', pw, 'init']));
      expect(spawnSync('chmod', ['-R', 'a+rwX', repo]).status).toBe(0);
      const asNobody = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, '-r', repo, '--password-file', pw, 'backup'];
      const r = await run('setpriv', [...asNobody, tree], { env: { HOME: dir } });
      expect(r.code, formatRun('backup as nobody', r)).toBe(3);
      expect(r.stderr).toContain(`error: open ${tree}/secret: permission denied`);
      expect(r.stderr).toContain(`error: Open: open ${tree}/closed: permission denied`);
      expect(r.stderr).toContain('Warning: at least one source file could not be read');
      expect(r.stdout).toMatch(/snapshot [0-9a-f]{8} saved/);
      const snaps = await resticSnapshots(repo, pw);
      expect(snaps).toHaveLength(1);
      const ls = jsonLines(expectOk('restic ls', await restic(['-r', repo, '--password-file', pw, 'ls', '--json', 'latest'])).stdout)
        .map((x) => (x as { path?: string }).path)
        .filter(Boolean);
      expect(ls).toContain(`${tree}/ok/a`);
      expect(ls).not.toContain(`${tree}/secret`);
      expect(ls).not.toContain(`${tree}/closed`);
      const json = await run('setpriv', [...asNobody, '--json', tree], { env: { HOME: dir } });
      expect(json.code).toBe(3);
      const errors = jsonLines(json.stderr.split('\n').filter((l) => l.startsWith('{')).join('\n')) as Record<string, unknown>[];
      expect(errors).toContainEqual({ message_type: 'error', error: { Op: 'open', Path: `${tree}/secret`, Err: 13 }, during: 'archival', item: `${tree}/secret` });
    } finally {
      await chmod(dir, 0o700);
      await removeDir(dir);
    }
  });
});

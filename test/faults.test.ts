// Faults on the wire: a REST server killed in the middle of a backup, and a server that is not there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { CLI, expectOk, formatRun, ours, restic } from './helpers/run.js';
import { compareTrees, scanTree } from './helpers/fstree.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `restic-ts serve` and waits (bounded) until it prints that it listens. */
async function startServer(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--path', dir, '--listen', `127.0.0.1:${port}`, '--no-auth'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('rest server did not start within 20 s')), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`rest server exited with ${code}`)));
  });
  return child;
}

async function countPacks(repoDir: string): Promise<number> {
  let n = 0;
  for (const sub of await readdir(path.join(repoDir, 'data')).catch(() => [])) {
    n += (await readdir(path.join(repoDir, 'data', sub))).filter((f) => /^[0-9a-f]{64}$/.test(f)).length;
  }
  return n;
}

describe('a REST server killed in the middle of a backup', () => {
  let work: string;
  let server: ChildProcess | undefined;
  beforeAll(async () => {
    work = await makeTempDir('faults');
  });
  afterAll(async () => {
    server?.kill('SIGKILL');
    await removeDir(work);
  });

  it('fails the backup with one clear line, leaves no index entry for a lost pack, and the next backup succeeds', async () => {
    const data = path.join(work, 'data');
    await mkdir(data);
    for (let i = 0; i < 12; i++) await writeFile(path.join(data, `f${i}.bin`), randomBytes(4 * 1024 * 1024));
    const storage = path.join(work, 'storage');
    await mkdir(storage);
    const passwordFile = path.join(work, 'pw');
    await writeFile(passwordFile, 'fault test\n');
    const port = await freePort();
    const repoUrl = `rest:http://127.0.0.1:${port}/repo/`;
    const repoDir = path.join(storage, 'repo');
    const args = ['-r', repoUrl, '--password-file', passwordFile, '-o', 'retry.max-attempts=2', '--pack-size', '4'];

    server = await startServer(storage, port);
    expectOk('init', await ours([...args, 'init']));

    // Kill the server once the first packs have landed, while the backup is still uploading.
    const running = ours([...args, 'backup', data], { timeoutMs: 120_000 });
    const deadline = Date.now() + 60_000;
    while ((await countPacks(repoDir)) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    server.kill('SIGKILL');
    const failed = await running;
    expect(failed.code, formatRun('backup during the kill', failed)).not.toBe(0);
    const fatal = failed.stderr.trim().split('\n').filter((l) => l.startsWith('Fatal:'));
    expect(fatal, failed.stderr).toHaveLength(1);
    expect(fatal[0]).toMatch(/127\.0\.0\.1/);
    expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace

    server = await startServer(storage, port);
    // The dead backup could not remove its lock; its process is gone, so unlock sees it as stale.
    const unlocked = expectOk('unlock', await ours([...args, 'unlock']));
    expect(unlocked.stdout).toContain('successfully removed 1 locks');
    // Every pack an index references is complete: restic reads all data without an error.
    const resticArgs = ['-r', repoUrl, '--password-file', passwordFile];
    expectOk('restic check after the failed backup', await restic([...resticArgs, 'check', '--read-data'], { timeoutMs: 120_000 }));

    const second = await ours([...args, 'backup', data], { timeoutMs: 120_000 });
    expectOk('backup after the server came back', second);
    expectOk('restic check --read-data', await restic([...resticArgs, 'check', '--read-data'], { timeoutMs: 120_000 }));
    const target = path.join(work, 'restored');
    expectOk('restic restore', await restic([...resticArgs, 'restore', 'latest', '--target', target], { timeoutMs: 120_000 }));
    const diffs = compareTrees(await scanTree(data), await scanTree(path.join(target, data)), { mtime: 'us', rootMeta: false, hardlinks: false });
    expect(diffs).toEqual([]);
  }, 300_000);
});

describe('a server that is not there', () => {
  it('gives up after the bounded retries with one line naming the server', async () => {
    const port = await freePort();
    const started = Date.now();
    const r = await ours(['-r', `rest:http://user:secret@127.0.0.1:${port}/repo/`, '-o', 'retry.max-attempts=3', 'snapshots'], {
      env: { RESTIC_PASSWORD: 'x' },
      timeoutMs: 60_000,
    });
    expect(r.code, formatRun('snapshots', r)).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    const fatal = r.stderr.trim().split('\n').filter((l) => l.startsWith('Fatal:'));
    expect(fatal, r.stderr).toHaveLength(1);
    expect(fatal[0]).toContain(`127.0.0.1:${port}`);
    expect(r.stderr).not.toContain('secret');
  }, 90_000);
});

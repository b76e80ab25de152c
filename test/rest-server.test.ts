// Our rest-server compatible server: protocol details over raw HTTP, policy (auth, append-only, private
// repos), memory under 100 concurrent uploads, interop with the real restic 0.14, and the serve CLI.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, symlink, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashSync } from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RestBackend } from '../src/backends/rest/client.js';
import { MIME_V1, MIME_V2 } from '../src/backends/rest/protocol.js';
import { createRestServer, type RestServer, type RestServerOptions } from '../src/backends/rest/server.js';
import { backup } from '../src/commands/backup.js';
import { check } from '../src/commands/check.js';
import { init } from '../src/commands/init.js';
import { restore } from '../src/commands/restore.js';
import { Repository } from '../src/repo/repository.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { compareTrees, scanTree, summarize, type TreeScan } from './helpers/fstree.js';
import { expectOk, formatRun, restic } from './helpers/run.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request with the path sent exactly as given (no URL normalisation of `..` or `%2e`). */
function rawRequest(base: string, method: string, rawPath: string, opts: { headers?: Record<string, string>; body?: Uint8Array; user?: string } = {}): Promise<Reply> {
  const u = new URL(base);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.user) headers.authorization = `Basic ${Buffer.from(opts.user).toString('base64')}`;
  if (opts.body) headers['content-length'] = String(opts.body.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: rawPath, headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${rawPath}: timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

interface Running {
  dir: string;
  url: string;
  srv: RestServer;
}

const running: Running[] = [];
const tempDirs: string[] = [];

async function start(opts: Partial<RestServerOptions> = {}, dir?: string): Promise<Running> {
  dir ??= await makeTempDir('rest-server');
  tempDirs.push(dir);
  const srv = createRestServer({ path: dir, listen: '127.0.0.1:0', noAuth: true, onError: () => undefined, ...opts });
  const { url } = await srv.listen();
  const r = { dir, url, srv };
  running.push(r);
  return r;
}

afterAll(async () => {
  for (const r of running) await r.srv.close();
  for (const d of tempDirs) await removeDir(d);
});

async function writeHtpasswd(lines: string[]): Promise<string> {
  const dir = await makeTempDir('htpasswd');
  tempDirs.push(dir);
  const file = path.join(dir, '.htpasswd');
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

describe('protocol', () => {
  let s: Running;
  const one = randomBytes(1000);
  const two = randomBytes(10);
  beforeAll(async () => {
    s = await start();
    expect((await rawRequest(s.url, 'POST', '/r/?create=true')).status).toBe(200);
    expect((await rawRequest(s.url, 'POST', `/r/data/${sha(one)}`, { body: one })).status).toBe(200);
    expect((await rawRequest(s.url, 'POST', `/r/data/${sha(two)}`, { body: two })).status).toBe(200);
  });

  it('creates the local layout; create is idempotent; other methods on / are 405', async () => {
    expect((await readdir(path.join(s.dir, 'r'))).sort()).toEqual(['data', 'index', 'keys', 'locks', 'snapshots']);
    expect((await readdir(path.join(s.dir, 'r', 'data'))).length).toBe(256);
    expect(await readdir(path.join(s.dir, 'r', 'data', sha(one).slice(0, 2)))).toContain(sha(one));
    expect((await rawRequest(s.url, 'POST', '/r/?create=true')).status).toBe(200);
    expect((await rawRequest(s.url, 'POST', '/r/')).status).toBe(400);
    const get = await rawRequest(s.url, 'GET', '/r/');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect((await rawRequest(s.url, 'PUT', `/r/data/${sha(one)}`)).status).toBe(405);
    expect((await rawRequest(s.url, 'GET', '/r/data/xyz')).status).toBe(404);
    expect((await rawRequest(s.url, 'GET', '/nothere/keys/')).status).toBe(404);
  });

  it('lists v1 names by default and v2 {name,size} when asked', async () => {
    const v1 = await rawRequest(s.url, 'GET', '/r/data/');
    expect(v1.headers['content-type']).toBe(MIME_V1);
    expect((JSON.parse(v1.body.toString()) as string[]).sort()).toEqual([sha(one), sha(two)].sort());
    const v2 = await rawRequest(s.url, 'GET', '/r/data/', { headers: { accept: MIME_V2 } });
    expect(v2.headers['content-type']).toBe(MIME_V2);
    const items = (JSON.parse(v2.body.toString()) as { name: string; size: number }[]).sort((a, b) => a.name.localeCompare(b.name));
    expect(items).toEqual([{ name: sha(one), size: 1000 }, { name: sha(two), size: 10 }].sort((a, b) => a.name.localeCompare(b.name)));
    expect(JSON.parse((await rawRequest(s.url, 'GET', '/r/locks/')).body.toString())).toEqual([]);
  });

  it('HEAD gives the size; GET serves whole files and ranges (206), past the end is 416', async () => {
    const p = `/r/data/${sha(one)}`;
    const head = await rawRequest(s.url, 'HEAD', p);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('1000');
    expect(head.body.length).toBe(0);
    const whole = await rawRequest(s.url, 'GET', p);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(one)).toBe(true);
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=10-19', 10, 19],
      ['bytes=990-', 990, 999],
      ['bytes=900-5000', 900, 999],
      ['bytes=-5', 995, 999],
    ];
    for (const [range, a, b] of cases) {
      const r = await rawRequest(s.url, 'GET', p, { headers: { range } });
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range'], range).toBe(`bytes ${a}-${b}/1000`);
      expect(r.body.equals(one.subarray(a, b + 1)), range).toBe(true);
    }
    for (const range of ['bytes=1000-', 'bytes=2000-2010', 'bytes=5-3', 'lines=1-2']) {
      const r = await rawRequest(s.url, 'GET', p, { headers: { range } });
      expect(r.status, range).toBe(416);
      expect(r.headers['content-range'], range).toBe('bytes */1000');
    }
    expect((await rawRequest(s.url, 'HEAD', `/r/data/${sha(randomBytes(4))}`)).status).toBe(404);
  });

  it('rejects a body whose SHA-256 is not its name (400) and leaves nothing behind; config is not hashed', async () => {
    const data = randomBytes(5000);
    const wrong = sha(randomBytes(8));
    expect((await rawRequest(s.url, 'POST', `/r/data/${wrong}`, { body: data })).status).toBe(400);
    expect((await rawRequest(s.url, 'POST', `/r/snapshots/${wrong}`, { body: data })).status).toBe(400);
    expect(await readdir(path.join(s.dir, 'r', 'data', wrong.slice(0, 2)))).toEqual([]);
    expect(await readdir(path.join(s.dir, 'r', 'snapshots'))).toEqual([]);
    expect((await rawRequest(s.url, 'POST', '/r/config', { body: data })).status).toBe(200);
    expect((await rawRequest(s.url, 'GET', '/r/config')).body.equals(data)).toBe(true);
  });

  it('never overwrites: a second save of a file or config is 403', async () => {
    expect((await rawRequest(s.url, 'POST', `/r/data/${sha(one)}`, { body: one })).status).toBe(403);
    const cfg = randomBytes(10);
    await rawRequest(s.url, 'POST', '/r/config', { body: cfg });
    expect((await rawRequest(s.url, 'POST', '/r/config', { body: cfg })).status).toBe(403);
  });

  it('rejects path traversal without touching the filesystem outside the data directory', async () => {
    const outer = await makeTempDir('rest-outer');
    tempDirs.push(outer);
    const inner = path.join(outer, 'data');
    await mkdir(inner);
    await writeFile(path.join(outer, 'config'), 'secret outside');
    const t = await start({}, inner);
    const attempts: [string, string][] = [
      ['GET', '/../config'],
      ['GET', '/%2e%2e/config'],
      ['GET', '/%2E%2E/config'],
      ['GET', '/..%2fconfig'],
      ['GET', '/a/%2e%2e/config'],
      ['GET', '/%2e%2e/%2e%2e/etc/passwd'],
      ['GET', '/./config'],
      ['GET', '//config'],
      ['GET', '/%00/config'],
      ['GET', '/%zz/config'],
      ['GET', '/data/../config'],
      ['GET', '/data/%2e%2e%2fconfig'],
      ['POST', '/%2e%2e/?create=true'],
      ['POST', '/../evil/?create=true'],
      ['POST', '/%2e%2e/keys/' + sha(Buffer.from('x'))],
    ];
    for (const [method, p] of attempts) {
      const r = await rawRequest(t.url, method, p, method === 'POST' && p.includes('keys') ? { body: Buffer.from('x') } : {});
      expect([400, 404], `${method} ${p} → ${r.status}`).toContain(r.status);
      expect(r.body.toString()).not.toContain('secret outside');
    }
    expect((await readdir(outer)).sort()).toEqual(['config', 'data']);
    expect(await readdir(inner)).toEqual([]);
  });
});

describe('authentication', () => {
  let s: Running;
  let htpasswd: string;
  const users: Record<string, string> = { y: 'pw-y', a: 'pw-a', b: 'pw-b', sha: 'pw-sha' };
  beforeAll(async () => {
    const bcrypt = (pw: string, prefix: string) => `${prefix}${hashSync(pw, 4).slice(4)}`;
    htpasswd = await writeHtpasswd([
      '# comment line',
      `y:${bcrypt(users.y!, '$2y$')}`,
      `a:${bcrypt(users.a!, '$2a$')}`,
      `  b:${bcrypt(users.b!, '$2b$')}`,
      `sha:{SHA}${createHash('sha1').update(users.sha!).digest('base64')}`,
      `bad/name:{SHA}${createHash('sha1').update('x').digest('base64')}`,
    ]);
    s = await start({ noAuth: false, htpasswdFile: htpasswd });
  });

  it('401 without or with wrong credentials; bcrypt $2y$/$2a$/$2b$ and {SHA} entries log in', async () => {
    const none = await rawRequest(s.url, 'GET', '/keys/');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic /);
    expect((await rawRequest(s.url, 'GET', '/keys/', { user: 'y:wrong' })).status).toBe(401);
    expect((await rawRequest(s.url, 'GET', '/keys/', { user: 'nobody:pw' })).status).toBe(401);
    expect((await rawRequest(s.url, 'GET', '/keys/', { user: 'bad/name:x' })).status).toBe(401);
    for (const [user, pw] of Object.entries(users)) {
      const r = await rawRequest(s.url, 'POST', `/${user}/?create=true`, { user: `${user}:${pw}` });
      expect(r.status, user).toBe(200);
      // Second request: served from the login cache, same answer.
      expect((await rawRequest(s.url, 'GET', `/${user}/keys/`, { user: `${user}:${pw}` })).status, user).toBe(200);
      expect((await rawRequest(s.url, 'GET', `/${user}/keys/`, { user: `${user}:${pw}x` })).status, user).toBe(401);
    }
  });

  it('picks up users added to the htpasswd file while running', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    await writeFile(htpasswd, `late:{SHA}${createHash('sha1').update('late-pw').digest('base64')}\n`);
    let status = 0;
    for (let i = 0; i < 30 && status !== 200; i++) {
      status = (await rawRequest(s.url, 'POST', '/late/?create=true', { user: 'late:late-pw' })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    // Users removed from the file are locked out, cached logins included.
    expect((await rawRequest(s.url, 'GET', '/y/keys/', { user: `y:${users.y}` })).status).toBe(401);
  });

  it('refuses to start when the htpasswd file is missing (unless --no-auth)', () => {
    expect(() => createRestServer({ path: s.dir, noAuth: false, htpasswdFile: path.join(s.dir, 'missing') })).toThrow(/use --no-auth/);
  });

  it('private repos: a user reaches only /<user>/…', async () => {
    const file = await writeHtpasswd([`a:{SHA}${createHash('sha1').update('pa').digest('base64')}`, `b:{SHA}${createHash('sha1').update('pb').digest('base64')}`]);
    const p = await start({ noAuth: false, htpasswdFile: file, privateRepos: true });
    expect((await rawRequest(p.url, 'POST', '/a/?create=true', { user: 'a:pa' })).status).toBe(200);
    expect((await rawRequest(p.url, 'POST', '/a/sub/?create=true', { user: 'a:pa' })).status).toBe(200);
    expect((await rawRequest(p.url, 'POST', '/b/?create=true', { user: 'b:pb' })).status).toBe(200);
    expect((await rawRequest(p.url, 'GET', '/b/keys/', { user: 'a:pa' })).status).toBe(401);
    expect((await rawRequest(p.url, 'POST', '/b/sub/?create=true', { user: 'a:pa' })).status).toBe(401);
    expect((await rawRequest(p.url, 'POST', '/?create=true', { user: 'a:pa' })).status).toBe(401);
    expect((await rawRequest(p.url, 'GET', '/keys/', { user: 'a:pa' })).status).toBe(401);
    expect((await rawRequest(p.url, 'GET', '/ab/keys/', { user: 'a:pa' })).status).toBe(401);
    expect((await rawRequest(p.url, 'GET', '/a/keys/', { user: 'a:pa' })).status).toBe(200);
    expect((await rawRequest(p.url, 'GET', '/b/keys/', { user: 'b:pb' })).status).toBe(200);
  });
});

describe('append-only', () => {
  it('refuses DELETE of data, snapshots and config (403), allows DELETE of locks, never overwrites', async () => {
    const s = await start({ appendOnly: true });
    expect((await rawRequest(s.url, 'POST', '/r/?create=true')).status).toBe(200);
    const files: Record<string, Buffer> = { data: randomBytes(100), snapshots: randomBytes(100), locks: randomBytes(100) };
    for (const [type, body] of Object.entries(files)) expect((await rawRequest(s.url, 'POST', `/r/${type}/${sha(body)}`, { body })).status).toBe(200);
    expect((await rawRequest(s.url, 'POST', '/r/config', { body: Buffer.from('cfg') })).status).toBe(200);
    expect((await rawRequest(s.url, 'DELETE', `/r/data/${sha(files.data!)}`)).status).toBe(403);
    expect((await rawRequest(s.url, 'DELETE', `/r/snapshots/${sha(files.snapshots!)}`)).status).toBe(403);
    expect((await rawRequest(s.url, 'DELETE', '/r/config')).status).toBe(403);
    expect((await rawRequest(s.url, 'POST', `/r/data/${sha(files.data!)}`, { body: files.data })).status).toBe(403);
    expect((await rawRequest(s.url, 'POST', '/r/config', { body: Buffer.from('cfg2') })).status).toBe(403);
    expect((await rawRequest(s.url, 'DELETE', `/r/locks/${sha(files.locks!)}`)).status).toBe(200);
    expect((await rawRequest(s.url, 'HEAD', `/r/locks/${sha(files.locks!)}`)).status).toBe(404);
    expect((await rawRequest(s.url, 'HEAD', `/r/data/${sha(files.data!)}`)).status).toBe(200);
  });
});

describe('quota (--max-size)', () => {
  it('answers 507 once the data directory would exceed the maximum, and frees space on delete', async () => {
    const s = await start({ maxRepoSize: 10_000 });
    const a = randomBytes(6000);
    const b = randomBytes(6000);
    expect((await rawRequest(s.url, 'POST', '/r/?create=true')).status).toBe(200);
    expect((await rawRequest(s.url, 'POST', `/r/data/${sha(a)}`, { body: a })).status).toBe(200);
    expect((await rawRequest(s.url, 'POST', `/r/data/${sha(b)}`, { body: b })).status).toBe(507);
    expect((await rawRequest(s.url, 'DELETE', `/r/data/${sha(a)}`)).status).toBe(200);
    expect((await rawRequest(s.url, 'POST', `/r/data/${sha(b)}`, { body: b })).status).toBe(200);
  });
});

describe('memory', () => {
  it('100 concurrent 4 MiB uploads keep the RSS bounded', { timeout: 300_000 }, async () => {
    const s = await start();
    expect((await rawRequest(s.url, 'POST', '/r/?create=true')).status).toBe(200);
    const u = new URL(s.url);
    const agent = new http.Agent({ keepAlive: false, maxSockets: 100 });
    const block = 64 * 1024;
    const blocks = 64; // 4 MiB per upload
    // Each body is one 64 KiB block repeated, written with backpressure: the client holds ~6 MiB.
    const seeds = Array.from({ length: 100 }, () => randomBytes(block));
    const names = seeds.map((seed) => {
      const h = createHash('sha256');
      for (let i = 0; i < blocks; i++) h.update(seed);
      return h.digest('hex');
    });
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const upload = async (i: number): Promise<number> => {
      const req = http.request({ agent, host: u.hostname, port: u.port, method: 'POST', path: `/r/data/${names[i]}`, headers: { 'content-length': String(block * blocks) } });
      const answered = new Promise<number>((resolve, reject) => {
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
      });
      for (let k = 0; k < blocks; k++) if (!req.write(seeds[i]!)) await once(req, 'drain');
      req.end();
      return answered;
    };
    const started = Date.now();
    let statuses: number[];
    try {
      statuses = await Promise.all(seeds.map((_, i) => upload(i)));
    } finally {
      clearInterval(sampler);
      agent.destroy();
    }
    const overMiB = (peak - baseline) / 1024 / 1024;
    console.log(`100 × 4 MiB concurrent uploads: ${((Date.now() - started) / 1000).toFixed(1)} s, peak RSS ${(peak / 1024 / 1024).toFixed(0)} MiB, ${overMiB.toFixed(0)} MiB over baseline`);
    expect(statuses.every((st) => st === 200)).toBe(true);
    expect(overMiB).toBeLessThan(300);
    const listed = JSON.parse((await rawRequest(s.url, 'GET', '/r/data/', { headers: { accept: MIME_V2 } })).body.toString()) as { name: string; size: number }[];
    expect(listed.length).toBe(100);
    expect(listed.every((f) => f.size === block * blocks && names.includes(f.name))).toBe(true);
  });
});

describe('interop with restic 0.14', () => {
  const PASSWORD = 'rest interop password';
  let work: string;
  let src: string;
  let srcScan: TreeScan;
  beforeAll(async () => {
    work = await makeTempDir('rest-interop');
    tempDirs.push(work);
    src = path.join(work, 'src');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'a.txt'), 'hello from the rest interop test\n');
    await writeFile(path.join(src, 'big.bin'), randomBytes(3 * 1024 * 1024 + 4321));
    await writeFile(path.join(src, 'sub', 'b.bin'), randomBytes(150_000));
    await writeFile(path.join(src, 'sub', 'empty'), '');
    await symlink('a.txt', path.join(src, 'link'));
    srcScan = await scanTree(src);
  });

  const resticAt = (url: string, args: string[], timeoutMs = 180_000) => restic(['-r', `rest:${url}`, ...args], { env: { RESTIC_PASSWORD: PASSWORD }, timeoutMs });

  async function ourRestoreEquals(backend: RestBackend): Promise<void> {
    const repo = await Repository.open(backend, PASSWORD);
    const result = await check(repo, { readData: true });
    expect(result.errors).toEqual([]);
    const target = await mkdtemp(path.join(work, 'restore-ours-'));
    await restore(repo, { snapshot: 'latest', target });
    const diffs = compareTrees(srcScan, await scanTree(path.join(target, src)), { mtime: 'us', rootMeta: true, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
  }

  it('restic init + backup against our server with auth; our client reads and restores byte-equal', async () => {
    const file = await writeHtpasswd([`carol:${hashSync('carol-pw', 4)}`]);
    const s = await start({ noAuth: false, htpasswdFile: file });
    const url = s.url.replace('http://', 'http://carol:carol-pw@') + 'repo';
    expectOk('restic init', await resticAt(url, ['init']));
    expectOk('restic backup', await resticAt(url, ['backup', src]));
    const denied = await resticAt(s.url.replace('http://', 'http://carol:nope@') + 'repo', ['snapshots'], 60_000);
    expect(denied.code, formatRun('restic with a wrong password', denied)).not.toBe(0);
    const backend = new RestBackend({ kind: 'rest', url: `${s.url}repo/`, username: 'carol', password: 'carol-pw' });
    try {
      await ourRestoreEquals(backend);
    } finally {
      await backend.close();
    }
  });

  it('restic init + backup against our server with --no-auth; our client restores byte-equal', async () => {
    const s = await start();
    expectOk('restic init', await resticAt(`${s.url}a/b`, ['init']));
    expectOk('restic backup', await resticAt(`${s.url}a/b`, ['backup', src]));
    const backend = new RestBackend({ kind: 'rest', url: `${s.url}a/b/` });
    try {
      await ourRestoreEquals(backend);
    } finally {
      await backend.close();
    }
  });

  it('we init + back up on our server; restic check --read-data and restore pass', async () => {
    const s = await start();
    const backend = new RestBackend({ kind: 'rest', url: `${s.url}ours/` });
    try {
      const repo = await init(backend, { password: PASSWORD });
      await backup(repo, { paths: [src], hostname: 'rest-host' });
    } finally {
      await backend.close();
    }
    const c = await resticAt(`${s.url}ours/`, ['check', '--read-data']);
    expect(c.code, formatRun('restic check --read-data', c)).toBe(0);
    expect(c.stdout).toContain('no errors were found');
    const target = await mkdtemp(path.join(work, 'restore-restic-'));
    expectOk('restic restore', await resticAt(`${s.url}ours/`, ['restore', 'latest', '--target', target]));
    const diffs = compareTrees(srcScan, await scanTree(path.join(target, src)), { mtime: 'ns', rootMeta: true, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
  });

  it('append-only: restic backs up, but restic forget fails with the 403 in its output', { timeout: 240_000 }, async () => {
    const s = await start({ appendOnly: true });
    const url = `${s.url}ao`;
    expectOk('restic init', await resticAt(url, ['init']));
    expectOk('restic backup', await resticAt(url, ['backup', src]));
    // restic 0.14 retries the refused DELETE for ~45 s before it gives up.
    const r = await resticAt(url, ['forget', 'latest'], 200_000);
    expect(r.code, formatRun('restic forget', r)).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/403 Forbidden/);
    const snaps = JSON.parse(expectOk('restic snapshots', await resticAt(url, ['snapshots', '--json'])).stdout) as unknown[];
    expect(snaps).toHaveLength(1);
  });
});

describe('serve CLI', () => {
  it('prints its URL, serves restic, and closes cleanly on SIGINT', { timeout: 120_000 }, async () => {
    const dir = await makeTempDir('rest-cli');
    tempDirs.push(dir);
    const root = fileURLToPath(new URL('..', import.meta.url));
    const script = path.join(root, 'src/cli/main.ts');
    const data = path.join(dir, 'data');
    await mkdir(data);
    const child = spawn(path.join(root, 'node_modules/.bin/vite-node'), [script, 'serve', '--path', data, '--listen', '127.0.0.1:0', '--no-auth'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const kill = setTimeout(() => child.kill('SIGKILL'), 100_000);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const poll = setInterval(() => {
          const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout);
          if (m) {
            clearInterval(poll);
            resolve(m[1]!);
          }
        }, 50);
        void exited.then((code) => {
          clearInterval(poll);
          reject(new Error(`serve exited early with ${code}\n${stdout}\n${stderr}`));
        });
      });
      expect(stdout).toContain(`serving repositories in ${data} at ${url}`);
      expectOk('restic init via serve', await restic(['-r', `rest:${url}cli`, 'init'], { env: { RESTIC_PASSWORD: 'pw' }, timeoutMs: 60_000 }));
      expect(await readdir(path.join(data, 'cli'))).toContain('config');
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stdout).toContain('received SIGINT, server closed');
    } finally {
      clearTimeout(kill);
      child.kill('SIGKILL');
    }
  });
});

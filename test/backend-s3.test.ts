import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Backend, MULTIPART_THRESHOLD } from '../src/backends/s3/s3.js';
import { resolveS3Settings } from '../src/backends/s3/settings.js';
import type { BackendOptions, S3Location } from '../src/backends/options.js';
import { NotFoundError, PermanentError, ResticError, UsageError } from '../src/errors.js';
import { Repository } from '../src/repo/repository.js';
import { init } from '../src/commands/init.js';
import { backup } from '../src/commands/backup.js';
import { restore } from '../src/commands/restore.js';
import { backendConformance } from './backends/conformance.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { compareTrees, scanTree, summarize, type TreeScan } from './helpers/fstree.js';
import { expectOk, formatRun, restic } from './helpers/run.js';
import { startS3Server, type S3TestServer } from './helpers/s3server.js';

const PASSWORD = 's3 interop password';

function location(server: S3TestServer, bucket: string, prefix: string): S3Location {
  return { kind: 's3', endpoint: server.endpoint, useTls: server.useTls, bucket, prefix };
}

function open(server: S3TestServer, bucket: string, prefix: string, extra: BackendOptions = {}): S3Backend {
  return new S3Backend(location(server, bucket, prefix), {
    env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey },
    cacert: server.caFile ? [server.caFile] : undefined,
    ...extra,
  });
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error,
  );
}

function conformanceOn(name: string, tls: boolean, prefix: string): void {
  backendConformance(name, async () => {
    // Small list pages so that every listing of more than 7 files follows continuation tokens.
    const server = await startS3Server({ tls, listPageSize: 7 });
    const backend = open(server, 'conformance', prefix);
    try {
      await backend.create();
    } catch (err) {
      await server.close();
      throw err;
    }
    return { backend, cleanup: () => server.close() };
  });
}

describe('S3 settings', () => {
  const env = { AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret' };
  const loc = (endpoint: string, bucket = 'bucket', useTls = true): S3Location => ({ kind: 's3', endpoint, useTls, bucket, prefix: '' });

  it('AWS: SDK-chosen regional endpoint, virtual-host style, region from option, env or host name', () => {
    const aws = resolveS3Settings(loc('s3.amazonaws.com'), { env });
    expect(aws).toMatchObject({ endpointUrl: undefined, forcePathStyle: false, region: 'us-east-1', connections: 5 });
    expect(resolveS3Settings(loc('s3.amazonaws.com'), { env: { ...env, AWS_REGION: 'ap-south-1' } }).region).toBe('ap-south-1');
    expect(resolveS3Settings(loc('s3.amazonaws.com'), { env: { ...env, AWS_DEFAULT_REGION: 'eu-west-3', AWS_REGION: 'ap-south-1' } }).region).toBe('eu-west-3');
    expect(resolveS3Settings(loc('s3.amazonaws.com'), { env: { ...env, AWS_REGION: 'ap-south-1' }, extended: { 's3.region': 'sa-east-1' } }).region).toBe('sa-east-1');
    const regional = resolveS3Settings(loc('s3.eu-west-1.amazonaws.com'), { env });
    expect(regional).toMatchObject({ endpointUrl: 'https://s3.eu-west-1.amazonaws.com', region: 'eu-west-1', forcePathStyle: false });
    // A dotted bucket name is not a valid TLS host label.
    expect(resolveS3Settings(loc('s3.amazonaws.com', 'my.bucket'), { env }).forcePathStyle).toBe(true);
  });

  it('custom endpoints: path style unless s3.bucket-lookup=dns; http when not TLS', () => {
    expect(resolveS3Settings(loc('minio.local:9000', 'b', false), { env })).toMatchObject({ endpointUrl: 'http://minio.local:9000', forcePathStyle: true });
    expect(resolveS3Settings(loc('minio.local:9000'), { env, extended: { 's3.bucket-lookup': 'dns' } }).forcePathStyle).toBe(false);
    expect(resolveS3Settings(loc('s3.amazonaws.com'), { env, extended: { 's3.bucket-lookup': 'path' } }).forcePathStyle).toBe(true);
  });

  it('credentials, connections and CA files are checked up front', () => {
    expect(resolveS3Settings(loc('x'), { env: { ...env, AWS_SESSION_TOKEN: 'tok' } }).credentials).toEqual({ accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: 'tok' });
    expect(resolveS3Settings(loc('x'), { env, extended: { 's3.connections': '9' } }).connections).toBe(9);
    expect(() => resolveS3Settings(loc('x'), { env, extended: { 's3.connections': '0' } })).toThrow(UsageError);
    expect(() => resolveS3Settings(loc('x'), { env, extended: { 's3.bucket-lookup': 'vhost' } })).toThrow(UsageError);
    expect(() => resolveS3Settings(loc('x'), { env, cacert: ['/nonexistent/ca.pem'] })).toThrow(/cannot read CA certificate/);
  });
});

conformanceOn('s3 (TLS, prefix)', true, 'some/prefix');
conformanceOn('s3 (TLS, bucket root)', true, '');
conformanceOn('s3 (plain http)', false, 'repo');

describe('S3Backend behaviour', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server({ listPageSize: 7 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('stores files under restic default layout keys', async () => {
    const be = open(server, 'layout', 'p/q');
    await be.create();
    const data = randomBytes(100);
    const since = server.requests.length;
    await be.save('data', sha(data), data);
    await be.save('keys', sha(data), data);
    await be.save('config', 'config', data);
    const puts = server.requests.slice(since).filter((r) => r.method === 'PUT').map((r) => r.url.replace(/\?.*/, ''));
    expect(puts).toEqual([`/layout/p/q/data/${sha(data).slice(0, 2)}/${sha(data)}`, `/layout/p/q/keys/${sha(data)}`, '/layout/p/q/config']);
    await be.close();
  });

  it('lists across pages', async () => {
    const be = open(server, 'pages', '');
    await be.create();
    const files = Array.from({ length: 20 }, () => randomBytes(16));
    await Promise.all(files.map((f) => be.save('index', sha(f), f)));
    const since = server.requests.length;
    const names: string[] = [];
    for await (const f of be.list('index')) names.push(f.name);
    expect(names.sort()).toEqual(files.map(sha).sort());
    const pages = server.requests.slice(since).filter((r) => r.url.includes('list-type=2'));
    expect(pages.length).toBe(3);
    expect(pages.filter((r) => r.url.includes('continuation-token=')).length).toBe(2);
    await be.close();
  });

  it('keeps at most s3.connections requests open', async () => {
    for (const [connections, limit] of [['2', 2], [undefined, 5]] as const) {
      const be = open(server, `conn${limit}`, '', connections ? { extended: { 's3.connections': connections } } : {});
      await be.create();
      server.peakInFlight = 0;
      const files = Array.from({ length: 20 }, () => randomBytes(20_000));
      await Promise.all(files.map((f) => be.save('data', sha(f), f)));
      await Promise.all(files.map((f) => be.load('data', sha(f))));
      expect(server.peakInFlight).toBeLessThanOrEqual(limit);
      expect(server.peakInFlight).toBeGreaterThan(1);
      await be.close();
    }
  });

  it('uploads large files in parts and reads them back', async () => {
    const be = open(server, 'multipart', 'repo');
    await be.create();
    const data = randomBytes(MULTIPART_THRESHOLD + 1234);
    const since = server.requests.length;
    await be.save('data', sha(data), data);
    const parts = server.requests.slice(since).filter((r) => r.method === 'PUT' && r.url.includes('partNumber='));
    expect(parts.length).toBe(5);
    expect((await be.stat('data', sha(data))).size).toBe(data.length);
    expect(sha(await be.load('data', sha(data)))).toBe(sha(data));
    const tail = await be.load('data', sha(data), data.length - 2000, 2000);
    expect(Buffer.from(tail).equals(data.subarray(data.length - 2000))).toBe(true);
    await be.close();
  });

  it('aborts a multipart upload when a part fails', async () => {
    const be = open(server, 'multipart-abort', '');
    await be.create();
    const data = randomBytes(MULTIPART_THRESHOLD + 1);
    const since = server.requests.length;
    server.failWhen = (r) => r.method === 'PUT' && r.url.includes('partNumber=3');
    try {
      const err = await failure(be.save('data', sha(data), data));
      expect(err).toBeInstanceOf(ResticError);
      expect(err).not.toBeInstanceOf(PermanentError);
      expect(err.message).toMatch(/part 3\/5\): server error \(InternalError, HTTP 500\)/);
    } finally {
      server.failWhen = undefined;
    }
    const seen = server.requests.slice(since);
    expect(seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
    expect(seen.some((r) => r.method === 'POST' && r.url.includes('uploadId='))).toBe(false);
    await expect(be.stat('data', sha(data))).rejects.toThrow(NotFoundError);
    await be.close();
  });

  it('a 5xx answer is retryable, not permanent', async () => {
    const be = open(server, 'flaky', '');
    await be.create();
    server.failWhen = () => true;
    try {
      for (const op of [() => be.load('keys', 'a'.repeat(64)), () => be.stat('keys', 'a'.repeat(64)), () => be.save('keys', 'b'.repeat(64), new Uint8Array(3))]) {
        const err = await failure(op());
        expect(err).toBeInstanceOf(ResticError);
        expect(err).not.toBeInstanceOf(PermanentError);
        expect(err).not.toBeInstanceOf(NotFoundError);
      }
    } finally {
      server.failWhen = undefined;
    }
    await be.close();
  });

  it('a wrong secret is a PermanentError naming endpoint and bucket, never the secret', async () => {
    const secret = 'wrong-secret-Zq8vX2';
    const be = open(server, 'layout', 'p/q', { env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: secret } });
    const ops = [
      () => be.load('config', 'config'),
      () => be.stat('keys', 'a'.repeat(64)),
      () => be.save('keys', 'a'.repeat(64), new Uint8Array(1)),
      () => be.create(),
      () => Repository.open(be, PASSWORD),
    ];
    for (const op of ops) {
      const err = await failure(op());
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toContain(`${server.endpoint}/layout`);
      // HEAD answers carry no body, so only the status is known there.
      expect(err.message).toMatch(/access denied \((SignatureDoesNotMatch, )?HTTP 403\)/);
      expect(err.message).not.toContain(secret);
      expect(err.message).not.toContain('\n');
    }
    const badKey = open(server, 'layout', 'p/q', { env: { AWS_ACCESS_KEY_ID: 'NOSUCHKEY', AWS_SECRET_ACCESS_KEY: secret } });
    const err = await failure(badKey.load('config', 'config'));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/InvalidAccessKeyId/);
    expect(err.message).not.toContain(secret);
    await be.close();
    await badKey.close();
  });

  it('an unreachable endpoint is a retryable ResticError', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const be = new S3Backend({ kind: 's3', endpoint: `127.0.0.1:${port}`, useTls: false, bucket: 'gone', prefix: '' }, { env: { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' } });
    const err = await failure(be.load('config', 'config'));
    expect(err).toBeInstanceOf(ResticError);
    expect(err).not.toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(new RegExp(`^s3 127\\.0\\.0\\.1:${port}/gone: load config/config: .*ECONNREFUSED`));
    await be.close();
  });

  it('missing credentials are a PermanentError', () => {
    expect(() => new S3Backend(location(server, 'x', ''), { env: {} })).toThrow(PermanentError);
    expect(() => new S3Backend(location(server, 'x', ''), { env: { AWS_ACCESS_KEY_ID: 'a' } })).toThrow(/AWS_SECRET_ACCESS_KEY/);
  });

  it('a missing bucket reads as a missing repository', async () => {
    const be = open(server, 'never-created', '');
    await expect(be.stat('config', 'config')).rejects.toThrow(NotFoundError);
    await expect(Repository.open(be, PASSWORD)).rejects.toThrow(/no config file found/);
    await be.close();
  });

  it('TLS: an untrusted certificate is a PermanentError; --insecure-tls accepts it', async () => {
    const untrusted = open(server, 'tls', '', { cacert: undefined });
    const err = await failure(untrusted.stat('config', 'config'));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/certificate/);
    await untrusted.close();
    const insecure = open(server, 'tls', '', { cacert: undefined, insecureTls: true });
    await insecure.create();
    await expect(insecure.stat('config', 'config')).rejects.toThrow(NotFoundError);
    await insecure.close();
  });
});

describe('S3Backend region discovery', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server({ region: 'eu-central-1' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('follows a 301 to the bucket region once and keeps using it', async () => {
    const be = open(server, 'regional', '');
    await be.create();
    const data = randomBytes(50);
    await be.save('snapshots', sha(data), data);
    expect(Buffer.from(await be.load('snapshots', sha(data))).equals(data)).toBe(true);
    // Only the very first request went to the wrong region.
    const redirected = server.requests.filter((r) => r.method === 'HEAD' && r.url === '/regional/');
    expect(redirected.length).toBe(2);
    expect(server.requests.map((r) => r.status)).toEqual([301, 404, 200, 404, 200, 200]);
    await be.close();
  });

  it('uses s3.region when given', async () => {
    const be = open(server, 'regional2', '', { extended: { 's3.region': 'eu-central-1' } });
    const since = server.requests.length;
    await be.create();
    expect(server.requests.slice(since).map((r) => r.status)).not.toContain(301);
    await be.close();
  });
});

describe('interop with restic 0.14 over S3 (TLS)', () => {
  let server: S3TestServer;
  let work: string;
  let src: string;
  let passwordFile: string;
  let srcScan: TreeScan;
  const repoUrl = (prefix: string) => `s3:https://${server.endpoint}/interop/${prefix}`;
  const resticS3 = (prefix: string, args: string[]) =>
    restic(['-r', repoUrl(prefix), '--cacert', server.caFile!, '--password-file', passwordFile, ...args], {
      env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey },
      timeoutMs: 120_000,
    });

  beforeAll(async () => {
    server = await startS3Server();
    work = await makeTempDir('s3-interop');
    src = path.join(work, 'src');
    passwordFile = path.join(work, 'password');
    await writeFile(passwordFile, `${PASSWORD}\n`);
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'a.txt'), 'hello from the s3 interop test\n');
    await writeFile(path.join(src, 'big.bin'), randomBytes(3 * 1024 * 1024 + 12345));
    await writeFile(path.join(src, 'sub', 'b.bin'), randomBytes(200_000));
    await writeFile(path.join(src, 'sub', 'empty'), '');
    await symlink('a.txt', path.join(src, 'link'));
    srcScan = await scanTree(src);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(work);
  });

  it('restic init + backup → we read and restore byte-equal', async () => {
    expectOk('restic init', await resticS3('from-restic', ['init']));
    expectOk('restic backup', await resticS3('from-restic', ['backup', src]));
    // restic's default layout: packs under data/<2 hex>/.
    expect(server.requests.some((r) => r.method === 'PUT' && /^\/interop\/from-restic\/data\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/.test(r.url))).toBe(true);

    const be = open(server, 'interop', 'from-restic');
    const repo = await Repository.open(be, PASSWORD);
    const target = await mkdtemp(path.join(work, 'restore-ours-'));
    await restore(repo, { snapshot: 'latest', target });
    const diffs = compareTrees(srcScan, await scanTree(path.join(target, src)), { mtime: 'us', rootMeta: true, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
    await be.close();
  });

  it('we init + back up → restic check --read-data and restore pass', async () => {
    const be = open(server, 'interop', 'from-us');
    const repo = await init(be, { password: PASSWORD });
    await backup(repo, { paths: [src], hostname: 's3-host' });
    await be.close();

    const check = await resticS3('from-us', ['check', '--read-data']);
    expect(check.code, formatRun('restic check --read-data', check)).toBe(0);
    expect(check.stdout).toContain('no errors were found');
    const target = await mkdtemp(path.join(work, 'restore-restic-'));
    expectOk('restic restore', await resticS3('from-us', ['restore', 'latest', '--target', target]));
    const diffs = compareTrees(srcScan, await scanTree(path.join(target, src)), { mtime: 'ns', rootMeta: true, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
  });
});

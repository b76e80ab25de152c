// The REST client on the conformance suite against our server (http + basic auth, https + cacert, a
// v1-only proxy that also ignores Range) and against rclone's independent server; then the client's
// error mapping against small fake servers.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { hashSync } from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RestBackend, redactUrl } from '../src/backends/rest/client.js';
import { createRestServer, type RestServer, type RestServerOptions } from '../src/backends/rest/server.js';
import { NotFoundError, PermanentError, ResticError } from '../src/errors.js';
import { backendConformance } from './backends/conformance.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { expectOk, run } from './helpers/run.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function ourServer(opts: Partial<RestServerOptions> = {}): Promise<{ dir: string; url: string; srv: RestServer; cleanup(): Promise<void> }> {
  const dir = await makeTempDir('rest-srv');
  const srv = createRestServer({ path: dir, listen: '127.0.0.1:0', noAuth: true, onError: () => undefined, ...opts });
  const { url } = await srv.listen();
  return {
    dir,
    url,
    srv,
    cleanup: async () => {
      await srv.close();
      await removeDir(dir);
    },
  };
}

/** A self-signed certificate for 127.0.0.1, made with openssl into `dir`. */
async function makeCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  expectOk(
    'openssl req',
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], {
      timeoutMs: 60_000,
    }),
  );
  return { cert, key };
}

/** Listens on a free loopback port; resolves with the base URL. */
function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)));
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

backendConformance(
  'rest (our server, http, basic auth)',
  async () => {
    const dir = await makeTempDir('rest-auth');
    const htpasswd = path.join(dir, 'htpasswd');
    await writeFile(htpasswd, `alice:${hashSync('s3cret', 4)}\n`);
    const s = await ourServer({ noAuth: false, htpasswdFile: htpasswd });
    const backend = new RestBackend({ kind: 'rest', url: `${s.url}repo/`, username: 'alice', password: 's3cret' });
    await backend.create();
    return { backend, cleanup: async () => (await s.cleanup(), await removeDir(dir)) };
  },
  { checksHashOnSave: true },
);

let tlsDir: string | undefined;
backendConformance(
  'rest (our server, https, --cacert)',
  async () => {
    tlsDir = await makeTempDir('rest-tls');
    const { cert, key } = await makeCert(tlsDir);
    const s = await ourServer({ tls: true, tlsCert: cert, tlsKey: key });
    expect(s.url.startsWith('https://127.0.0.1:')).toBe(true);
    const backend = new RestBackend({ kind: 'rest', url: `${s.url}deep/repo/` }, { cacert: [cert] });
    await backend.create();
    return { backend, cleanup: async () => (await s.cleanup(), await removeDir(tlsDir)) };
  },
  { checksHashOnSave: true },
);

// A proxy that drops Accept and Range: our server then answers v1 listings and whole files, the paths
// the client takes with older or simpler servers.
backendConformance(
  'rest (v1 listings, Range ignored, via proxy)',
  async () => {
    const s = await ourServer();
    const target = new URL(s.url);
    const proxy = http.createServer((req, res) => {
      const headers = { ...req.headers };
      delete headers.accept;
      delete headers.range;
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    const url = await listen(proxy);
    const backend = new RestBackend({ kind: 'rest', url: `${url}repo/` });
    await backend.create();
    return { backend, cleanup: async () => (await closeServer(proxy), await s.cleanup()) };
  },
  { checksHashOnSave: true },
);

/** `rclone serve restic` on a free port; resolves once it prints the URL it serves (bounded). */
async function startRclone(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn('rclone', ['serve', 'restic', '--addr', '127.0.0.1:0', dir], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RCLONE_CONFIG: '/dev/null' } });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rclone did not start within 20 s:\n${log}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /Serving restic REST API on (http:\/\/[^\s]+\/)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rclone exited with ${code}:\n${log}`));
    });
  });
  child.removeAllListeners('exit');
  return { url, child };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// rclone stores what it gets without checking the hash, so no checksHashOnSave here.
backendConformance('rest (rclone serve restic)', async () => {
  const dir = await makeTempDir('rest-rclone');
  const { url, child } = await startRclone(dir);
  const backend = new RestBackend({ kind: 'rest', url: `${url}repo/` });
  await backend.create();
  return { backend, cleanup: async () => (await stopChild(child), await removeDir(dir)) };
});

describe('rest client: locations, credentials, TLS', () => {
  it('redactUrl hides only the password', () => {
    expect(redactUrl('rest:http://user:pa%40ss@host:8000/repo/')).toBe('rest:http://user:***@host:8000/repo/');
    expect(redactUrl('https://user@host/')).toBe('https://user@host/');
    expect(redactUrl('http://host/x')).toBe('http://host/x');
    expect(redactUrl('http://u:p@ss@host/x@y')).toBe('http://u:***@host/x@y');
  });

  it('credentials in the URL are used but never shown; wrong ones are a PermanentError without the secret', async () => {
    const dir = await makeTempDir('rest-cred');
    const htpasswd = path.join(dir, 'htpasswd');
    await writeFile(htpasswd, `bob:${hashSync('right-secret', 4)}\n`);
    const s = await ourServer({ noAuth: false, htpasswdFile: htpasswd });
    try {
      const withUrlCreds = new RestBackend({ kind: 'rest', url: s.url.replace('http://', 'http://bob:right-secret@') + 'r' });
      expect(withUrlCreds.location).toBe(`rest:${s.url}r/`);
      await withUrlCreds.create();
      await withUrlCreds.close();
      const wrong = new RestBackend({ kind: 'rest', url: `${s.url}r/`, username: 'bob', password: 'wrong-secret' });
      const err = await wrong.stat('config', 'config').catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as Error).message).toMatch(/401/);
      expect((err as Error).message).not.toContain('secret');
      await wrong.close();
      const fromEnv = new RestBackend({ kind: 'rest', url: `${s.url}r/` }, { env: { REST_SERVER_USERNAME: 'bob', REST_SERVER_PASSWORD: 'right-secret' } });
      expect((await fromEnv.stat('config', 'config').catch((e: unknown) => e)) instanceof NotFoundError).toBe(true);
      await fromEnv.close();
    } finally {
      await s.cleanup();
      await removeDir(dir);
    }
  });

  it('an untrusted certificate is a PermanentError; --insecure-tls accepts it', async () => {
    const dir = await makeTempDir('rest-tls2');
    const { cert, key } = await makeCert(dir);
    const s = await ourServer({ tls: true, tlsCert: cert, tlsKey: key });
    try {
      const untrusted = new RestBackend({ kind: 'rest', url: `${s.url}r/` });
      await expect(untrusted.create()).rejects.toThrow(PermanentError);
      await untrusted.close();
      const insecure = new RestBackend({ kind: 'rest', url: `${s.url}r/` }, { insecureTls: true });
      await insecure.create();
      await insecure.close();
    } finally {
      await s.cleanup();
      await removeDir(dir);
    }
  });
});

describe('rest client against misbehaving servers', () => {
  let server: http.Server;
  let url: string;
  let behave: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  beforeAll(async () => {
    server = http.createServer((req, res) => behave(req, res));
    url = await listen(server);
  });
  afterAll(() => closeServer(server));
  const id = sha(Buffer.from('x'));
  const client = (extended?: Record<string, string>) => new RestBackend({ kind: 'rest', url: `${url}repo/` }, { extended });

  it('5xx and network errors are retryable ResticErrors, 403/400 are permanent', async () => {
    const c = client();
    behave = (_req, res) => res.writeHead(503).end();
    const e503 = await c.load('data', id).catch((e: unknown) => e);
    expect(e503).toBeInstanceOf(ResticError);
    expect(e503).not.toBeInstanceOf(PermanentError);
    behave = (_req, res) => res.writeHead(403).end();
    await expect(c.save('data', id, Buffer.from('x'))).rejects.toThrow(PermanentError);
    await expect(c.remove('data', id)).rejects.toThrow(/403.*append-only/);
    behave = (_req, res) => res.writeHead(400).end();
    await expect(c.save('data', id, Buffer.from('y'))).rejects.toThrow(PermanentError);
    behave = (_req, res) => res.writeHead(404).end();
    await c.remove('data', id);
    await c.close();
    const dead = new RestBackend({ kind: 'rest', url: 'http://127.0.0.1:1/repo/' });
    const eConn = await dead.stat('config', 'config').catch((e: unknown) => e);
    expect(eConn).toBeInstanceOf(ResticError);
    expect(eConn).not.toBeInstanceOf(PermanentError);
    expect((eConn as Error).message).toMatch(/ECONNREFUSED/);
    await dead.close();
  });

  it('a 206 shorter than asked is a range past the end; a body cut short is retryable', async () => {
    const c = client();
    behave = (_req, res) => res.writeHead(206, { 'content-range': 'bytes 0-9/10', 'content-length': '10' }).end(Buffer.alloc(10));
    await expect(c.load('data', id, 0, 20)).rejects.toThrow(PermanentError);
    behave = (_req, res) => res.writeHead(206, { 'content-range': 'bytes 3-12/100', 'content-length': '10' }).end(Buffer.alloc(10));
    await expect(c.load('data', id, 0, 10)).rejects.toThrow(/answered range/);
    behave = (_req, res) => res.writeHead(206, { 'content-range': 'bytes 0-19/100', 'content-length': '20' }).end(Buffer.alloc(20));
    await expect(c.load('data', id, 0, 10)).rejects.toThrow(/answered range/);
    behave = (_req, res) => {
      res.writeHead(206, { 'content-range': 'bytes 0-999/1000', 'content-length': '1000' });
      res.write(Buffer.alloc(100), () => res.destroy());
    };
    const cut = await c.load('data', id, 0, 1000).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(ResticError);
    expect(cut).not.toBeInstanceOf(PermanentError);
    expect(cut).not.toBeInstanceOf(NotFoundError);
    await c.close();
  });

  it('reuses connections, HEAD requests included', async () => {
    let connections = 0;
    const count = () => connections++;
    server.on('connection', count);
    behave = (_req, res) => res.writeHead(200, { 'content-length': '7' }).end();
    const c = client();
    for (let i = 0; i < 20; i++) expect((await c.stat('data', id)).size).toBe(7);
    await c.close();
    server.off('connection', count);
    expect(connections).toBeLessThanOrEqual(2);
  });

  it('rest.connections bounds the requests in flight', async () => {
    let active = 0;
    let peak = 0;
    behave = (_req, res) => {
      active++;
      peak = Math.max(peak, active);
      setTimeout(() => {
        active--;
        res.writeHead(200, { 'content-length': '5' }).end();
      }, 50);
    };
    const c = client({ 'rest.connections': '3' });
    const infos = await Promise.all(Array.from({ length: 12 }, () => c.stat('data', sha(randomBytes(4)))));
    expect(infos.every((i) => i.size === 5)).toBe(true);
    expect(peak).toBe(3);
    await c.close();
    expect(() => client({ 'rest.connections': '0' })).toThrow(/rest.connections/);
  });
});

// The `restic-ts` command as npm links it (bin/restic-ts.js through a symlink): its shell line starts
// Node without NODE_EXTRA_CA_CERTS (Node 20 parses that bundle at start-up), and the REST, S3 and
// Kubernetes clients, and child processes, must still trust it.
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestServer, type RestServer } from '../src/backends/rest/server.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { CLI, expectOk, formatRun, run, type RunResult } from './helpers/run.js';
import { startS3Server, type S3TestServer } from './helpers/s3server.js';

let dir: string;
let trusted: { cert: string; key: string };
let unrelated: { cert: string; key: string };
let rest: RestServer;
let restUrl: string;
let passwordFile: string;
/** A symlink to bin/restic-ts.js, as in node_modules/.bin. */
let command: string;
const BIN = fileURLToPath(new URL('../bin/restic-ts.js', import.meta.url));

async function makeCert(name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'];
  expectOk('openssl req', await run('openssl', [...args, '-keyout', key, '-out', cert], { timeoutMs: 60_000 }));
  return { cert, key };
}

/** The `restic-ts` command; `extraCa` becomes NODE_EXTRA_CA_CERTS. */
function launched(args: string[], extraCa?: string, env: Record<string, string> = {}): Promise<RunResult> {
  return run(command, args, { env: { ...env, ...(extraCa ? { NODE_EXTRA_CA_CERTS: extraCa } : {}) }, timeoutMs: 120_000 });
}

beforeAll(async () => {
  dir = await makeTempDir('launcher');
  trusted = await makeCert('trusted');
  unrelated = await makeCert('unrelated');
  command = path.join(dir, 'restic-ts');
  await symlink(BIN, command);
  passwordFile = path.join(dir, 'pw');
  await writeFile(passwordFile, 'launcher-pw\n');
  rest = createRestServer({ path: path.join(dir, 'rest'), listen: '127.0.0.1:0', noAuth: true, tlsCert: trusted.cert, tlsKey: trusted.key, tls: true, onError: () => undefined });
  restUrl = `rest:${(await rest.listen()).url}`;
});

afterAll(async () => {
  await rest?.close();
  if (dir) await removeDir(dir);
});

describe('the restic-ts command', () => {
  it('is what npm links as restic-ts, and passes arguments through unchanged', async () => {
    const pkg = JSON.parse(await readFile(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { bin: Record<string, string> };
    expect(path.resolve(fileURLToPath(new URL('..', import.meta.url)), pkg.bin['restic-ts']!)).toBe(BIN);
    const repo = path.join(dir, 'args repo');
    const init = await launched(['-r', repo, '--password-file', passwordFile, 'init']);
    expect(init.code, formatRun('init', init)).toBe(0);
    const data = path.join(dir, 'x y');
    await mkdir(data);
    await writeFile(path.join(data, 'f'), 'content');
    const backup = await launched(['-r', repo, '--password-file', passwordFile, 'backup', '--tag', 'a b', data]);
    expect(backup.code, formatRun('backup', backup)).toBe(0);
    const r = await launched(['-r', repo, '--password-file', passwordFile, 'snapshots', '--json']);
    expect(r.code, formatRun('snapshots', r)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject([{ tags: ['a b'], paths: [data] }]);
  });

  it('a REST server whose CA is only in NODE_EXTRA_CA_CERTS is trusted; without it, refused', async () => {
    const init = await launched(['-r', `${restUrl}a/`, '--password-file', passwordFile, 'init'], trusted.cert);
    expect(init.code, formatRun('init', init)).toBe(0);
    const refused = await launched(['-r', `${restUrl}a/`, '--password-file', passwordFile, 'snapshots']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/use --cacert/);
  });

  it('--cacert adds to the NODE_EXTRA_CA_CERTS bundle rather than replacing it, launched or not', async () => {
    const args = ['-r', `${restUrl}b/`, '--password-file', passwordFile, '--cacert', unrelated.cert];
    const init = await launched([...args, 'init'], trusted.cert);
    expect(init.code, formatRun('init', init)).toBe(0);
    // `node main.js`: Node itself loaded the bundle.
    const viaNode = await run(process.execPath, [CLI, ...args, 'snapshots'], { env: { NODE_EXTRA_CA_CERTS: trusted.cert } });
    expect(viaNode.code, formatRun('snapshots', viaNode)).toBe(0);
  });

  it('child processes (a password command) see NODE_EXTRA_CA_CERTS again', async () => {
    const check = `sh -c 'test "$NODE_EXTRA_CA_CERTS" = "${trusted.cert}" && test -z "$RESTIC_TS_DEFERRED_CA_CERTS" && echo launcher-pw'`;
    const r = await launched(['-r', `${restUrl}a/`, '--password-command', check, 'snapshots'], trusted.cert);
    expect(r.code, formatRun('snapshots', r)).toBe(0);
  });

  it('an unreadable bundle is a warning, as Node makes it, and plain-HTTP or local repositories never read it', async () => {
    const repo = path.join(dir, 'local');
    const r = await launched(['-r', repo, '--password-file', passwordFile, 'init'], path.join(dir, 'missing.pem'));
    expect(r.code, formatRun('init', r)).toBe(0);
    expect(r.stderr).not.toMatch(/missing\.pem/);
    const tls = await launched(['-r', `${restUrl}a/`, '--password-file', passwordFile, 'snapshots'], path.join(dir, 'missing.pem'));
    expect(tls.code).toBe(1);
    expect(tls.stderr).toMatch(/Ignoring extra certs from `.*missing\.pem`, load failed/);
  });
});

describe('the restic-ts command with S3 and Kubernetes', () => {
  let s3: S3TestServer;
  let kube: https.Server;
  let kubeconfig: string;

  beforeAll(async () => {
    s3 = await startS3Server({ tls: true });
    // A cluster without CA data, trusted through the bundle; every API call answers 404.
    kube = https.createServer({ cert: await readFile(trusted.cert, 'utf8'), key: await readFile(trusted.key, 'utf8') }, (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
    });
    await new Promise<void>((resolve) => kube.listen(0, '127.0.0.1', resolve));
    kubeconfig = path.join(dir, 'kubeconfig');
    const server = `https://127.0.0.1:${(kube.address() as AddressInfo).port}`;
    await writeFile(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${server}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n`,
    );
  });

  afterAll(async () => {
    await s3?.close();
    kube?.closeAllConnections();
    await new Promise<void>((resolve) => (kube ? kube.close(() => resolve()) : resolve()));
  });

  it('an S3 server whose CA is only in NODE_EXTRA_CA_CERTS is trusted', async () => {
    const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
    const r = await launched(['-r', `s3:https://${s3.endpoint}/launcher`, '--password-file', passwordFile, 'init'], s3.caFile!, env);
    expect(r.code, formatRun('init', r)).toBe(0);
  });

  it('a Kubernetes API server whose CA is only in NODE_EXTRA_CA_CERTS is trusted', async () => {
    const args = ['che', 'server:backup', '--kubeconfig', kubeconfig, '-n', 'absent'];
    const r = await launched(args, trusted.cert);
    expect(r.stderr).toMatch(/namespace 'absent' not found/);
    const refused = await launched(args);
    expect(refused.code).toBe(1);
    expect(refused.stderr).not.toMatch(/not found/);
  });
});

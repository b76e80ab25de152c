// `restic-ts che …` end to end: the built CLI (dist/) as child processes against kubesim through a kubeconfig
// file — `che operator` as the controller process, `che server:backup` / `server:restore` as chectl — with
// the operator double and a real PostgreSQL behind the sample Che. Checks flags and their environment
// variables, precedence, the configuration left for the next run, exit codes and the printed lines.
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestServer, type RestServer } from '../src/index.js';
import { startApiServer, type ApiServer } from '../src/kubesim/index.js';
import { startPostgres, type Postgres } from '../src/che/devenv/postgres.js';
import { startOperatorDouble, type OperatorDouble } from '../src/che/devenv/operator-double.js';
import { deleteSampleChe, diffCheStates, installCheCrds, installSampleChe, snapshotChe } from '../src/che/devenv/sample-che.js';
import { BACKUP_SERVER_CONFIG_NAME, CHECTL_SECRETS, parseRepositoryUrl } from '../src/che/devenv/chectl-client.js';
import { kubeClients, kubeConfigFromYaml, orNotFound } from '../src/che/devenv/kube.js';
import { BACKUP_STAGES, RESTORE_STAGES } from '../src/che/types.js';
import { parseTimeout } from '../src/cli/commands/che.js';
import { UsageError } from '../src/errors.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { CLI, expectOk, formatRun, ours, restic, type RunResult } from './helpers/run.js';

const NS = 'che-cli';
const REST_USER = 'cli-user';
const REST_PASSWORD = 'cli secret';
const REPO_PASSWORD = 'cli repo password';

let api: ApiServer;
let kc: KubeConfig;
let pg: Postgres;
let rest: RestServer;
let restPort: string;
let work: string;
let kubeconfigFile: string;
let operator: ChildProcess | undefined;
let operatorOut = '';
let double: OperatorDouble | undefined;

const repoUrl = (path = 'cli'): string => `rest:http://127.0.0.1:${restPort}/${path}`;

/** The CLI with only the given environment (plus PATH/HOME/TZ), bounded. */
function che(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<RunResult> {
  return ours(['che', ...args], { env, timeoutMs });
}

function snapshotLine(r: RunResult): string {
  const m = /^Backup snapshot ID: ([0-9a-f]{64})$/m.exec(r.stdout);
  if (!m) throw new Error(formatRun('no snapshot line', r));
  return m[1]!;
}

async function secretData(name: string): Promise<Record<string, string> | undefined> {
  const s = await orNotFound(kubeClients(kc).core.readNamespacedSecret({ name, namespace: NS }));
  if (!s) return undefined;
  return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

async function resticSnapshotCount(path: string): Promise<number> {
  const repo = `rest:http://${REST_USER}:${encodeURIComponent(REST_PASSWORD)}@127.0.0.1:${restPort}/${path}/`;
  const r = expectOk('restic snapshots', await restic(['-r', repo, 'snapshots', '--json'], { env: { RESTIC_PASSWORD: REPO_PASSWORD } }));
  return (JSON.parse(r.stdout) as unknown[]).length;
}

beforeAll(async () => {
  work = await makeTempDir('che-cli');
  api = await startApiServer();
  kc = kubeConfigFromYaml(api.kubeconfig);
  kubeconfigFile = join(work, 'kubeconfig');
  await api.writeKubeconfig(kubeconfigFile);
  pg = await startPostgres();
  await writeFile(join(work, 'htpasswd'), `${REST_USER}:{SHA}${createHash('sha1').update(REST_PASSWORD).digest('base64')}\n`);
  rest = createRestServer({ path: join(work, 'rest'), listen: '127.0.0.1:0', htpasswdFile: join(work, 'htpasswd'), onError: () => undefined });
  restPort = new URL((await rest.listen()).url).port;
  await installCheCrds(kc);
  double = startOperatorDouble(kc, NS, { pg });
  await installSampleChe(kc, pg, { namespace: NS });

  // The controller as its own process: `restic-ts che operator`.
  operator = spawn(process.execPath, [CLI, 'che', 'operator', '--kubeconfig', kubeconfigFile, '-n', NS], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TZ: 'UTC' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  operator.stdout!.on('data', (d: Buffer) => (operatorOut += d.toString('utf8')));
  operator.stderr!.on('data', (d: Buffer) => (operatorOut += d.toString('utf8')));
  const deadline = Date.now() + 60_000;
  while (!operatorOut.includes(`watching Che backup and restore resources in namespace ${NS}`)) {
    if (operator.exitCode !== null || Date.now() > deadline) throw new Error(`che operator did not start:\n${operatorOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  if (operator && operator.exitCode === null) {
    operator.kill('SIGKILL');
  }
  if (kc && pg) await deleteSampleChe(kc, pg, NS, 30_000).catch(() => undefined);
  await double?.stop();
  await rest?.close();
  await pg?.stop();
  await api?.close();
  await removeDir(work);
});

/**
 * The status lines a non-TTY run prints, as chectl prints them: maybe "waiting for the controller",
 * then InProgress stages in the controller's order (a stage shorter than a status poll may be
 * skipped), then Succeeded.
 */
function expectProgress(stderr: string, what: string, stages: readonly string[]): void {
  const lines = stderr.split('\n').filter((l) => l.startsWith(`${what}: `));
  expect(lines.at(-1), stderr).toBe(`${what}: Succeeded`);
  const shown = lines.slice(0, -1).filter((l) => l !== `${what}: waiting for the controller` && l !== `${what}: InProgress`);
  const order = shown.map((l) => stages.indexOf(l.slice(`${what}: InProgress - `.length)));
  expect(order.every((k, j) => k >= 0 && (j === 0 || k >= order[j - 1]!)), stderr).toBe(true);
}

describe('che server:backup', () => {
  let first: string;

  it('-r/-p/--username/--password: writes the configuration and secrets, prints the snapshot line, exit 0', async () => {
    const r = await che(['server:backup', '--kubeconfig', kubeconfigFile, '-n', NS, '-r', repoUrl(), '-p', REPO_PASSWORD, '--username', REST_USER, '--password', REST_PASSWORD]);
    expect(r.code, formatRun('server:backup', r)).toBe(0);
    first = snapshotLine(r);
    expectProgress(r.stderr, 'backup', Object.values(BACKUP_STAGES));
    expect(await secretData(CHECTL_SECRETS.repoPassword)).toEqual({ 'repo-password': REPO_PASSWORD });
    expect(await secretData(CHECTL_SECRETS.restCredentials)).toEqual({ username: REST_USER, password: REST_PASSWORD });
    const config = (await kubeClients(kc).custom.getNamespacedCustomObject({
      group: 'org.eclipse.che',
      version: 'v1',
      namespace: NS,
      plural: 'chebackupserverconfigurations',
      name: BACKUP_SERVER_CONFIG_NAME,
    })) as { spec: unknown };
    expect(config.spec).toEqual({
      rest: {
        protocol: 'http',
        hostname: '127.0.0.1',
        port: Number(restPort),
        repositoryPath: 'cli',
        repositoryPasswordSecretRef: CHECTL_SECRETS.repoPassword,
        credentialsSecretRef: CHECTL_SECRETS.restCredentials,
      },
    });
    expect(await resticSnapshotCount('cli')).toBe(1);
  });

  it('bare server:backup reuses the stored configuration; env vars give namespace and kubeconfig', async () => {
    const r = await che(['server:backup'], { CHE_NAMESPACE: NS, KUBECONFIG: kubeconfigFile });
    expect(r.code, formatRun('server:backup', r)).toBe(0);
    expect(snapshotLine(r)).not.toBe(first);
    expect(await resticSnapshotCount('cli')).toBe(2);
  });

  it('environment variables for the server, flags over environment', async () => {
    const env = {
      KUBECONFIG: kubeconfigFile,
      CHE_NAMESPACE: 'no-such-namespace',
      BACKUP_REPOSITORY_URL: repoUrl('cli-env'),
      BACKUP_REPOSITORY_PASSWORD: 'overridden by -p',
      REST_SERVER_USERNAME: REST_USER,
      REST_SERVER_PASSWORD: REST_PASSWORD,
    };
    const r = await che(['server:backup', '--chenamespace', NS, '--repository-password', REPO_PASSWORD], env);
    expect(r.code, formatRun('server:backup', r)).toBe(0);
    snapshotLine(r);
    expect(await secretData(CHECTL_SECRETS.repoPassword)).toEqual({ 'repo-password': REPO_PASSWORD });
    expect(await resticSnapshotCount('cli-env')).toBe(1);
  });

  it('state Failed: exit 1 with the controller message (wrong password for an existing repository)', async () => {
    const r = await che(['server:backup', '--kubeconfig', kubeconfigFile, '-n', NS, '-r', repoUrl(), '-p', 'wrong', '--username', REST_USER, '--password', REST_PASSWORD]);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(/Backup snapshot ID/);
    expect(r.stderr).toMatch(/^Fatal: backup failed: .*wrong password/m);
  });

  it('bounded by --timeout when no controller handles the namespace', async () => {
    await kubeClients(kc).core.createNamespace({ body: { metadata: { name: 'che-unwatched' } } });
    const t0 = Date.now();
    const r = await che(['server:backup', '--kubeconfig', kubeconfigFile, '-n', 'che-unwatched', '--timeout', '3s'], {}, 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/did not finish within 3 s \(no controller has picked it up/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('usage errors exit 1 with one line', async () => {
    const cases: [string[], RegExp][] = [
      [['server:backup', '--kubeconfig', kubeconfigFile, '-n', NS, '-r', repoUrl()], /--repository-password .* is required/],
      [['server:backup', '--kubeconfig', kubeconfigFile, '-n', NS, '-r', 'ftp://x', '-p', 'x'], /unrecognized backup server protocol/],
      [['server:backup', '--kubeconfig', kubeconfigFile, '-n', NS, '--timeout', 'soon'], /invalid --timeout "soon"/],
      [['server:backup', '--kubeconfig', kubeconfigFile, '-n', 'absent'], /namespace 'absent' not found/],
      [['server:backup', '--kubeconfig', join(work, 'missing')], /cannot load the Kubernetes configuration/],
      [['bogus'], /che needs one of server:backup, server:restore, operator/],
      [['server:backup', '-s', 'latest', '--kubeconfig', kubeconfigFile], /--snapshot-id is a server:restore flag/],
    ];
    for (const [args, message] of cases) {
      const r = await che(args);
      expect(r.code, formatRun(args.join(' '), r)).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('che server:restore', () => {
  it('--batch -s latest brings back a deleted CA bundle and database rows', async () => {
    const before = await snapshotChe(kc, pg, NS);
    await kubeClients(kc).core.deleteNamespacedConfigMap({ name: 'custom-certs', namespace: NS });
    await pg.psql('DELETE FROM che_event WHERE id % 2 = 0', 'dbche');
    expect(diffCheStates(before, await snapshotChe(kc, pg, NS)).length).toBeGreaterThan(0);

    // The failure case above left a wrong password in the stored configuration: give the server again.
    const r = await che(['server:restore', '--kubeconfig', kubeconfigFile, '-n', NS, '--batch', '-s', 'latest', '-r', repoUrl(), '-p', REPO_PASSWORD, '--username', REST_USER, '--password', REST_PASSWORD]);
    expect(r.code, formatRun('server:restore', r)).toBe(0);
    expect(r.stdout).toMatch(/^Restore finished: Restore successfully finished at /m);
    expectProgress(r.stderr, 'restore', Object.values(RESTORE_STAGES));
    expect(diffCheStates(before, await snapshotChe(kc, pg, NS))).toEqual([]);
  });

  it('unknown snapshot: exit 1, nothing changed', async () => {
    const before = await snapshotChe(kc, pg, NS);
    const r = await che(['server:restore', '--kubeconfig', kubeconfigFile, '-n', NS, '--batch', '-s', '0123abcd']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Fatal: restore failed: .*0123abcd/m);
    expect(diffCheStates(before, await snapshotChe(kc, pg, NS))).toEqual([]);
  });
});

describe('che operator', () => {
  it('stops on SIGTERM with exit 0', async () => {
    const proc = operator!;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
    expect(code, operatorOut).toBe(0);
    expect(operatorOut).toMatch(/received SIGTERM, controller stopped/);
  });
});

describe('repository URLs and durations (chectl forms)', () => {
  it('parses rest, s3 and sftp URLs into configurations', () => {
    expect(parseRepositoryUrl('rest:https://u:p%40ss@backup.example.com:8000/che/repo')).toEqual({
      spec: { rest: { protocol: 'https', hostname: 'backup.example.com', port: 8000, repositoryPath: 'che/repo', repositoryPasswordSecretRef: CHECTL_SECRETS.repoPassword } },
      credentials: { username: 'u', password: 'p@ss' },
    });
    expect(parseRepositoryUrl('rest:http://host').spec.rest).toEqual({ protocol: 'http', hostname: 'host', repositoryPasswordSecretRef: CHECTL_SECRETS.repoPassword });
    expect(parseRepositoryUrl('s3:s3.amazonaws.com/bucket/che').spec.awss3).toEqual({
      hostname: 's3.amazonaws.com',
      repositoryPath: 'bucket/che',
      repositoryPasswordSecretRef: CHECTL_SECRETS.repoPassword,
      awsAccessKeySecretRef: CHECTL_SECRETS.aws,
    });
    expect(parseRepositoryUrl('s3:http://minio:9000/b').spec.awss3).toMatchObject({ protocol: 'http', hostname: 'minio', port: 9000, repositoryPath: 'b' });
    expect(parseRepositoryUrl('sftp:user@host.example:/srv/che').spec.sftp).toEqual({
      username: 'user',
      hostname: 'host.example',
      repositoryPath: '/srv/che',
      repositoryPasswordSecretRef: CHECTL_SECRETS.repoPassword,
      sshKeySecretRef: CHECTL_SECRETS.sshKey,
    });
    expect(parseRepositoryUrl('sftp://user@host:2222//srv/che').spec.sftp).toMatchObject({ port: 2222, repositoryPath: '/srv/che' });
    for (const bad of ['rest:http://user@host/x', 's3:', 'sftp:host:/x', 'local:/tmp/x', 'rest:http://host:99999/x']) expect(() => parseRepositoryUrl(bad)).toThrow(UsageError);
  });

  it('parses --timeout', () => {
    expect(parseTimeout(undefined)).toBe(30 * 60_000);
    expect(parseTimeout('90')).toBe(90_000);
    expect(parseTimeout('90s')).toBe(90_000);
    expect(parseTimeout('30m')).toBe(1_800_000);
    expect(parseTimeout('1.5h')).toBe(5_400_000);
    for (const bad of ['', '0', '-1s', '5d', 'soon']) expect(() => parseTimeout(bad)).toThrow(UsageError);
  });
});

// Che backup and restore end to end, against real parts: kubesim (in-process API server whose pod exec runs
// on this host), a real PostgreSQL, the operator double, the controller, and real backup servers (our REST
// server with auth, `rclone serve restic`, S3 via s3rver, SFTP via OpenSSH). Each round trip installs the
// sample Che, backs it up through the chectl client, deletes the namespace and the databases, restores, and
// compares the CheCluster spec, CA bundles, secrets and every database row.
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRestServer, type RestServer } from '../src/index.js';
import { startApiServer, type ApiServer } from '../src/kubesim/index.js';
import { startCheController, type CheController } from '../src/che/controller.js';
import { startPostgres, type Postgres } from '../src/che/devenv/postgres.js';
import { startOperatorDouble, type OperatorDouble } from '../src/che/devenv/operator-double.js';
import { deleteSampleChe, diffCheStates, installCheCrds, installSampleChe, snapshotChe, countCheState, dropDatabases, CHE_DB, CHE_DB_USER, KEYCLOAK_DB, KEYCLOAK_DB_USER } from '../src/che/devenv/sample-che.js';
import { cheServerBackup, cheServerRestore, CheOperationFailedError, type BackupServerInput } from '../src/che/devenv/chectl-client.js';
import { apiMessage, isApiStatus, kubeClients, kubeConfigFromYaml } from '../src/che/devenv/kube.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { expectOk, restic } from './helpers/run.js';
import { startS3Server, type S3TestServer } from './helpers/s3server.js';
import { startSshd, type Sshd } from './helpers/sshd.js';

const REST_USER = 'che-backup';
const REST_PASSWORD = 'rest p@ss:word/1';
const REPO_PASSWORD = 'repo password ✓';

/** Controller step limits small enough that failure cases end quickly, large enough for this machine. */
const TIMEOUTS = { repository: 20_000, pod: 30_000, finalizers: 30_000, cheAvailable: 60_000, database: 60_000, transfer: 120_000 };

let api: ApiServer;
let kc: KubeConfig;
let pg: Postgres;
let work: string;
let rest: RestServer;
let restUrl: URL;

/** Controller, operator double and cleanup for one namespace. */
interface CheEnv {
  ns: string;
  controller: CheController;
  double: OperatorDouble;
  log: string[];
}
let env: CheEnv | undefined;

function startEnv(ns: string): CheEnv {
  const log: string[] = [];
  const controller = startCheController({ kubeConfig: kc, namespace: ns, timeouts: TIMEOUTS, log: (l) => log.push(l) });
  const double = startOperatorDouble(kc, ns, { pg, onError: (m) => log.push(`operator double: ${m}`) });
  env = { ns, controller, double, log };
  return env;
}

async function stopEnv(): Promise<void> {
  if (!env) return;
  const { controller, double, ns } = env;
  env = undefined;
  try {
    // While the operator double runs: it removes the CheCluster's finalizer, so the namespace can go.
    await deleteSampleChe(kc, pg, ns, 30_000);
  } finally {
    await controller.stop();
    await double.stop();
    await dropDatabases(pg, [[CHE_DB, CHE_DB_USER], [KEYCLOAK_DB, KEYCLOAK_DB_USER]]);
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Backs up the sample Che, loses it (namespace and databases), restores it, and compares. */
async function roundTrip(ns: string, server: BackupServerInput): Promise<{ snapshotId: string }> {
  const e = startEnv(ns);
  await e.controller.ready;
  await installSampleChe(kc, pg, { namespace: ns });
  const before = await waitAvailableThenSnapshot(ns);
  const stages: string[] = [];
  // chectl's 500 ms poll can miss a stage now that a backup takes well under a second: poll often enough
  // to see every stage the controller goes through.
  const backup = await cheServerBackup({
    kubeConfig: kc,
    namespace: ns,
    ...server,
    timeoutMs: 180_000,
    pollIntervalMs: 10,
    onProgress: (s) => s.stage && stages.at(-1) !== s.stage && stages.push(s.stage),
  });
  expect(backup.status.state).toBe('Succeeded');
  expect(backup.status.snapshotId).toMatch(/^[0-9a-f]{64}$/);
  expect(backup.status.cheVersion).toBe('7.42.0');
  expect(stages).toContain('Collecting Che installation data');

  await deleteSampleChe(kc, pg, ns);
  const gone = await snapshotChe(kc, pg, ns);
  expect(countCheState(gone)).toEqual({ configMaps: 0, secrets: 0, databases: 0, tables: 0, rows: 0 });

  const restored = await cheServerRestore({ kubeConfig: kc, namespace: ns, ...server, snapshotId: backup.status.snapshotId!.slice(0, 8), timeoutMs: 180_000 });
  expect(restored.status.state).toBe('Succeeded');
  // The restore re-created the CheCluster and waited for the operator to report it Available again.
  expect(e.double.started).toEqual(['eclipse-che', 'eclipse-che']);
  const after = await snapshotChe(kc, pg, ns);
  expect(diffCheStates(before, after), e.log.join('\n')).toEqual([]);
  // Non-vacuous: the comparison covered the whole installation.
  expect(countCheState(after)).toMatchObject({ configMaps: 2, secrets: 3, databases: 2 });
  expect(countCheState(after).rows).toBeGreaterThan(1500);
  return { snapshotId: backup.status.snapshotId! };
}

async function waitAvailableThenSnapshot(ns: string): Promise<Awaited<ReturnType<typeof snapshotChe>>> {
  const { custom } = kubeClients(kc);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const cr = (await custom.getNamespacedCustomObject({ group: 'org.eclipse.che', version: 'v1', namespace: ns, plural: 'checlusters', name: 'eclipse-che' })) as {
      status?: { cheClusterRunning?: string };
    };
    if (cr.status?.cheClusterRunning === 'Available') return snapshotChe(kc, pg, ns);
    if (Date.now() > deadline) throw new Error('sample Che never became Available');
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  work = await makeTempDir('che-e2e');
  api = await startApiServer();
  kc = kubeConfigFromYaml(api.kubeconfig);
  pg = await startPostgres();
  // The controller needs its CRDs served before it starts watching.
  await installCheCrds(kc);
  const sha = createHash('sha1').update(REST_PASSWORD).digest('base64');
  await writeFile(join(work, 'htpasswd'), `${REST_USER}:{SHA}${sha}\n`);
  rest = createRestServer({ path: join(work, 'rest'), listen: '127.0.0.1:0', htpasswdFile: join(work, 'htpasswd'), onError: () => undefined });
  restUrl = new URL((await rest.listen()).url);
});

afterAll(async () => {
  await stopEnv();
  await rest?.close();
  await pg?.stop();
  await api?.close();
  await removeDir(work);
});

describe('che backup → delete namespace → restore', () => {
  afterEach(stopEnv);

  it('over our REST server with authentication; restic 0.14 reads the snapshot', async () => {
    const server = { repositoryUrl: `rest:http://127.0.0.1:${restUrl.port}/che`, repositoryPassword: REPO_PASSWORD, username: REST_USER, password: REST_PASSWORD };
    const { snapshotId } = await roundTrip('che-rest', server);
    const repo = `rest:http://${REST_USER}:${encodeURIComponent(REST_PASSWORD)}@127.0.0.1:${restUrl.port}/che/`;
    const pw = { RESTIC_PASSWORD: REPO_PASSWORD };
    const ls = expectOk('restic ls', await restic(['-r', repo, 'ls', snapshotId], { env: pw })).stdout;
    for (const f of ['/che-cr.yaml', '/backup-info.yaml', '/db/dbche.sql', '/db/keycloak.sql', '/configmaps/custom-certs.yaml', '/secrets/che-postgres-secret.yaml'])
      expect(ls.split('\n')).toContain(f);
    const dump = expectOk('restic dump', await restic(['-r', repo, 'dump', snapshotId, '/db/dbche.sql'], { env: pw })).stdout;
    expect(dump).toContain('CREATE TABLE public.workspace');
  });

  it('over `rclone serve restic`', async () => {
    const port = await freePort();
    const rclone: ChildProcess = spawn('rclone', ['serve', 'restic', '--addr', `127.0.0.1:${port}`, join(work, 'rclone')], { stdio: 'ignore' });
    try {
      const deadline = Date.now() + 20_000;
      while (!(await listening(port))) {
        if (Date.now() > deadline || rclone.exitCode !== null) throw new Error('rclone serve restic did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      await roundTrip('che-rclone', { repositoryUrl: `rest:http://127.0.0.1:${port}/che`, repositoryPassword: REPO_PASSWORD });
    } finally {
      rclone.kill('SIGTERM');
    }
  });

  describe('over S3', () => {
    let s3: S3TestServer;
    beforeAll(async () => {
      s3 = await startS3Server({ tls: false });
    });
    afterAll(async () => s3?.close());
    it('round trip', async () => {
      await roundTrip('che-s3', {
        repositoryUrl: `s3:http://${s3.endpoint}/che-backups/eclipse-che`,
        repositoryPassword: REPO_PASSWORD,
        awsAccessKeyId: s3.accessKeyId,
        awsSecretAccessKey: s3.secretAccessKey,
      });
    });
  });

  describe('over SFTP', () => {
    let sshd: Sshd;
    beforeAll(async () => {
      sshd = await startSshd();
    });
    afterAll(async () => sshd?.close());
    it('round trip, host key pinned', async () => {
      await roundTrip('che-sftp', {
        repositoryUrl: `sftp://${sshd.user}@127.0.0.1:${sshd.port}/che-repo`,
        repositoryPassword: REPO_PASSWORD,
        sshKey: await readFile(sshd.keyFile, 'utf8'),
        sshKnownHosts: await readFile(sshd.knownHostsFile, 'utf8'),
      });
    });
  });
});

describe('che failures end in state Failed with a clear message, before anything is deleted', () => {
  const ns = 'che-fail';
  const restServer = (): BackupServerInput => ({
    repositoryUrl: `rest:http://127.0.0.1:${restUrl.port}/che-fail`,
    repositoryPassword: REPO_PASSWORD,
    username: REST_USER,
    password: REST_PASSWORD,
  });
  let before: Awaited<ReturnType<typeof snapshotChe>>;
  let cheUid: string;

  async function cheClusterUid(): Promise<string> {
    const cr = (await kubeClients(kc).custom.getNamespacedCustomObject({ group: 'org.eclipse.che', version: 'v1', namespace: ns, plural: 'checlusters', name: 'eclipse-che' })) as {
      metadata: { uid: string };
    };
    return cr.metadata.uid;
  }

  /** Runs `op`, expects CheOperationFailedError whose message matches, and that Che is untouched. */
  async function expectFailed(op: Promise<unknown>, message: RegExp): Promise<void> {
    const err = await op.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, env?.log.join('\n')).toBeInstanceOf(CheOperationFailedError);
    const failed = err as CheOperationFailedError;
    expect(failed.status.state).toBe('Failed');
    expect(failed.status.message).toMatch(message);
    expect(failed.status.message!.split('\n')).toHaveLength(1);
    expect(await cheClusterUid()).toBe(cheUid);
    expect(diffCheStates(before, await snapshotChe(kc, pg, ns))).toEqual([]);
  }

  beforeAll(async () => {
    const e = startEnv(ns);
    await e.controller.ready;
    await installSampleChe(kc, pg, { namespace: ns });
    before = await waitAvailableThenSnapshot(ns);
    cheUid = await cheClusterUid();
    // A repository with one snapshot for the restore cases.
    await cheServerBackup({ kubeConfig: kc, namespace: ns, ...restServer(), timeoutMs: 120_000 });
  });
  afterAll(stopEnv);

  it('wrong repository password (restore)', async () => {
    await expectFailed(cheServerRestore({ kubeConfig: kc, namespace: ns, ...restServer(), repositoryPassword: 'not the password', timeoutMs: 60_000 }), /wrong password|no key/i);
  });

  it('snapshot id not found (restore)', async () => {
    await expectFailed(cheServerRestore({ kubeConfig: kc, namespace: ns, ...restServer(), snapshotId: 'deadbeef', timeoutMs: 60_000 }), /deadbeef/);
  });

  it('unreachable server (backup and restore)', async () => {
    const port = await freePort();
    const server = { repositoryUrl: `rest:http://127.0.0.1:${port}/che`, repositoryPassword: REPO_PASSWORD };
    await expectFailed(cheServerBackup({ kubeConfig: kc, namespace: ns, ...server, timeoutMs: 90_000 }), new RegExp(`127\\.0\\.0\\.1:${port}|ECONNREFUSED|connect`, 'i'));
    await expectFailed(cheServerRestore({ kubeConfig: kc, namespace: ns, ...server, timeoutMs: 90_000 }), new RegExp(`127\\.0\\.0\\.1:${port}|ECONNREFUSED|connect`, 'i'));
  });

  it('missing secret (backup and restore)', async () => {
    const { custom } = kubeClients(kc);
    const group = { group: 'org.eclipse.che', version: 'v1', namespace: ns, plural: 'chebackupserverconfigurations' };
    await custom.createNamespacedCustomObject({
      ...group,
      body: {
        apiVersion: 'org.eclipse.che/v1',
        kind: 'CheBackupServerConfiguration',
        metadata: { name: 'no-secret' },
        spec: { rest: { protocol: 'http', hostname: '127.0.0.1', port: Number(restUrl.port), repositoryPath: 'che-fail', repositoryPasswordSecretRef: 'does-not-exist' } },
      },
    });
    await expectFailed(cheServerBackup({ kubeConfig: kc, namespace: ns, backupServerConfigName: 'no-secret', timeoutMs: 60_000 }), /secret 'does-not-exist'.*not found/);
    await expectFailed(cheServerRestore({ kubeConfig: kc, namespace: ns, backupServerConfigName: 'no-secret', timeoutMs: 60_000 }), /secret 'does-not-exist'.*not found/);
  });

  it('two server kinds in one configuration: refused by the CRD schema, or Failed by the controller', async () => {
    const { custom } = kubeClients(kc);
    const group = { group: 'org.eclipse.che', version: 'v1', namespace: ns, plural: 'chebackupserverconfigurations' };
    const spec = {
      rest: { protocol: 'http', hostname: '127.0.0.1', port: Number(restUrl.port), repositoryPath: 'che-fail', repositoryPasswordSecretRef: 'chectl-backup-repository-password' },
      sftp: { username: 'u', hostname: '127.0.0.1', repositoryPath: 'x', repositoryPasswordSecretRef: 'chectl-backup-repository-password', sshKeySecretRef: 'k' },
    };
    let created = true;
    try {
      await custom.createNamespacedCustomObject({ ...group, body: { apiVersion: 'org.eclipse.che/v1', kind: 'CheBackupServerConfiguration', metadata: { name: 'two-kinds' }, spec } });
    } catch (e) {
      expect(isApiStatus(e, 422)).toBe(true);
      expect(apiMessage(e)).toMatch(/spec in body must validate one and only one schema \(oneOf\)/);
      created = false;
    }
    if (created) {
      await expectFailed(cheServerBackup({ kubeConfig: kc, namespace: ns, backupServerConfigName: 'two-kinds', timeoutMs: 60_000 }), /spec\.rest and spec\.sftp/);
      await expectFailed(cheServerRestore({ kubeConfig: kc, namespace: ns, backupServerConfigName: 'two-kinds', timeoutMs: 60_000 }), /spec\.rest and spec\.sftp/);
    }
  });
});

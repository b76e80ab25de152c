// The Che backup/restore controller against kubesim (in-process API server), a real PostgreSQL, the sample Che
// and the operator double, with our REST server as the backup server and the real restic binary as a witness.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestServer, type RestServer } from '../src/backends/rest/server.js';
import { startCheController, type CheController } from '../src/che/controller.js';
import { kubeClients, kubeConfigFromYaml, mergePatch, orNotFound } from '../src/che/devenv/kube.js';
import { startOperatorDouble, type OperatorDouble } from '../src/che/devenv/operator-double.js';
import { startPostgres, type Postgres } from '../src/che/devenv/postgres.js';
import { deleteSampleChe, diffCheStates, installSampleChe, SAMPLE_DOMAIN, snapshotChe, type CheState } from '../src/che/devenv/sample-che.js';
import { INTERNAL_SERVER, type OperationStatus } from '../src/che/types.js';
import { startApiServer, type ApiServer } from '../src/kubesim/index.js';

const NS = 'eclipse-che';
const REPO_PASSWORD = 'che-repo-password-1';
const GROUP = { group: 'org.eclipse.che', version: 'v1' } as const;
/** Short step limits: a hang fails the test quickly instead of waiting for vitest's timeout. */
const TIMEOUTS = { api: 10_000, repository: 30_000, transfer: 60_000, database: 60_000, pod: 20_000, finalizers: 20_000, cheAvailable: 30_000, internalServer: 20_000 };

let api: ApiServer;
let kc: KubeConfig;
let pg: Postgres;
let rest: RestServer;
let restUrl: string;
let dataDir: string;
let operator: OperatorDouble;
let controller: CheController;
const logs: string[] = [];

/** The real restic, asynchronously: our REST server runs in this process. */
async function restic(args: string[], password = REPO_PASSWORD): Promise<string> {
  const { stdout } = await promisify(execFile)('restic', args, { env: { ...resticEnv(), RESTIC_PASSWORD: password }, timeout: 60_000 });
  return stdout;
}

function resticEnv(): NodeJS.ProcessEnv {
  return { ...process.env, RESTIC_PASSWORD: REPO_PASSWORD, RESTIC_CACHE_DIR: join(dataDir, 'restic-cache') };
}

async function createConfig(name: string, path: string, passwordSecret = 'repo-password', ns = NS): Promise<void> {
  const { core, custom } = kubeClients(kc);
  const url = new URL(restUrl);
  await core
    .createNamespacedSecret({ namespace: ns, body: { metadata: { name: passwordSecret }, stringData: { 'repo-password': REPO_PASSWORD } } })
    .catch(() => undefined);
  await custom.createNamespacedCustomObject({
    ...GROUP,
    namespace: ns,
    plural: 'chebackupserverconfigurations',
    body: {
      apiVersion: 'org.eclipse.che/v1',
      kind: 'CheBackupServerConfiguration',
      metadata: { name },
      spec: { rest: { protocol: 'http', hostname: url.hostname, port: Number(url.port), repositoryPath: path, repositoryPasswordSecretRef: passwordSecret } },
    },
  });
}

/** The resourceVersion each CR was created with, so finished() can watch every later update. */
const createdVersion = new Map<string, string>();

async function createCr(plural: 'checlusterbackups' | 'checlusterrestores', name: string, spec: Record<string, unknown>, ns = NS): Promise<void> {
  const kind = plural === 'checlusterbackups' ? 'CheClusterBackup' : 'CheClusterRestore';
  const created = (await kubeClients(kc).custom.createNamespacedCustomObject({ ...GROUP, namespace: ns, plural, body: { apiVersion: 'org.eclipse.che/v1', kind, metadata: { name }, spec } })) as {
    metadata: { resourceVersion: string };
  };
  createdVersion.set(`${ns}/${plural}/${name}`, created.metadata.resourceVersion);
}

async function statusOf(plural: string, name: string, ns = NS): Promise<OperationStatus | undefined> {
  const obj = (await orNotFound(kubeClients(kc).custom.getNamespacedCustomObject({ ...GROUP, namespace: ns, plural, name }))) as { status?: OperationStatus } | undefined;
  return obj?.status;
}

/**
 * Waits (bounded) until the CR is Succeeded or Failed, recording every stage it went through: a watch
 * from the CR's creation sees each status update in order, however short a stage was.
 */
async function finished(plural: string, name: string, ns = NS, timeoutMs = 90_000): Promise<{ status: OperationStatus; stages: string[] }> {
  const stages: string[] = [];
  let last: OperationStatus | undefined;
  let request: { abort(): void } | undefined;
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${plural}/${name} did not finish: ${JSON.stringify(last)}; log: ${logs.slice(-5).join(' | ')}`)), timeoutMs);
      const end = (result: Error | { status: OperationStatus; stages: string[] }): void => {
        clearTimeout(timer);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      void new Watch(kc)
        .watch(
          `/apis/${GROUP.group}/${GROUP.version}/namespaces/${ns}/${plural}`,
          { resourceVersion: createdVersion.get(`${ns}/${plural}/${name}`), fieldSelector: `metadata.name=${name}` },
          (_type: string, obj: { status?: OperationStatus }) => {
            last = obj.status;
            if (last?.stage && stages[stages.length - 1] !== last.stage) stages.push(last.stage);
            if (last?.state === 'Succeeded' || last?.state === 'Failed') end({ status: last, stages });
          },
          (err: unknown) => end(err instanceof Error ? err : new Error(`watch of ${plural}/${name} ended before it finished`)),
        )
        .then(
          (r: { abort(): void }) => (request = r),
          (err: unknown) => end(err instanceof Error ? err : new Error(String(err))),
        );
    });
  } finally {
    request?.abort();
  }
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'che-controller-'));
  pg = await startPostgres();
  api = await startApiServer();
  kc = kubeConfigFromYaml(api.kubeconfig);
  rest = createRestServer({ path: join(dataDir, 'rest'), listen: '127.0.0.1:0', noAuth: true, onError: () => undefined });
  restUrl = (await rest.listen()).url;
  await installSampleChe(kc, pg, { namespace: NS });
  operator = startOperatorDouble(kc, NS, { pg, startDelayMs: 100, resyncMs: 300 });
  controller = startCheController({ kubeConfig: kc, namespace: NS, timeouts: TIMEOUTS, log: (l) => logs.push(l), internalServer: { url: () => restUrl } });
  await controller.ready;
  await createConfig('rest-server', 'external');
}, 180_000);

afterAll(async () => {
  await controller?.stop();
  await operator?.stop();
  await rest?.close();
  await api?.close();
  await pg?.stop();
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe('Che controller', () => {
  let before: CheState;
  let snapshotId: string;

  it('backs up on creation of a CheClusterBackup, with upstream stages and a snapshot restic reads', async () => {
    before = await snapshotChe(kc, pg, NS);
    await createCr('checlusterbackups', 'backup-1', { backupServerConfigRef: 'rest-server' });
    const { status, stages } = await finished('checlusterbackups', 'backup-1');
    expect(status.state, status.message).toBe('Succeeded');
    expect(status.message).toMatch(/^Backup successfully finished at \d{4}-/);
    expect(status.stage).toBeUndefined();
    expect(status.cheVersion).toBe('7.42.0');
    expect(status.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    snapshotId = status.snapshotId!;
    expect(stages.every((s) => ['Connecting to backup repository', 'Collecting Che installation data', 'Sending backup snapshot to backup server'].includes(s))).toBe(true);

    // The real restic sees the files at the top of the snapshot, tagged and named after the namespace.
    const repo = `rest:${restUrl}external/`;
    const snaps = JSON.parse(await restic(['-r', repo, 'snapshots', '--json'])) as { id: string; hostname: string; tags: string[] }[];
    expect(snaps.map((s) => [s.id, s.hostname, s.tags])).toEqual([[snapshotId, NS, ['che', NS]]]);
    const target = join(dataDir, 'restic-restore');
    await restic(['-r', repo, 'restore', snapshotId, '--target', target]);
    expect((await readdir(target)).sort()).toEqual(['backup-info.yaml', 'che-cr.yaml', 'configmaps', 'db', 'secrets']);
    expect((await readdir(join(target, 'db'))).sort()).toEqual(['dbche.sql', 'keycloak.sql']);
    expect((await readdir(join(target, 'configmaps'))).sort()).toEqual(['ca-certs-extra.yaml', 'custom-certs.yaml']);
    expect((await readdir(join(target, 'secrets'))).sort()).toEqual(['che-identity-postgres-secret.yaml', 'che-identity-secret.yaml', 'che-postgres-secret.yaml']);
    await restic(['-r', repo, 'check']);
  });

  it('runs one operation at a time', async () => {
    await createCr('checlusterbackups', 'backup-2', { backupServerConfigRef: 'rest-server' });
    await createCr('checlusterbackups', 'backup-3', { backupServerConfigRef: 'rest-server' });
    const [a, b] = await Promise.all([finished('checlusterbackups', 'backup-2'), finished('checlusterbackups', 'backup-3')]);
    expect([a.status.state, b.status.state]).toEqual(['Succeeded', 'Succeeded']);
    const logIndex = (line: string) => logs.findIndex((l) => l.startsWith(line));
    // The second starts only after the first has finished.
    expect(logIndex('CheClusterBackup backup-3: started')).toBeGreaterThan(logIndex('CheClusterBackup backup-2: succeeded'));
    // The latest snapshot, which a restore without snapshotId takes.
    snapshotId = b.status.snapshotId!;
  });

  it('edits of a finished CR do nothing', async () => {
    await kubeClients(kc).custom.patchNamespacedCustomObject(
      { ...GROUP, namespace: NS, plural: 'checlusterbackups', name: 'backup-1', body: { metadata: { labels: { edited: 'yes' } } } },
      mergePatch,
    );
    await new Promise((r) => setTimeout(r, 500));
    await controller.idle();
    const snaps = JSON.parse(await restic(['-r', `rest:${restUrl}external/`, 'snapshots', '--json'])) as unknown[];
    expect(snaps).toHaveLength(3);
  });

  it('a restore with a wrong password fails before touching anything', async () => {
    const { core } = kubeClients(kc);
    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'wrong-password' }, stringData: { 'repo-password': 'nope' } } });
    await createConfig('wrong-server', 'external', 'wrong-password');
    const cheCluster = await snapshotChe(kc, pg, NS);
    await createCr('checlusterrestores', 'restore-wrong', { backupServerConfigRef: 'wrong-server' });
    const { status } = await finished('checlusterrestores', 'restore-wrong');
    expect(status.state).toBe('Failed');
    expect(status.message).toBe('Error: wrong password or no key found');
    expect(diffCheStates(cheCluster, await snapshotChe(kc, pg, NS))).toEqual([]);
  });

  it('a restore of a missing snapshot fails before touching anything', async () => {
    await createCr('checlusterrestores', 'restore-missing', { backupServerConfigRef: 'rest-server', snapshotId: 'deadbeef' });
    const { status } = await finished('checlusterrestores', 'restore-missing');
    expect(status.state).toBe('Failed');
    expect(status.message).toMatch(/^Error: snapshot 'deadbeef' not found in rest:http:\/\/127\.0\.0\.1:\d+\/external\/$/);
  });

  it('restores the backed-up state over a changed installation', async () => {
    await pg.psql(`DELETE FROM devfile_project; INSERT INTO usr VALUES ('user-new', 'new', 'new@example.com', NULL); UPDATE workspace SET name = 'renamed'`, 'dbche');
    await pg.psql(`DELETE FROM web_origins`, 'keycloak');
    // A session left open on the database: the restore must end it before DROP (che#20940).
    const blocker = pg.psql(`SELECT pg_sleep(20)`, 'dbche').catch(() => undefined);
    const { core } = kubeClients(kc);
    await core.replaceNamespacedConfigMap({
      name: 'custom-certs',
      namespace: NS,
      body: { metadata: { name: 'custom-certs', labels: { 'app.kubernetes.io/part-of': 'che.eclipse.org', 'app.kubernetes.io/component': 'ca-bundle' } }, data: { changed: 'yes' } },
    });
    await createCr('checlusterrestores', 'restore-1', { backupServerConfigRef: 'rest-server' });
    const { status, stages } = await finished('checlusterrestores', 'restore-1');
    await blocker;
    expect(status.state, status.message).toBe('Succeeded');
    expect(status.message).toMatch(/^Restore successfully finished at /);
    expect(status.snapshotId).toBe(snapshotId);
    expect(stages.length).toBeGreaterThan(2);
    expect(diffCheStates(before, await snapshotChe(kc, pg, NS))).toEqual([]);
    // The backup server configuration and its secret survive the clean-up.
    expect(await statusOf('chebackupserverconfigurations', 'rest-server')).toBeUndefined();
    expect(await orNotFound(core.readNamespacedSecret({ name: 'repo-password', namespace: NS }))).toBeDefined();
  });

  it('restores after the whole namespace was deleted', async () => {
    await deleteSampleChe(kc, pg, NS);
    await kubeClients(kc).core.createNamespace({ body: { metadata: { name: NS } } });
    await createConfig('rest-server', 'external');
    await createCr('checlusterrestores', 'restore-2', {});
    const { status } = await finished('checlusterrestores', 'restore-2');
    expect(status.state, status.message).toBe('Succeeded');
    expect(diffCheStates(before, await snapshotChe(kc, pg, NS))).toEqual([]);
  });

  it('sets up the internal backup server and backs up to it', async () => {
    await createCr('checlusterbackups', 'backup-internal', { useInternalBackupServer: true });
    const { status, stages } = await finished('checlusterbackups', 'backup-internal');
    expect(status.state, status.message).toBe('Succeeded');
    expect(stages[0]).toBe('Setting up internal backup server');
    const { core, apps, custom } = kubeClients(kc);
    const dep = await apps.readNamespacedDeployment({ name: INTERNAL_SERVER.deployment, namespace: NS });
    expect(dep.spec?.template.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName).toBe(INTERNAL_SERVER.pvc);
    expect(dep.metadata?.labels?.['app.kubernetes.io/part-of']).toBe('backup.che.eclipse.org');
    await core.readNamespacedPersistentVolumeClaim({ name: INTERNAL_SERVER.pvc, namespace: NS });
    await core.readNamespacedService({ name: INTERNAL_SERVER.service, namespace: NS });
    const secret = await core.readNamespacedSecret({ name: INTERNAL_SERVER.passwordSecret, namespace: NS });
    const password = Buffer.from(secret.data!['repo-password']!, 'base64').toString();
    const config = (await custom.getNamespacedCustomObject({ ...GROUP, namespace: NS, plural: 'chebackupserverconfigurations', name: INTERNAL_SERVER.configuration })) as {
      spec: unknown;
    };
    expect(config.spec).toEqual({
      rest: { protocol: 'http', hostname: `backup-rest-server-service.${NS}.svc`, port: 8000, repositoryPath: 'che', repositoryPasswordSecretRef: INTERNAL_SERVER.passwordSecret },
    });
    // The repository path `che` on the server the controller was pointed at, with the generated password.
    const out = await restic(['-r', `rest:${restUrl}che/`, 'snapshots', '--json'], password);
    expect(out).toContain(status.snapshotId!);
  });

  it('restores into another namespace, rewriting <namespace>.<domain> in the CheCluster and the databases', async () => {
    const copy = 'che-copy';
    const { core, custom } = kubeClients(kc);
    await core.createNamespace({ body: { metadata: { name: copy } } });
    const copyOperator = startOperatorDouble(kc, copy, { pg, startDelayMs: 100, resyncMs: 300 });
    const copyController = startCheController({ kubeConfig: kc, namespace: copy, timeouts: TIMEOUTS, log: (l) => logs.push(l) });
    try {
      await copyController.ready;
      await createConfig('rest-server', 'external', 'repo-password', copy);
      await pg.psql(`INSERT INTO che_k8s_runtime VALUES ('workspace1a2b3c', 'admin-che', 'RUNNING')`, 'dbche');
      await createCr('checlusterbackups', 'with-runtime', { backupServerConfigRef: 'rest-server' });
      expect((await finished('checlusterbackups', 'with-runtime')).status.state).toBe('Succeeded');
      await createCr('checlusterrestores', 'restore-copy', {}, copy);
      const { status } = await finished('checlusterrestores', 'restore-copy', copy);
      expect(status.state, status.message).toBe('Succeeded');
      const cr = (await custom.getNamespacedCustomObject({ ...GROUP, namespace: copy, plural: 'checlusters', name: 'eclipse-che' })) as {
        spec: { server: { cheHost: string }; auth: { identityProviderURL: string }; k8s: { ingressDomain: string } };
      };
      expect(cr.spec.server.cheHost).toBe(`${copy}.${SAMPLE_DOMAIN}`);
      expect(cr.spec.auth.identityProviderURL).toBe(`https://keycloak-${copy}.${SAMPLE_DOMAIN}/auth`);
      expect(cr.spec.k8s.ingressDomain).toBe(SAMPLE_DOMAIN);
      const locations = (await pg.psql(`SELECT location FROM devfile_project ORDER BY id`, 'dbche')).trim().split('\n');
      expect(locations).toEqual([
        'https://github.com/che-samples/web-nodejs-sample.git',
        `https://devfile-registry.${copy}.${SAMPLE_DOMAIN}/projects/nodejs-web-app.zip`,
        `https://git.${copy}.${SAMPLE_DOMAIN}/zoe/quarkus-quickstarts.git`,
      ]);
      const uris = (await pg.psql(`SELECT value FROM redirect_uris UNION ALL SELECT value FROM web_origins UNION ALL SELECT root_url FROM client WHERE root_url IS NOT NULL`, 'keycloak')).trim();
      expect(uris).not.toContain(`${NS}.`);
      expect(uris.split('\n').every((u) => u.includes(`${copy}.${SAMPLE_DOMAIN}`))).toBe(true);
      // No workspace runs after a restore, whatever the dump says.
      expect((await pg.psql(`SELECT count(*) FROM che_k8s_runtime`, 'dbche')).trim()).toBe('0');
    } finally {
      await copyController.stop();
      await copyOperator.stop();
    }
  });
});

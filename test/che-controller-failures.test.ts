// Failure paths of the Che layer on kubesim: a database that never answers (bounded, not a hang), an external
// database, a controller restart with CRs left InProgress, a controller stopped in the middle of a backup.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestServer, type RestServer } from '../src/backends/rest/server.js';
import { runBackup, startCheController } from '../src/che/controller.js';
import { applyCrds, crdDirectory, kubeClients, kubeConfigFromYaml, mergePatch } from '../src/che/devenv/kube.js';
import type { OperationStatus } from '../src/che/types.js';
import { startApiServer, type ApiServer } from '../src/kubesim/index.js';
import { Repository, openBackend, restore, UsageError } from '../src/index.js';

const GROUP = { group: 'org.eclipse.che', version: 'v1' } as const;
const PASSWORD = 'failure-tests-password';

let api: ApiServer;
let kc: KubeConfig;
let rest: RestServer;
let restUrl: string;
let dir: string;
/** Accepts TCP connections and never answers: a database that hangs. */
let blackHole: Server;
let blackHolePort: number;
const sockets = new Set<Socket>();

/** A namespace with a CheCluster, a backup server configuration and a "postgres" pod whose server never answers. */
async function hangingChe(ns: string, database: Record<string, unknown> = {}): Promise<void> {
  const { core, apps, custom } = kubeClients(kc);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'repo-password' }, stringData: { 'repo-password': PASSWORD } } });
  const url = new URL(restUrl);
  await custom.createNamespacedCustomObject({
    ...GROUP,
    namespace: ns,
    plural: 'chebackupserverconfigurations',
    body: {
      apiVersion: 'org.eclipse.che/v1',
      kind: 'CheBackupServerConfiguration',
      metadata: { name: 'server' },
      spec: { rest: { protocol: 'http', hostname: url.hostname, port: Number(url.port), repositoryPath: ns, repositoryPasswordSecretRef: 'repo-password' } },
    },
  });
  await custom.createNamespacedCustomObject({
    ...GROUP,
    namespace: ns,
    plural: 'checlusters',
    body: { apiVersion: 'org.eclipse.che/v1', kind: 'CheCluster', metadata: { name: 'eclipse-che' }, spec: { database } },
  });
  const labels = { app: 'che', component: 'postgres' };
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'postgres', labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'postgres',
                image: 'postgres',
                env: [
                  { name: 'PGHOST', value: '127.0.0.1' },
                  { name: 'PGPORT', value: String(blackHolePort) },
                  { name: 'PGUSER', value: 'postgres' },
                  { name: 'PGCONNECT_TIMEOUT', value: '0' },
                ],
              },
            ],
          },
        },
      },
    },
  });
}

async function createBackupCr(ns: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await kubeClients(kc).custom.createNamespacedCustomObject({
    ...GROUP,
    namespace: ns,
    plural: 'checlusterbackups',
    body: { apiVersion: 'org.eclipse.che/v1', kind: 'CheClusterBackup', metadata: { name }, spec },
  });
}

async function status(ns: string, name: string): Promise<OperationStatus | undefined> {
  const obj = (await kubeClients(kc).custom.getNamespacedCustomObject({ ...GROUP, namespace: ns, plural: 'checlusterbackups', name })) as { status?: OperationStatus };
  return obj.status;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'che-failures-'));
  api = await startApiServer();
  kc = kubeConfigFromYaml(api.kubeconfig);
  const crds = crdDirectory();
  await applyCrds(kc, (await readdir(crds)).map((f) => join(crds, f)));
  rest = createRestServer({ path: join(dir, 'rest'), listen: '127.0.0.1:0', noAuth: true, onError: () => undefined });
  restUrl = (await rest.listen()).url;
  blackHole = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  blackHolePort = (blackHole.address() as { port: number }).port;
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => blackHole?.close(r));
  await rest?.close();
  await api?.close();
  await rm(dir, { recursive: true, force: true });
}, 30_000);

describe('Che layer failure paths', () => {
  it('a database that never answers ends the backup after the step limit, with the step named', async () => {
    await hangingChe('che-hang');
    const started = Date.now();
    const err = await runBackup({
      kubeConfig: kc,
      namespace: 'che-hang',
      spec: { backupServerConfigRef: 'server' },
      timeouts: { api: 2_000, database: 2_000, pod: 10_000 },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^exec psql in pod postgres-[\w-]+: no exit status after 2s$/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('an external database is refused unless skipped explicitly (che#20851)', async () => {
    await hangingChe('che-external', { externalDb: true });
    const refused = await runBackup({ kubeConfig: kc, namespace: 'che-external', spec: { backupServerConfigRef: 'server' } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UsageError);
    expect((refused as Error).message).toContain("uses an external database (spec.database.externalDb: true)");

    const done = await runBackup({ kubeConfig: kc, namespace: 'che-external', spec: { backupServerConfigRef: 'server' }, externalDatabase: 'skip' });
    expect(done.collected.databases).toEqual([]);
    const repo = await Repository.open(await openBackend(`rest:${restUrl}che-external/`), PASSWORD);
    const target = join(dir, 'external');
    await restore(repo, { snapshot: done.snapshotId, target });
    expect((await readdir(target)).sort()).toEqual(['backup-info.yaml', 'che-cr.yaml', 'configmaps', 'db', 'secrets']);
    expect(await readdir(join(target, 'db'))).toEqual([]);
  });

  it('on start, marks CRs left InProgress as interrupted and runs those created meanwhile', async () => {
    await hangingChe('che-restart');
    const { custom } = kubeClients(kc);
    await createBackupCr('che-restart', 'left-running', { backupServerConfigRef: 'server' });
    await custom.patchNamespacedCustomObjectStatus(
      { ...GROUP, namespace: 'che-restart', plural: 'checlusterbackups', name: 'left-running', body: { status: { state: 'InProgress', stage: 'Collecting Che installation data' } } },
      mergePatch,
    );
    await createBackupCr('che-restart', 'finished', {});
    await custom.patchNamespacedCustomObjectStatus(
      { ...GROUP, namespace: 'che-restart', plural: 'checlusterbackups', name: 'finished', body: { status: { state: 'Succeeded', message: 'old' } } },
      mergePatch,
    );
    await createBackupCr('che-restart', 'created-meanwhile', {});
    const controller = startCheController({ kubeConfig: kc, namespace: 'che-restart', timeouts: { api: 5_000 } });
    try {
      await controller.ready;
      const interrupted = await waitFor('left-running to fail', 10_000, async () => ((await status('che-restart', 'left-running'))?.state === 'Failed' ? status('che-restart', 'left-running') : undefined));
      expect(interrupted!.message).toMatch(/^Error: interrupted: the controller stopped during the operation/);
      expect(interrupted!.stage).toBe('Collecting Che installation data');
      const meanwhile = await waitFor('created-meanwhile to finish', 10_000, async () => {
        const s = await status('che-restart', 'created-meanwhile');
        return s?.state === 'Failed' || s?.state === 'Succeeded' ? s : undefined;
      });
      expect(meanwhile.message).toBe('Error: set spec.backupServerConfigRef or spec.useInternalBackupServer: true');
      expect(await status('che-restart', 'finished')).toEqual({ state: 'Succeeded', message: 'old' });
    } finally {
      await controller.stop();
    }
  });

  it('keeps watching across server-side watch ends (resumed from the last resourceVersion)', async () => {
    await hangingChe('che-resume');
    const logs: string[] = [];
    const controller = startCheController({ kubeConfig: kc, namespace: 'che-resume', timeouts: { api: 5_000, watchSeconds: 1 }, log: (l) => logs.push(l) });
    try {
      await controller.ready;
      await new Promise((r) => setTimeout(r, 2_500));
      await createBackupCr('che-resume', 'after-reconnects', {});
      const s = await waitFor('the backup to be handled', 10_000, async () => {
        const st = await status('che-resume', 'after-reconnects');
        return st?.state === 'Failed' ? st : undefined;
      });
      expect(s.message).toBe('Error: set spec.backupServerConfigRef or spec.useInternalBackupServer: true');
      expect(logs.filter((l) => l.includes('reconnecting') || l.includes('retrying'))).toEqual([]);
    } finally {
      await controller.stop();
    }
  });

  it('stopping the controller cancels the running backup and records it as interrupted', async () => {
    await hangingChe('che-stop');
    const controller = startCheController({ kubeConfig: kc, namespace: 'che-stop', timeouts: { api: 60_000, database: 60_000 } });
    try {
      await controller.ready;
      await createBackupCr('che-stop', 'backup', { backupServerConfigRef: 'server' });
      await waitFor('the backup to reach the database', 20_000, async () =>
        (await status('che-stop', 'backup'))?.stage === 'Collecting Che installation data' ? true : undefined,
      );
      const started = Date.now();
      await controller.stop();
      expect(Date.now() - started).toBeLessThan(10_000);
      const s = await status('che-stop', 'backup');
      expect(s?.state).toBe('Failed');
      expect(s?.message).toMatch(/^Error: interrupted: the controller stopped/);
    } finally {
      await controller.stop();
    }
  });
});

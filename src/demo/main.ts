// `npm run demo`: Eclipse Che backup and restore with no cluster. Starts kubesim (an in-process Kubernetes API
// server), a real PostgreSQL, our REST server (standing in for the internal backup server), the Che operator
// double and the backup/restore controller; installs a sample Che; runs `server:backup` as chectl does; deletes
// the namespace and Che's databases; runs `server:restore`; and compares everything with what was there before.
// Exits non-zero on any difference. Everything it starts is stopped, everything it writes is removed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { createRestServer, ls, openBackend, Repository, type RestServer } from '../index.js';
import { startApiServer, type ApiServer } from '../kubesim/index.js';
import { startCheController, type CheController } from '../che/controller.js';
import { INTERNAL_SERVER, SECRET_KEYS, type OperationStatus } from '../che/types.js';
import { cheServerBackup, cheServerRestore } from '../che/devenv/chectl-client.js';
import { kubeClients, kubeConfigFromYaml, waitFor } from '../che/devenv/kube.js';
import { startOperatorDouble, type OperatorDouble } from '../che/devenv/operator-double.js';
import { startPostgres, type Postgres } from '../che/devenv/postgres.js';
import {
  CHE_CLUSTER_NAME,
  countCheState,
  deleteSampleChe,
  diffCheStates,
  installCheCrds,
  installSampleChe,
  snapshotChe,
  type CheState,
} from '../che/devenv/sample-che.js';

const NAMESPACE = 'eclipse-che';
/** The whole demo normally takes well under a minute; past this it is cancelled. */
const DEMO_LIMIT_MS = 110_000;
const OPERATION_TIMEOUT_MS = 60_000;
const STEP_TIMEOUTS = { repository: 20_000, pod: 30_000, finalizers: 30_000, cheAvailable: 30_000, internalServer: 30_000, database: 60_000, transfer: 60_000 };

const started = Date.now();
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
const say = (line: string): void => console.log(`${elapsed()}  ${line}`);

/** Prints chectl-style progress: one line per stage. */
function progress(what: string): (s: OperationStatus) => void {
  let last = '';
  return (s) => {
    const line = s.stage ? `Waiting until ${what} process finishes: ${s.stage}` : s.state ? `${what}: ${s.state}` : '';
    if (line && line !== last) say(`  ${line}`);
    last = line;
  };
}

function describeState(state: CheState): string {
  const c = countCheState(state);
  const dbs = Object.entries(state.databases).map(([name, d]) => {
    const tables = Object.values(d.tables);
    return `${name} (${tables.length} tables, ${tables.reduce((n, t) => n + t.rows.length, 0)} rows)`;
  });
  return `CheCluster ${state.cheCluster ? CHE_CLUSTER_NAME : '(none)'}, ${c.configMaps} CA bundles, ${c.secrets} secrets, databases ${dbs.join(', ') || '(none)'}`;
}

async function waitAvailable(kc: KubeConfig, signal: AbortSignal): Promise<void> {
  const { custom } = kubeClients(kc);
  await waitFor(
    'the CheCluster to become Available',
    30_000,
    async () => {
      const cr = (await custom.getNamespacedCustomObject({ group: 'org.eclipse.che', version: 'v1', namespace: NAMESPACE, plural: 'checlusters', name: CHE_CLUSTER_NAME })) as {
        status?: { cheClusterRunning?: string };
      };
      return cr.status?.cheClusterRunning === 'Available' ? true : undefined;
    },
    { signal },
  );
}

/** The files of a snapshot, read with the library (a plain restic repository: `restic ls` shows the same). */
async function snapshotFiles(restUrl: string, password: string, id: string): Promise<string[]> {
  const backend = await openBackend(`rest:${restUrl}${INTERNAL_SERVER.repositoryPath}/`);
  try {
    const repo = await Repository.open(backend, password);
    try {
      const { entries } = await ls(repo, { snapshot: id });
      const files: string[] = [];
      for await (const e of entries) if (e.node.type === 'file') files.push(e.path);
      return files;
    } finally {
      await repo.close();
    }
  } finally {
    await backend.close();
  }
}

/** One verification line per compared part; returns the differences. */
function verify(before: CheState, after: CheState): string[] {
  const problems = diffCheStates(before, after);
  const about = (...prefixes: string[]): boolean => problems.some((p) => prefixes.some((x) => p.startsWith(x)));
  const rows: [string, boolean][] = [
    [`CheCluster ${CHE_CLUSTER_NAME}: spec and labels`, about('CheCluster')],
    [`CA bundle ConfigMaps: ${Object.keys(before.configMaps).length}`, about('ConfigMap')],
    [`Secrets named by the CheCluster: ${Object.keys(before.secrets).length}`, about('Secret')],
  ];
  for (const [db, d] of Object.entries(before.databases)) {
    const tables = Object.values(d.tables);
    const count = tables.reduce((n, t) => n + t.rows.length, 0);
    rows.push([`database ${db} (owner ${d.owner}): ${tables.length} tables, ${count} rows, sequences`, about(`database ${db}:`, `table ${db}.`)]);
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log('\nVerification (before the backup vs after the restore):');
  for (const [label, bad] of rows) console.log(`  ${label.padEnd(width)}  ${bad ? 'DIFFERS' : 'equal'}`);
  for (const p of problems) console.log(`    - ${p}`);
  return problems;
}

async function main(signal: AbortSignal): Promise<number> {
  const work = await mkdtemp(join(tmpdir(), 'restic-ts-che-demo-'));
  let api: ApiServer | undefined;
  let pg: Postgres | undefined;
  let rest: RestServer | undefined;
  let controller: CheController | undefined;
  let double: OperatorDouble | undefined;
  let kc: KubeConfig | undefined;
  try {
    say('starting kubesim (in-process Kubernetes API server), PostgreSQL 15 and the REST backup server');
    api = await startApiServer();
    kc = kubeConfigFromYaml(api.kubeconfig);
    pg = await startPostgres();
    rest = createRestServer({ path: join(work, 'backup-server'), listen: '127.0.0.1:0', noAuth: true, onError: (m) => say(`REST server: ${m}`) });
    const restUrl = (await rest.listen()).url;
    say(`  API server ${api.url}, PostgreSQL 127.0.0.1:${pg.port}, REST server ${restUrl}`);

    await installCheCrds(kc);
    const controllerLog: string[] = [];
    controller = startCheController({
      kubeConfig: kc,
      namespace: NAMESPACE,
      timeouts: STEP_TIMEOUTS,
      // The internal backup server's Service is not reachable from here: the controller talks to our REST server.
      internalServer: { url: () => restUrl },
      log: (l) => controllerLog.push(l),
      signal,
    });
    double = startOperatorDouble(kc, NAMESPACE, { pg });
    await controller.ready;
    say('controller and Che operator double are watching namespace eclipse-che');

    await installSampleChe(kc, pg, { namespace: NAMESPACE });
    await waitAvailable(kc, signal);
    const before = await snapshotChe(kc, pg, NAMESPACE);
    say(`sample Che installed and Available: ${describeState(before)}`);

    say('$ restic-ts che server:backup -n eclipse-che   (no server given: the internal backup server is set up)');
    const backup = await cheServerBackup({ kubeConfig: kc, namespace: NAMESPACE, timeoutMs: OPERATION_TIMEOUT_MS, signal, onProgress: progress('backup') });
    const snapshotId = backup.status.snapshotId!;
    console.log(`Backup snapshot ID: ${snapshotId}`);

    // What an administrator keeps outside the cluster for disaster recovery: the repository password.
    const secret = await kubeClients(kc).core.readNamespacedSecret({ name: INTERNAL_SERVER.passwordSecret, namespace: NAMESPACE });
    const repoPassword = Buffer.from(secret.data?.[SECRET_KEYS.repoPassword] ?? '', 'base64').toString('utf8');
    const files = await snapshotFiles(restUrl, repoPassword, snapshotId);
    say(`snapshot ${snapshotId.slice(0, 8)} holds ${files.length} files: ${files.join(' ')}`);

    await deleteSampleChe(kc, pg, NAMESPACE);
    const gone = await snapshotChe(kc, pg, NAMESPACE);
    say(`deleted namespace eclipse-che and dropped Che's databases: ${describeState(gone)}`);

    const repoUrl = `rest:${restUrl}${INTERNAL_SERVER.repositoryPath}`;
    say(`$ restic-ts che server:restore -n eclipse-che -r ${repoUrl} -p <password> -s ${snapshotId.slice(0, 8)} --batch`);
    const restored = await cheServerRestore({
      kubeConfig: kc,
      namespace: NAMESPACE,
      repositoryUrl: repoUrl,
      repositoryPassword: repoPassword,
      snapshotId: snapshotId.slice(0, 8),
      timeoutMs: OPERATION_TIMEOUT_MS,
      signal,
      onProgress: progress('restore'),
    });
    say(`restore ${restored.status.state}: ${restored.status.message ?? ''}`);

    const after = await snapshotChe(kc, pg, NAMESPACE);
    const problems = verify(before, after);
    if (problems.length > 0) {
      console.log(`\ndemo FAILED: ${problems.length} difference(s); controller log:\n${controllerLog.map((l) => `  ${l}`).join('\n')}`);
      return 1;
    }
    console.log(`\ndemo OK: Che restored from snapshot ${snapshotId.slice(0, 8)}, every object and database row equal`);
    return 0;
  } finally {
    say('cleaning up');
    // Delete Che while the operator double still runs: it releases the CheCluster's finalizer.
    if (kc && pg) await deleteSampleChe(kc, pg, NAMESPACE, 20_000).catch((e: unknown) => say(`clean-up: ${(e as Error).message}`));
    await controller?.stop();
    await double?.stop();
    await rest?.close();
    await pg?.stop();
    await api?.close();
    await rm(work, { recursive: true, force: true });
  }
}

const cancel = new AbortController();
const watchdog = setTimeout(() => cancel.abort(new Error(`demo did not finish within ${DEMO_LIMIT_MS / 1000} s`)), DEMO_LIMIT_MS);
const onSignal = (s: NodeJS.Signals): void => cancel.abort(new Error(`interrupted by ${s}`));
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

main(cancel.signal)
  .then(
    (code) => code,
    (err: unknown) => {
      const reason = cancel.signal.aborted ? (cancel.signal.reason as Error).message : (err as Error).message;
      console.error(`demo failed: ${reason.split('\n')[0]}`);
      return 1;
    },
  )
  .then((code) => {
    clearTimeout(watchdog);
    // Everything the demo started is stopped by now; exit even if a library left an idle thread referenced
    // (the controller's repositories keep blob-encoder workers: reported to their owner).
    process.exit(code);
  });

// Plays the Che operator for the demo and tests: reconciles CheCluster objects in one namespace the way
// che-operator 7.42 looked from outside. A new CheCluster gets the operator's finalizer, its database
// provisioned (role and empty database from the credentials Secret, like the postgres pod's start-up),
// the postgres and che Deployments, then `status.cheClusterRunning: Available`. On deletion the
// finalizer is removed. Level-triggered: a watch wakes it up, a periodic resync covers lost events.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Postgres } from './postgres.js';
import { apiMessage, isApiStatus, kubeClients, mergePatch, orNotFound } from './kube.js';
import { CHE_DB, CHE_POSTGRES_SECRET, cheDeployment, ensureDatabase, postgresDeployment } from './sample-che.js';

export const OPERATOR_FINALIZER = 'cluster-resources.finalizers.che.eclipse.org';
export const CHE_VERSION = '7.42.0';

export interface OperatorDoubleOptions {
  /** When given, provisions the database and (re)creates the postgres/che Deployments as the operator would. */
  pg?: Postgres;
  /** Time between seeing a new CheCluster and reporting it Available (Che's start-up). Default 300 ms. */
  startDelayMs?: number;
  /** Resync period. Default 1 s. */
  resyncMs?: number;
  /** Receives one line per reconcile problem (default: ignored; problems are retried). */
  onError?: (message: string) => void;
}

export interface OperatorDouble {
  /** CheCluster names reported Available so far (in order; a re-created CR counts again). */
  readonly started: string[];
  stop(): Promise<void>;
}

interface CheClusterObject {
  metadata: { name: string; uid?: string; resourceVersion?: string; deletionTimestamp?: string; finalizers?: string[] };
  spec?: { server?: { cheHost?: string }; database?: { externalDb?: boolean; chePostgresDb?: string; chePostgresSecret?: string } };
  status?: { cheClusterRunning?: string };
}

const GROUP = { group: 'org.eclipse.che', version: 'v1', plural: 'checlusters' } as const;

export function startOperatorDouble(kc: KubeConfig, namespace: string, opts: OperatorDoubleOptions = {}): OperatorDouble {
  const { core, apps, custom } = kubeClients(kc);
  const startDelayMs = opts.startDelayMs ?? 300;
  const started: string[] = [];
  /** uid → when it was first seen not yet Available. */
  const firstSeen = new Map<string, number>();
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let watch: AbortController | undefined;
  let watchRetry: NodeJS.Timeout | undefined;

  const report = (message: string): void => opts.onError?.(message);

  async function provision(cr: CheClusterObject): Promise<boolean> {
    const pg = opts.pg;
    if (!pg || cr.spec?.database?.externalDb) return true;
    const secretName = cr.spec?.database?.chePostgresSecret || CHE_POSTGRES_SECRET;
    const secret = await orNotFound(core.readNamespacedSecret({ name: secretName, namespace }));
    const field = (k: string): string | undefined => (secret?.data?.[k] ? Buffer.from(secret.data[k]!, 'base64').toString('utf8') : undefined);
    const user = field('user');
    const password = field('password');
    if (!user || !password) {
      report(`CheCluster ${cr.metadata.name}: secret ${secretName} with user/password not found; waiting`);
      return false;
    }
    await ensureDatabase(pg, cr.spec?.database?.chePostgresDb || CHE_DB, user, password);
    for (const body of [postgresDeployment(namespace, pg.connectionEnv), cheDeployment(namespace)]) {
      try {
        await apps.createNamespacedDeployment({ namespace, body });
      } catch (e) {
        if (!isApiStatus(e, 409)) throw e;
      }
    }
    return true;
  }

  async function reconcile(cr: CheClusterObject): Promise<void> {
    const name = cr.metadata.name;
    const finalizers = cr.metadata.finalizers ?? [];
    if (cr.metadata.deletionTimestamp) {
      if (finalizers.includes(OPERATOR_FINALIZER)) {
        await custom.patchNamespacedCustomObject(
          { ...GROUP, namespace, name, body: { metadata: { finalizers: finalizers.filter((f) => f !== OPERATOR_FINALIZER), resourceVersion: cr.metadata.resourceVersion } } },
          mergePatch,
        );
      }
      return;
    }
    if (!finalizers.includes(OPERATOR_FINALIZER)) {
      await custom.patchNamespacedCustomObject(
        { ...GROUP, namespace, name, body: { metadata: { finalizers: [...finalizers, OPERATOR_FINALIZER], resourceVersion: cr.metadata.resourceVersion } } },
        mergePatch,
      );
      return; // the update comes back as an event
    }
    if (cr.status?.cheClusterRunning === 'Available') return;
    const uid = cr.metadata.uid ?? name;
    const seen = firstSeen.get(uid) ?? Date.now();
    firstSeen.set(uid, seen);
    if (cr.status?.cheClusterRunning !== 'Unavailable') {
      await custom.patchNamespacedCustomObjectStatus({ ...GROUP, namespace, name, body: { status: { cheClusterRunning: 'Unavailable', message: 'Che is starting' } } }, mergePatch);
    }
    if (!(await provision(cr))) return;
    if (Date.now() - seen < startDelayMs) {
      setTimeout(kick, startDelayMs - (Date.now() - seen)).unref();
      return;
    }
    const host = cr.spec?.server?.cheHost || `${namespace}.che.local`;
    await custom.patchNamespacedCustomObjectStatus(
      {
        ...GROUP,
        namespace,
        name,
        body: { status: { cheClusterRunning: 'Available', cheVersion: CHE_VERSION, cheURL: `https://${host}`, dbProvisioned: true, message: '' } },
      },
      mergePatch,
    );
    firstSeen.delete(uid);
    started.push(name);
  }

  async function reconcileAll(): Promise<void> {
    const list = (await orNotFound(custom.listNamespacedCustomObject({ ...GROUP, namespace }))) as { items: CheClusterObject[] } | undefined;
    for (const cr of list?.items ?? []) {
      if (stopped) return;
      try {
        await reconcile(cr);
      } catch (e) {
        // 409: someone changed it meanwhile; the next pass sees the new version.
        if (!isApiStatus(e, 409)) report(`CheCluster ${cr.metadata.name}: ${apiMessage(e)}`);
      }
    }
  }

  /** Runs one reconcile pass now, or right after the running one (never two at once). */
  function kick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await reconcileAll();
        } catch (e) {
          report(`list CheClusters: ${apiMessage(e)}`);
        }
      } while (again && !stopped);
    })().finally(() => {
      running = undefined;
    });
  }

  function startWatch(): void {
    if (stopped) return;
    const restart = (): void => {
      watch = undefined;
      if (!stopped) watchRetry = setTimeout(startWatch, 500);
    };
    new Watch(kc)
      .watch(`/apis/${GROUP.group}/${GROUP.version}/namespaces/${namespace}/${GROUP.plural}`, {}, () => kick(), restart)
      .then((controller) => {
        watch = controller;
        if (stopped) controller.abort();
      }, restart);
  }

  const resync = setInterval(kick, opts.resyncMs ?? 1_000);
  startWatch();
  kick();

  return {
    started,
    async stop() {
      stopped = true;
      clearInterval(resync);
      clearTimeout(watchRetry);
      watch?.abort();
      await running;
    },
  };
}

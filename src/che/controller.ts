import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { ResticError } from '../index.js';
import { custom, DEFAULT_TIMEOUTS, type CheTimeouts, type InternalServerOptions } from './common.js';
import { runBackup, type ExternalDatabasePolicy } from './exporter.js';
import { runRestore } from './importer.js';
import { CheKube, isNotFound } from './kube.js';
import { serverKind } from './server-config.js';
import {
  BACKUP_STAGES,
  PLURALS,
  RESTORE_STAGES,
  type CheBackupServerConfiguration,
  type CheClusterBackup,
  type CheClusterRestore,
  type OperationStatus,
} from './types.js';
import { errorMessage, sleep } from './util.js';

export { runBackup, type RunBackupOptions, type RunBackupResult } from './exporter.js';
export { runRestore, type RunRestoreOptions, type RunRestoreResult } from './importer.js';

export interface CheControllerTimeouts extends CheTimeouts {
  /** Longest pause between watch reconnects (they back off from 500 ms). */
  watchBackoffMax: number;
  /** Consecutive failed list/watch attempts after which the controller gives up. */
  watchAttempts: number;
  /** Server-side lifetime of one watch request, in seconds; it is then resumed from the last resourceVersion. */
  watchSeconds: number;
}

export const DEFAULT_CONTROLLER_TIMEOUTS: CheControllerTimeouts = {
  ...DEFAULT_TIMEOUTS,
  watchBackoffMax: 30_000,
  watchAttempts: 10,
  watchSeconds: 300,
};

export interface CheControllerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Stops the controller; a running operation is cancelled and marked Failed. */
  signal?: AbortSignal;
  timeouts?: Partial<CheControllerTimeouts>;
  internalServer?: InternalServerOptions;
  externalDatabase?: ExternalDatabasePolicy;
  /** Receives one line per event worth logging; default none. */
  log?: (line: string) => void;
  now?: () => Date;
}

export interface CheController {
  /** Resolves once the existing CRs were listed and the watches run. */
  ready: Promise<void>;
  /** Settles when the controller has stopped: resolves after stop()/signal, rejects when watching failed for good. */
  done: Promise<void>;
  /** Resolves when no operation is queued or running. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

type OpKind = 'backup' | 'restore';
type Operation = CheClusterBackup | CheClusterRestore;

const KIND_NAMES: Record<OpKind, string> = { backup: 'CheClusterBackup', restore: 'CheClusterRestore' };
const PLURAL_OF: Record<OpKind, string> = { backup: PLURALS.backup, restore: PLURALS.restore };

/** Status fields to write; null removes a field (JSON merge patch). */
type StatusPatch = { [K in keyof OperationStatus]?: OperationStatus[K] | null };

/** No status at all: a CR nobody has worked on. */
function untouched(obj: Operation): boolean {
  return !obj.status?.state;
}

/** The status che-operator wrote on success (stage cleared) and failure (stage kept, so it shows where). */
export function succeededStatus(kind: OpKind, at: Date, snapshotId: string, cheVersion: string): StatusPatch {
  const what = kind === 'backup' ? 'Backup' : 'Restore';
  return { state: 'Succeeded', stage: null, message: `${what} successfully finished at ${at.toISOString()}`, snapshotId, cheVersion };
}

export function failedStatus(err: unknown): StatusPatch {
  return { state: 'Failed', message: `Error: ${errorMessage(err)}` };
}

export function startedStatus(kind: OpKind, at: Date, obj: Operation): StatusPatch {
  const what = kind === 'backup' ? 'Backup' : 'Restore';
  const first =
    kind === 'restore' ? RESTORE_STAGES.download : (obj as CheClusterBackup).spec?.useInternalBackupServer ? BACKUP_STAGES.internalServer : BACKUP_STAGES.repository;
  return { state: 'InProgress', stage: first, message: `${what} is in progress. Start time: ${at.toISOString()}` };
}

/**
 * Watches CheClusterBackup, CheClusterRestore and CheBackupServerConfiguration in one namespace and runs a backup
 * or restore for each newly created CheClusterBackup/CheClusterRestore (status empty), one at a time. Edits and
 * finished CRs do nothing; a CR left InProgress by an earlier run is marked Failed ("interrupted").
 */
export function startCheController(options: CheControllerOptions): CheController {
  const { namespace } = options;
  const timeouts = { ...DEFAULT_CONTROLLER_TIMEOUTS, ...options.timeouts };
  const kube = new CheKube(options.kubeConfig, timeouts.api);
  const log = options.log ?? (() => undefined);
  const now = options.now ?? (() => new Date());
  const stopper = new AbortController();
  const signal = stopper.signal;
  const onParentAbort = () => stopper.abort();
  if (options.signal?.aborted) stopper.abort();
  else options.signal?.addEventListener('abort', onParentAbort, { once: true });

  /** uids queued or done: a CR is worked on once. */
  const seen = new Set<string>();
  let queue: Promise<void> = Promise.resolve();
  let pending = 0;
  let idleWaiters: (() => void)[] = [];
  const activeWatches = new Set<AbortController>();

  const patchStatus = async (kind: OpKind, name: string, status: StatusPatch, s: AbortSignal | undefined) => {
    await kube.call(
      `update status of ${KIND_NAMES[kind]} ${name}`,
      s,
      (o) => kube.custom.patchNamespacedCustomObjectStatus({ ...custom(namespace, PLURAL_OF[kind]), name, body: { status } }, o),
      true,
    );
  };

  /** Final status: retried a few times, since it is the only record of what happened. */
  const finalStatus = async (kind: OpKind, name: string, status: StatusPatch) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await patchStatus(kind, name, status, undefined);
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        if (attempt >= 3) {
          log(`${KIND_NAMES[kind]} ${name}: cannot record the result (${errorMessage(err)})`);
          return;
        }
        await sleep(1000 * attempt);
      }
    }
  };

  async function run(kind: OpKind, name: string, uid: string): Promise<void> {
    if (signal.aborted) return;
    const where = { ...custom(namespace, PLURAL_OF[kind]), name };
    const obj = (await kube.find(`read ${KIND_NAMES[kind]} ${name}`, signal, (o) => kube.custom.getNamespacedCustomObject(where, o))) as
      | Operation
      | undefined;
    // Deleted, replaced by a namesake, or already handled since it was queued.
    if (!obj || obj.metadata.uid !== uid || !untouched(obj)) return;
    log(`${KIND_NAMES[kind]} ${name}: started`);
    const started = startedStatus(kind, now(), obj);
    await patchStatus(kind, name, started, signal);
    let stage = started.stage;
    const onStage = async (next: string) => {
      if (next === stage) return;
      stage = next;
      log(`${KIND_NAMES[kind]} ${name}: ${next}`);
      await patchStatus(kind, name, { stage: next }, signal).catch((err: unknown) => log(`${KIND_NAMES[kind]} ${name}: cannot update stage (${errorMessage(err)})`));
    };
    try {
      const result =
        kind === 'backup'
          ? await runBackup({
              kubeConfig: options.kubeConfig,
              namespace,
              spec: (obj as CheClusterBackup).spec ?? {},
              internalServer: options.internalServer,
              externalDatabase: options.externalDatabase,
              timeouts,
              signal,
              onStage,
              now,
            })
          : await runRestore({
              kubeConfig: options.kubeConfig,
              namespace,
              spec: (obj as CheClusterRestore).spec ?? {},
              internalServer: options.internalServer,
              timeouts,
              signal,
              onStage,
            });
      await finalStatus(kind, name, succeededStatus(kind, now(), result.snapshotId, result.cheVersion));
      log(`${KIND_NAMES[kind]} ${name}: succeeded, snapshot ${result.snapshotId}`);
    } catch (err) {
      const reason = signal.aborted ? new ResticError('interrupted: the controller stopped during the operation; create a new CR to retry') : err;
      await finalStatus(kind, name, failedStatus(reason));
      log(`${KIND_NAMES[kind]} ${name}: failed: ${errorMessage(reason)}`);
    }
  }

  function enqueue(kind: OpKind, obj: Operation): void {
    const uid = obj.metadata.uid ?? '';
    const name = obj.metadata.name ?? '';
    if (!uid || seen.has(uid) || !untouched(obj)) return;
    seen.add(uid);
    pending++;
    queue = queue
      .then(() => run(kind, name, uid))
      .catch((err: unknown) => log(`${KIND_NAMES[kind]} ${name}: ${errorMessage(err)}`))
      .finally(() => {
        if (--pending === 0) {
          for (const w of idleWaiters) w();
          idleWaiters = [];
        }
      });
  }

  /** Marks CRs a previous controller left InProgress as Failed (their work died with it). */
  async function failInterrupted(kind: OpKind, items: Operation[]): Promise<void> {
    for (const obj of items) {
      if (obj.status?.state !== 'InProgress' || seen.has(obj.metadata.uid ?? '')) continue;
      seen.add(obj.metadata.uid ?? '');
      const name = obj.metadata.name ?? '';
      log(`${KIND_NAMES[kind]} ${name}: was in progress when the controller stopped; marking it Failed`);
      await finalStatus(kind, name, failedStatus(new ResticError('interrupted: the controller stopped during the operation; create a new CR to retry')));
    }
  }

  function checkConfiguration(config: CheBackupServerConfiguration): void {
    try {
      serverKind(config.metadata.name ?? '', config.spec);
    } catch (err) {
      log(errorMessage(err));
    }
  }

  /**
   * list, then watch from the list's resourceVersion; a closed watch resumes from the last resourceVersion, an
   * expired one (410) lists again. Consecutive failures back off and end the controller after watchAttempts.
   */
  async function listAndWatch<T extends { metadata: { resourceVersion?: string } }>(
    plural: string,
    onList: (items: T[], first: boolean) => Promise<void>,
    onEvent: (type: string, obj: T) => void,
    listed: () => void,
  ): Promise<void> {
    let failures = 0;
    let first = true;
    const path = `/apis/${custom(namespace, plural).group}/${custom(namespace, plural).version}/namespaces/${namespace}/${plural}`;
    while (!signal.aborted) {
      let resourceVersion: string;
      try {
        const list = (await kube.call(`list ${plural}`, signal, (o) => kube.custom.listNamespacedCustomObject(custom(namespace, plural), o))) as {
          items: T[];
          metadata?: { resourceVersion?: string };
        };
        resourceVersion = list.metadata?.resourceVersion ?? '';
        await onList(list.items, first);
        if (first) listed();
        first = false;
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        if (failures >= timeouts.watchAttempts) throw new ResticError(`listing ${plural} failed ${failures} times in a row: ${errorMessage(err)}`);
        log(`list ${plural}: ${errorMessage(err)}; retrying`);
        await sleep(Math.min(500 * 2 ** (failures - 1), timeouts.watchBackoffMax), signal).catch(() => undefined);
        continue;
      }
      // Watch until the list is stale (410) or failures pile up.
      for (;;) {
        if (signal.aborted) return;
        const started = Date.now();
        let received = false;
        const outcome = await new Promise<'closed' | 'expired' | Error>((resolve) => {
          let expired = false;
          const controller = new AbortController();
          new Watch(options.kubeConfig)
            .watch(
              path,
              { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: timeouts.watchSeconds },
              (type: string, obj: T & { code?: number }) => {
                received = true;
                if (type === 'ERROR') {
                  expired = obj.code === 410;
                  controller.abort();
                  return;
                }
                if (obj.metadata?.resourceVersion) resourceVersion = obj.metadata.resourceVersion;
                if (type !== 'BOOKMARK') onEvent(type, obj);
              },
              (err: unknown) => {
                activeWatches.delete(controller);
                if (expired) resolve('expired');
                else if (err && !signal.aborted && !(err instanceof Error && err.name === 'AbortError')) resolve(err instanceof Error ? err : new Error(String(err)));
                else resolve('closed');
              },
            )
            .then((inner) => {
              activeWatches.add(controller);
              controller.signal.addEventListener('abort', () => inner.abort(), { once: true });
              if (signal.aborted) controller.abort();
            }, (err: unknown) => resolve(err instanceof Error ? err : new Error(String(err))));
        });
        if (outcome === 'expired') break;
        // A watch the server ends at once, again and again, must not become a busy loop.
        const quick = outcome === 'closed' && !received && Date.now() - started < 1000 && !signal.aborted;
        if (outcome === 'closed' && !quick) {
          failures = 0;
          continue;
        }
        failures++;
        const problem = outcome === 'closed' ? 'the server ended the watch at once' : errorMessage(outcome);
        if (failures >= timeouts.watchAttempts) throw new ResticError(`watching ${plural} failed ${failures} times in a row: ${problem}`);
        log(`watch ${plural}: ${problem}; reconnecting`);
        await sleep(Math.min(500 * 2 ** (failures - 1), timeouts.watchBackoffMax), signal).catch(() => undefined);
      }
    }
  }

  let readyCount = 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const listed = () => {
    if (++readyCount === 3) resolveReady();
  };

  const opWatch = (kind: OpKind) =>
    listAndWatch<Operation>(
      PLURAL_OF[kind],
      async (items, first) => {
        if (first) await failInterrupted(kind, items);
        for (const obj of items) enqueue(kind, obj);
      },
      (type, obj) => {
        if (type === 'ADDED') enqueue(kind, obj);
      },
      listed,
    );

  const watches = Promise.all([
    opWatch('backup'),
    opWatch('restore'),
    listAndWatch<CheBackupServerConfiguration>(
      PLURALS.backupServerConfiguration,
      async (items) => items.forEach(checkConfiguration),
      (type, obj) => {
        if (type === 'ADDED' || type === 'MODIFIED') checkConfiguration(obj);
      },
      listed,
    ),
  ]);

  const done = watches
    .catch((err: unknown) => {
      stopper.abort();
      throw err;
    })
    .finally(async () => {
      options.signal?.removeEventListener('abort', onParentAbort);
      for (const w of activeWatches) w.abort();
      await queue;
    })
    .then(() => undefined);
  // `done` is for callers that want the outcome; an unobserved failure must not crash the process.
  done.catch(() => undefined);
  ready.catch(() => undefined);

  return {
    ready: Promise.race([ready, done.then(() => undefined)]),
    done,
    idle: () => (pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    async stop() {
      stopper.abort();
      for (const w of activeWatches) w.abort();
      await done.catch(() => undefined);
    },
  };
}

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { dump } from 'js-yaml';
import { backup, ResticError, UsageError } from '../index.js';
import {
  DEFAULT_TIMEOUTS,
  cheDatabaseName,
  cheSecretNames,
  findCheCluster,
  findServerConfiguration,
  portableObject,
  resolveInCluster,
  type CheTimeouts,
  type InternalServerOptions,
} from './common.js';
import { ensureInternalServer } from './internal-server.js';
import { dumpDatabase, KEYCLOAK_DB, listDatabases, postgresPod } from './database.js';
import { CheKube } from './kube.js';
import { openServerRepository } from './server-config.js';
import {
  BACKUP_STAGES,
  CHE_API_VERSION,
  CHE_PART_OF,
  INTERNAL_SERVER,
  LABELS,
  SNAPSHOT_LAYOUT,
  SNAPSHOT_TAG,
  type BackupMetadata,
  type BackupStage,
  type CheCluster,
  type CheClusterBackupSpec,
} from './types.js';
import { withTimeout } from './util.js';

/** What to do when the CheCluster uses an external database, which restic-ts cannot reach. */
export type ExternalDatabasePolicy = 'refuse' | 'skip';

export interface CollectOptions {
  namespace: string;
  /** Empty directory the files are written to. */
  stagingDir: string;
  /** Default 'refuse': a backup without the database would restore an empty Che (che#20851). */
  externalDatabase?: ExternalDatabasePolicy;
  timeouts?: Partial<CheTimeouts>;
  signal?: AbortSignal;
  now?: () => Date;
}

export interface CollectResult {
  metadata: BackupMetadata;
  cheCluster: CheCluster;
  /** Names of the dumped databases. */
  databases: string[];
  configMaps: string[];
  secrets: string[];
}

/**
 * Collects the Che installation of a namespace into `stagingDir`: che-cr.yaml, db/<db>.sql, configmaps/,
 * secrets/ and backup-info.yaml (the layout che-operator used). Refuses an external database unless told to skip it.
 */
export async function collectCheData(kube: CheKube, options: CollectOptions): Promise<CollectResult> {
  const { namespace, stagingDir, signal } = options;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const now = options.now ?? (() => new Date());

  const cr = await findCheCluster(kube, namespace, signal);
  if (!cr) throw new UsageError(`no CheCluster in namespace '${namespace}': nothing to back up`);

  await mkdir(stagingDir, { recursive: true, mode: 0o700 });
  const yaml = (obj: unknown) => dump(obj, { noRefs: true, lineWidth: -1, sortKeys: false });
  const cheCluster = portableObject(cr, CHE_API_VERSION, 'CheCluster') as unknown as CheCluster;
  await writeFile(join(stagingDir, SNAPSHOT_LAYOUT.cheCluster), yaml(cheCluster), { mode: 0o600 });

  // Databases.
  const databases: string[] = [];
  const dbDir = join(stagingDir, SNAPSHOT_LAYOUT.databases);
  await mkdir(dbDir, { mode: 0o700 });
  if (cr.spec?.database?.externalDb) {
    if ((options.externalDatabase ?? 'refuse') === 'refuse') {
      throw new UsageError(
        `CheCluster '${cr.metadata.name}' uses an external database (spec.database.externalDb: true), which restic-ts cannot dump; back it up with the database's own tools and allow a backup without it (externalDatabase: 'skip')`,
      );
    }
  } else {
    const cheDb = cheDatabaseName(cr);
    const pod = await postgresPod(kube, namespace, timeouts.pod, signal);
    const ctx = { kube, namespace, pod, timeoutMs: timeouts.database, signal };
    const existing = await listDatabases({ ...ctx, timeoutMs: timeouts.api });
    if (!existing.includes(cheDb)) {
      throw new ResticError(`database '${cheDb}' (spec.database.chePostgresDb) does not exist on the postgres server of pod ${pod.metadata?.name}`);
    }
    // Keycloak's database exists only while Che runs its own Keycloak.
    const wanted = [cheDb, ...(existing.includes(KEYCLOAK_DB) && cheDb !== KEYCLOAK_DB ? [KEYCLOAK_DB] : [])];
    for (const db of wanted) {
      await dumpDatabase(ctx, db, join(dbDir, `${db}.sql`));
      databases.push(db);
    }
  }

  // CA bundles.
  const cmDir = join(stagingDir, SNAPSHOT_LAYOUT.configMaps);
  await mkdir(cmDir, { mode: 0o700 });
  const labelSelector = `${LABELS.partOf}=${CHE_PART_OF},${LABELS.component}=ca-bundle`;
  const cms = await kube.call('list CA bundle ConfigMaps', signal, (o) => kube.core.listNamespacedConfigMap({ namespace, labelSelector }, o));
  const configMaps: string[] = [];
  for (const cm of cms.items) {
    const name = cm.metadata?.name ?? '';
    await writeFile(join(cmDir, `${name}.yaml`), yaml(portableObject(cm, 'v1', 'ConfigMap')), { mode: 0o600 });
    configMaps.push(name);
  }

  // Credentials the CheCluster names.
  const secretDir = join(stagingDir, SNAPSHOT_LAYOUT.secrets);
  await mkdir(secretDir, { mode: 0o700 });
  const secrets: string[] = [];
  for (const { name, explicit, field } of cheSecretNames(cr)) {
    const secret = await kube.find(`read secret ${name}`, signal, (o) => kube.core.readNamespacedSecret({ name, namespace }, o));
    if (!secret) {
      if (explicit) throw new UsageError(`secret '${name}' (${field} of CheCluster '${cr.metadata.name}') not found in namespace '${namespace}'`);
      continue;
    }
    await writeFile(join(secretDir, `${name}.yaml`), yaml(portableObject(secret, 'v1', 'Secret')), { mode: 0o600 });
    secrets.push(name);
  }

  const metadata: BackupMetadata = {
    metadataFileVersion: 'v1',
    creationDate: now().toISOString(),
    cheVersion: cr.status?.cheVersion ?? '',
    infrastructure: 'Kubernetes',
    appsDomain: cr.spec?.k8s?.ingressDomain ?? '',
    namespace,
  };
  await writeFile(join(stagingDir, SNAPSHOT_LAYOUT.metadata), yaml(metadata), { mode: 0o600 });
  return { metadata, cheCluster, databases, configMaps, secrets };
}

export interface RunBackupOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The CheClusterBackup's spec. */
  spec: CheClusterBackupSpec;
  internalServer?: InternalServerOptions;
  externalDatabase?: ExternalDatabasePolicy;
  timeouts?: Partial<CheTimeouts>;
  signal?: AbortSignal;
  /** Called when a stage starts (the controller writes it to status.stage). */
  onStage?: (stage: BackupStage) => Promise<void> | void;
  now?: () => Date;
}

export interface RunBackupResult {
  snapshotId: string;
  cheVersion: string;
  /** The repository did not exist and was created. */
  repositoryCreated: boolean;
  /** Server location, password hidden. */
  location: string;
  collected: CollectResult;
}

/**
 * One backup: (internal server set-up,) repository open or init, data collection, snapshot upload. The
 * snapshot holds the collected files at its top, tagged `che` and the namespace, hostname = namespace.
 */
export async function runBackup(options: RunBackupOptions): Promise<RunBackupResult> {
  const { namespace, spec, signal } = options;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const kube = new CheKube(options.kubeConfig, timeouts.api);
  const stage = async (s: BackupStage) => options.onStage?.(s);

  let configRef = spec.backupServerConfigRef;
  if (spec.useInternalBackupServer) {
    await stage(BACKUP_STAGES.internalServer);
    await ensureInternalServer(kube, namespace, { ...options.internalServer, timeouts, signal });
    configRef = INTERNAL_SERVER.configuration;
  } else if (!configRef) {
    throw new UsageError('set spec.backupServerConfigRef or spec.useInternalBackupServer: true');
  }

  await stage(BACKUP_STAGES.repository);
  const config = await findServerConfiguration(kube, namespace, configRef, signal);
  const server = await resolveInCluster(kube, namespace, config, options.internalServer, signal);
  const opened = await withTimeout(`opening repository ${server.displayLocation}`, timeouts.repository, signal, () =>
    openServerRepository(server, { initIfMissing: true }),
  );
  const staging = await mkdtemp(join(tmpdir(), 'che-backup-'));
  try {
    await stage(BACKUP_STAGES.collect);
    const collected = await collectCheData(kube, {
      namespace,
      stagingDir: staging,
      externalDatabase: options.externalDatabase,
      timeouts,
      signal,
      now: options.now,
    });
    await stage(BACKUP_STAGES.send);
    const result = await withTimeout(`sending snapshot to ${server.displayLocation}`, timeouts.transfer, signal, () =>
      backup(opened.repo, { paths: ['.'], cwd: staging, hostname: namespace, tags: [SNAPSHOT_TAG, namespace] }),
    );
    return {
      snapshotId: result.snapshot.id,
      cheVersion: collected.metadata.cheVersion,
      repositoryCreated: opened.created,
      location: server.displayLocation,
      collected,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
    await opened.close().catch(() => undefined);
  }
}


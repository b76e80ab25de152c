import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkingV1Api, type KubeConfig, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import {
  listSnapshots,
  NotFoundError,
  ResticError,
  restore,
  UsageError,
  WrongPasswordError,
  type Repository,
  type Snapshot,
} from '../index.js';
import {
  cheDatabaseName,
  cheSecretNames,
  custom,
  DEFAULT_TIMEOUTS,
  findCheCluster,
  findServerConfiguration,
  portableObject,
  resolveInCluster,
  type CheTimeouts,
  type InternalServerOptions,
} from './common.js';
import { checkDatabaseName, clearRuntimeSql, KEYCLOAK_DB, loadDatabase, postgresPod, rewriteUrlsSql, URL_COLUMNS, type LoadDatabase } from './database.js';
import { CheKube, isNotFound } from './kube.js';
import { openServerRepository, type OpenedRepository, type ResolvedServer } from './server-config.js';
import {
  CHE_API_VERSION,
  LABELS,
  PLURALS,
  BACKUP_PART_OF,
  RESTORE_STAGES,
  SNAPSHOT_LAYOUT,
  SNAPSHOT_TAG,
  type BackupMetadata,
  type CheCluster,
  type CheClusterRestoreSpec,
  type RestoreStage,
} from './types.js';
import { errorMessage, poll, POLL_INTERVAL_MS, withTimeout } from './util.js';

/** A downloaded snapshot, checked and parsed, before anything in the cluster is touched. */
export interface BackupContent {
  dir: string;
  metadata: BackupMetadata;
  cheCluster: CheCluster;
  configMaps: V1ConfigMap[];
  secrets: V1Secret[];
  /** Database name → dump file. */
  dumps: Map<string, string>;
}

function parseYaml(text: string, file: string): unknown {
  try {
    return load(text);
  } catch (err) {
    throw new ResticError(`snapshot file ${file} is not valid YAML: ${errorMessage(err)}`);
  }
}

async function readYamlDir<T>(dir: string, kind: string, sub: string): Promise<T[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: T[] = [];
  for (const name of names) {
    const obj = parseYaml(await readFile(join(dir, name), 'utf8'), `${sub}/${name}`) as { kind?: unknown; metadata?: { name?: unknown } } | null;
    if (!obj || obj.kind !== kind || typeof obj.metadata?.name !== 'string') throw new ResticError(`snapshot file ${sub}/${name} is not a ${kind}`);
    out.push(obj as T);
  }
  return out;
}

/**
 * Reads and checks a restored snapshot folder: backup-info.yaml (metadataFileVersion v1) and che-cr.yaml must
 * be there, every YAML must parse, and a Che with its own database must come with that database's dump.
 */
export async function readBackupContent(dir: string): Promise<BackupContent> {
  const read = async (file: string) => {
    try {
      return await readFile(join(dir, file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ResticError(`the snapshot has no ${file}: not a Che backup`);
      throw err;
    }
  };
  const metadata = parseYaml(await read(SNAPSHOT_LAYOUT.metadata), SNAPSHOT_LAYOUT.metadata) as Partial<BackupMetadata> | null;
  if (!metadata || typeof metadata !== 'object') throw new ResticError(`snapshot file ${SNAPSHOT_LAYOUT.metadata} is empty`);
  if (metadata.metadataFileVersion !== 'v1') {
    throw new ResticError(`snapshot file ${SNAPSHOT_LAYOUT.metadata} has metadataFileVersion "${String(metadata.metadataFileVersion)}"; only v1 is known`);
  }
  const cheCluster = parseYaml(await read(SNAPSHOT_LAYOUT.cheCluster), SNAPSHOT_LAYOUT.cheCluster) as CheCluster | null;
  if (!cheCluster || (cheCluster as { kind?: unknown }).kind !== 'CheCluster' || typeof cheCluster.metadata?.name !== 'string') {
    throw new ResticError(`snapshot file ${SNAPSHOT_LAYOUT.cheCluster} is not a CheCluster`);
  }
  const dumps = new Map<string, string>();
  const dbDir = join(dir, SNAPSHOT_LAYOUT.databases);
  for (const name of await readdir(dbDir).catch(() => [] as string[])) {
    if (name.endsWith('.sql')) dumps.set(name.slice(0, -'.sql'.length), join(dbDir, name));
  }
  if (!cheCluster.spec?.database?.externalDb) {
    const cheDb = cheDatabaseName(cheCluster);
    const file = dumps.get(cheDb);
    if (!file) throw new ResticError(`the snapshot has no dump of database '${cheDb}' (${SNAPSHOT_LAYOUT.databases}/${cheDb}.sql)`);
    if ((await stat(file)).size === 0) throw new ResticError(`the dump of database '${cheDb}' in the snapshot is empty`);
  }
  for (const db of dumps.keys()) checkDatabaseName(db, `dump ${SNAPSHOT_LAYOUT.databases}/${db}.sql names a database`);
  return {
    dir,
    metadata: {
      metadataFileVersion: 'v1',
      creationDate: String(metadata.creationDate ?? ''),
      cheVersion: String(metadata.cheVersion ?? ''),
      infrastructure: String(metadata.infrastructure ?? ''),
      appsDomain: String(metadata.appsDomain ?? ''),
      namespace: String(metadata.namespace ?? ''),
    },
    cheCluster,
    configMaps: await readYamlDir<V1ConfigMap>(join(dir, SNAPSHOT_LAYOUT.configMaps), 'ConfigMap', SNAPSHOT_LAYOUT.configMaps),
    secrets: await readYamlDir<V1Secret>(join(dir, SNAPSHOT_LAYOUT.secrets), 'Secret', SNAPSHOT_LAYOUT.secrets),
    dumps,
  };
}

/**
 * The snapshot to restore: `ref` (id or unique prefix) when given; else the latest Che snapshot of `namespace`;
 * else the latest Che snapshot when all of them come from one namespace (restoring into a new namespace).
 */
export async function chooseSnapshot(repo: Repository, ref: string | undefined, namespace: string, where: string): Promise<Snapshot> {
  if (ref && ref !== 'latest') {
    try {
      return await repo.findSnapshot(ref);
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`snapshot '${ref}' not found in ${where}`);
      throw err;
    }
  }
  const all = await listSnapshots(repo, { tags: [SNAPSHOT_TAG] });
  if (all.length === 0) throw new NotFoundError(`no Che snapshot (tag '${SNAPSHOT_TAG}') in ${where}`);
  const mine = all.filter((s) => s.hostname === namespace);
  if (mine.length > 0) return mine[mine.length - 1]!;
  const hosts = [...new Set(all.map((s) => s.hostname ?? ''))].sort();
  if (hosts.length === 1) return all[all.length - 1]!;
  throw new UsageError(`${where} has no Che snapshot of namespace '${namespace}' but snapshots of ${hosts.join(', ')}: set spec.snapshotId`);
}

/** Replaces `from` with `to` in every string of a JSON value. */
function rewriteStrings(value: unknown, from: string, to: string): unknown {
  if (typeof value === 'string') return value.split(from).join(to);
  if (Array.isArray(value)) return value.map((v) => rewriteStrings(v, from, to));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteStrings(v, from, to)]));
  }
  return value;
}

/** Host suffixes of the backed-up and of the restored Che, e.g. `eclipse-che.192.168.49.2.nip.io`. */
export function hostSuffixes(metadata: BackupMetadata, namespace: string, appsDomain: string | undefined): { from: string; to: string } | undefined {
  const domain = metadata.appsDomain;
  if (!metadata.namespace || !domain) return undefined;
  return { from: `${metadata.namespace}.${domain}`, to: `${namespace}.${appsDomain || domain}` };
}

/**
 * The CheCluster to create: the backed-up one in the target namespace with status reset. Unlike che-operator,
 * cheHost and identityProviderURL are kept (che#20941); when the namespace or domain changes, every
 * `<old namespace>.<old domain>` in the spec becomes `<new namespace>.<new domain>`.
 */
export function adaptCheCluster(content: BackupContent, namespace: string, appsDomain?: string): CheCluster {
  const base = portableObject(content.cheCluster, CHE_API_VERSION, 'CheCluster') as unknown as CheCluster;
  let spec = base.spec ?? {};
  const hosts = hostSuffixes(content.metadata, namespace, appsDomain);
  if (hosts && hosts.from !== hosts.to) spec = rewriteStrings(spec, hosts.from, hosts.to) as CheCluster['spec'] & object;
  if (appsDomain) spec = { ...spec, k8s: { ...(spec.k8s ?? {}), ingressDomain: appsDomain } };
  return { ...base, metadata: { ...base.metadata, namespace }, spec };
}

/** Owner and password for a database's role, from the CheCluster and the credentials Secrets in the snapshot. */
function databaseOwner(content: BackupContent, db: string): { owner: string; password?: string } {
  const cr = content.cheCluster;
  const secretData = (name: string | undefined): Record<string, string> => {
    const s = content.secrets.find((x) => x.metadata?.name === name);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(s?.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    return out;
  };
  const names = cheSecretNames(cr);
  if (db === cheDatabaseName(cr)) {
    const secret = secretData(names.find((n) => n.field === 'spec.database.chePostgresSecret')?.name);
    const database = cr.spec?.database as { chePostgresUser?: string; chePostgresPassword?: string } | undefined;
    return { owner: database?.chePostgresUser || secret.user || 'pgche', password: database?.chePostgresPassword || secret.password };
  }
  if (db === KEYCLOAK_DB) {
    const secret = secretData(names.find((n) => n.field === 'spec.auth.identityProviderPostgresSecret')?.name);
    return { owner: secret.user || 'keycloak', password: secret.password };
  }
  return { owner: 'postgres' };
}

export interface RunRestoreOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The CheClusterRestore's spec. */
  spec: CheClusterRestoreSpec;
  /** A server given directly instead of spec.backupServerConfigRef (e.g. when the namespace, and its configuration, is gone). */
  server?: ResolvedServer;
  internalServer?: InternalServerOptions;
  /** Apps domain of this cluster when it differs from the backed-up one. */
  appsDomain?: string;
  timeouts?: Partial<CheTimeouts>;
  signal?: AbortSignal;
  onStage?: (stage: RestoreStage) => Promise<void> | void;
}

export interface RunRestoreResult {
  snapshotId: string;
  cheVersion: string;
  location: string;
  databases: string[];
}

const CHE_AVAILABLE = 'Available';

/**
 * One restore. Everything that can be checked is checked before the cluster is touched: the server, the password,
 * the snapshot and its content. Then: delete the CheCluster (and wait for its finalizers), delete Che's objects
 * (sparing backup objects), recreate ConfigMaps and Secrets, the CheCluster, wait until the operator reports
 * Available, load the databases, restart Che's Deployments and wait again. Every wait is bounded.
 */
export async function runRestore(options: RunRestoreOptions): Promise<RunRestoreResult> {
  const { namespace, spec, signal } = options;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const kube = new CheKube(options.kubeConfig, timeouts.api);
  const stage = async (s: RestoreStage) => options.onStage?.(s);

  await stage(RESTORE_STAGES.download);
  const server =
    options.server ??
    (await resolveInCluster(kube, namespace, await findServerConfiguration(kube, namespace, spec.backupServerConfigRef, signal), options.internalServer, signal));
  const where = server.displayLocation;
  let opened: OpenedRepository;
  try {
    opened = await withTimeout(`opening repository ${where}`, timeouts.repository, signal, () => openServerRepository(server));
  } catch (err) {
    if (err instanceof WrongPasswordError) throw new WrongPasswordError();
    if (err instanceof NotFoundError) throw new NotFoundError(`no restic repository at ${where}`);
    throw err;
  }
  const staging = await mkdtemp(join(tmpdir(), 'che-restore-'));
  try {
    const snapshot = await chooseSnapshot(opened.repo, spec.snapshotId, namespace, where);
    await withTimeout(`downloading snapshot ${snapshot.id.slice(0, 8)} from ${where}`, timeouts.transfer, signal, () =>
      restore(opened.repo, { snapshot: snapshot.id, target: staging }),
    );
    const content = await readBackupContent(staging);
    const cheCluster = adaptCheCluster(content, namespace, options.appsDomain);

    await ensureNamespace(kube, namespace, signal);
    await stage(RESTORE_STAGES.deleteCheCluster);
    const existing = await findCheCluster(kube, namespace, signal).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (existing) await deleteCheCluster(kube, namespace, existing, timeouts.finalizers, signal);

    await stage(RESTORE_STAGES.cleanup);
    const flavor = String(existing?.spec?.server?.cheFlavor || cheCluster.spec?.server?.cheFlavor || 'che');
    await deleteCheObjects(kube, namespace, flavor, signal);

    await stage(RESTORE_STAGES.objects);
    for (const cm of content.configMaps) await recreate(kube, namespace, 'ConfigMap', cm, signal);
    for (const secret of content.secrets) await recreate(kube, namespace, 'Secret', secret, signal);

    await stage(RESTORE_STAGES.cheCluster);
    const name = cheCluster.metadata.name!;
    await kube.call(`create CheCluster ${name}`, signal, (o) =>
      kube.custom.createNamespacedCustomObject({ ...custom(namespace, PLURALS.cheCluster), body: cheCluster }, o),
    );

    await stage(RESTORE_STAGES.waitClean);
    await waitCheAvailable(kube, namespace, name, timeouts.cheAvailable, signal);

    await stage(RESTORE_STAGES.database);
    const databases = [...content.dumps.keys()].sort();
    if (databases.length > 0) {
      const pod = await postgresPod(kube, namespace, timeouts.pod, signal);
      const ctx = { kube, namespace, pod, timeoutMs: timeouts.database, signal };
      const hosts = hostSuffixes(content.metadata, namespace, options.appsDomain);
      for (const db of databases) {
        const { owner, password } = databaseOwner(content, db);
        const isChe = db === cheDatabaseName(cheCluster);
        const columns = isChe ? URL_COLUMNS.che : db === KEYCLOAK_DB ? URL_COLUMNS.keycloak : [];
        const job: LoadDatabase = {
          db,
          fallbackOwner: owner,
          dumpFile: content.dumps.get(db)!,
          afterSql: (isChe ? clearRuntimeSql() : '') + (hosts ? rewriteUrlsSql(columns, hosts.from, hosts.to) : ''),
        };
        if (password !== undefined) job.ownerPassword = password;
        await loadDatabase(ctx, job);
      }
    }

    await stage(RESTORE_STAGES.waitReady);
    // Che and Keycloak cache database content: restart them on the restored data.
    const restarted = await restartCheDeployments(kube, namespace, flavor, signal);
    await waitCheReady(kube, namespace, name, restarted, timeouts.cheAvailable, signal);
    return { snapshotId: snapshot.id, cheVersion: content.metadata.cheVersion, location: where, databases };
  } finally {
    await rm(staging, { recursive: true, force: true });
    await opened.close().catch(() => undefined);
  }
}

async function ensureNamespace(kube: CheKube, namespace: string, signal?: AbortSignal): Promise<void> {
  const ns = await kube.find(`read namespace ${namespace}`, signal, (o) => kube.core.readNamespace({ name: namespace }, o));
  if (ns?.metadata?.deletionTimestamp) throw new ResticError(`namespace '${namespace}' is being deleted; restore once it is gone`);
  if (!ns) {
    await kube.call(`create namespace ${namespace}`, signal, (o) =>
      kube.core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } } }, o),
    );
  }
}

async function deleteCheCluster(kube: CheKube, namespace: string, cr: CheCluster, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const name = cr.metadata.name!;
  const where = { ...custom(namespace, PLURALS.cheCluster), name };
  await kube.find(`delete CheCluster ${name}`, signal, (o) => kube.custom.deleteNamespacedCustomObject(where, o));
  let finalizers: string[] = cr.metadata.finalizers ?? [];
  await poll(
    `waiting for CheCluster '${name}' to be deleted`,
    { timeoutMs, intervalMs: POLL_INTERVAL_MS, signal },
    async (s) => {
      const left = (await kube.find(`read CheCluster ${name}`, s, (o) => kube.custom.getNamespacedCustomObject(where, o))) as CheCluster | undefined;
      if (!left) return true;
      finalizers = left.metadata.finalizers ?? [];
      return undefined;
    },
    () => (finalizers.length ? `finalizers left: ${finalizers.join(', ')}; is the Che operator running?` : 'still present'),
  );
}

/**
 * Deletes Che's objects the way che-operator selected them (name and instance = flavor), sparing backup objects and
 * the operator's own Deployment. Kinds the cluster does not serve (Ingresses, Routes) are skipped.
 */
async function deleteCheObjects(kube: CheKube, namespace: string, flavor: string, signal?: AbortSignal): Promise<void> {
  const labelSelector = `${LABELS.name}=${flavor},${LABELS.instance}=${flavor},${LABELS.partOf}!=${BACKUP_PART_OF}`;
  const deployments = await kube.call('list Che deployments', signal, (o) => kube.apps.listNamespacedDeployment({ namespace, labelSelector }, o));
  for (const d of deployments.items) {
    const name = d.metadata?.name ?? '';
    if (name.includes(`${flavor}-operator`)) continue;
    await kube.find(`delete deployment ${name}`, signal, (o) => kube.apps.deleteNamespacedDeployment({ name, namespace }, o));
  }
  await kube.call('delete Che secrets', signal, (o) => kube.core.deleteCollectionNamespacedSecret({ namespace, labelSelector }, o));
  await kube.call('delete Che config maps', signal, (o) => kube.core.deleteCollectionNamespacedConfigMap({ namespace, labelSelector }, o));
  await kube.call('delete Che PVCs', signal, (o) => kube.core.deleteCollectionNamespacedPersistentVolumeClaim({ namespace, labelSelector }, o));
  const networking = kube.kubeConfig.makeApiClient(NetworkingV1Api);
  await kube.find('delete Che ingresses', signal, (o) => networking.deleteCollectionNamespacedIngress({ namespace, labelSelector }, o));
  await kube.find('delete Che routes', signal, (o) =>
    kube.custom.deleteCollectionNamespacedCustomObject({ group: 'route.openshift.io', version: 'v1', namespace, plural: 'routes', labelSelector }, o),
  );
}

/** Creates a ConfigMap or Secret from the snapshot, replacing one of the same name. */
async function recreate(kube: CheKube, namespace: string, kind: 'ConfigMap' | 'Secret', obj: V1ConfigMap | V1Secret, signal?: AbortSignal): Promise<void> {
  const body = portableObject(obj, 'v1', kind) as { metadata: { name: string; namespace?: string; resourceVersion?: string } };
  body.metadata.namespace = namespace;
  const name = body.metadata.name;
  const isSecret = kind === 'Secret';
  const existing = isSecret
    ? await kube.find(`read secret ${name}`, signal, (o) => kube.core.readNamespacedSecret({ name, namespace }, o))
    : await kube.find(`read config map ${name}`, signal, (o) => kube.core.readNamespacedConfigMap({ name, namespace }, o));
  if (existing) {
    body.metadata.resourceVersion = existing.metadata?.resourceVersion;
    if (isSecret) await kube.call(`replace secret ${name}`, signal, (o) => kube.core.replaceNamespacedSecret({ name, namespace, body: body as V1Secret }, o));
    else await kube.call(`replace config map ${name}`, signal, (o) => kube.core.replaceNamespacedConfigMap({ name, namespace, body: body as V1ConfigMap }, o));
  } else if (isSecret) {
    await kube.call(`create secret ${name}`, signal, (o) => kube.core.createNamespacedSecret({ namespace, body: body as V1Secret }, o));
  } else {
    await kube.call(`create config map ${name}`, signal, (o) => kube.core.createNamespacedConfigMap({ namespace, body: body as V1ConfigMap }, o));
  }
}

async function waitCheAvailable(kube: CheKube, namespace: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  let seen = 'no status yet';
  await poll(
    `waiting for CheCluster '${name}' to become ${CHE_AVAILABLE}`,
    { timeoutMs, intervalMs: POLL_INTERVAL_MS, signal },
    async (s) => {
      const cr = (await kube.find(`read CheCluster ${name}`, s, (o) =>
        kube.custom.getNamespacedCustomObject({ ...custom(namespace, PLURALS.cheCluster), name }, o),
      )) as CheCluster | undefined;
      if (!cr) throw new ResticError(`CheCluster '${name}' disappeared while waiting for it`);
      seen = `status.cheClusterRunning: ${cr.status?.cheClusterRunning ?? 'unset'}`;
      return cr.status?.cheClusterRunning === CHE_AVAILABLE ? true : undefined;
    },
    () => seen,
  );
}

/** Rolls Che's Deployments except postgres (as `kubectl rollout restart` does); returns their names. */
async function restartCheDeployments(kube: CheKube, namespace: string, flavor: string, signal?: AbortSignal): Promise<string[]> {
  const labelSelector = `${LABELS.name}=${flavor},${LABELS.instance}=${flavor},${LABELS.partOf}!=${BACKUP_PART_OF},component!=postgres`;
  const list = await kube.call('list Che deployments', signal, (o) => kube.apps.listNamespacedDeployment({ namespace, labelSelector }, o));
  const names: string[] = [];
  const at = new Date().toISOString();
  for (const d of list.items) {
    const name = d.metadata?.name ?? '';
    if (name.includes(`${flavor}-operator`)) continue;
    await kube.call(
      `restart deployment ${name}`,
      signal,
      (o) =>
        kube.apps.patchNamespacedDeployment(
          { name, namespace, body: { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': at } } } } } },
          o,
        ),
      true,
    );
    names.push(name);
  }
  return names;
}

async function waitCheReady(kube: CheKube, namespace: string, name: string, deployments: string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  let seen = '';
  await poll(
    `waiting for Che to be ready again`,
    { timeoutMs, intervalMs: POLL_INTERVAL_MS, signal },
    async (s) => {
      const cr = (await kube.find(`read CheCluster ${name}`, s, (o) =>
        kube.custom.getNamespacedCustomObject({ ...custom(namespace, PLURALS.cheCluster), name }, o),
      )) as CheCluster | undefined;
      if (cr?.status?.cheClusterRunning !== CHE_AVAILABLE) {
        seen = `CheCluster status.cheClusterRunning: ${cr?.status?.cheClusterRunning ?? 'unset'}`;
        return undefined;
      }
      for (const d of deployments) {
        const dep = await kube.find(`read deployment ${d}`, s, (o) => kube.apps.readNamespacedDeployment({ name: d, namespace }, o));
        const want = dep?.spec?.replicas ?? 1;
        const generationSeen = (dep?.status?.observedGeneration ?? 0) >= (dep?.metadata?.generation ?? 0);
        if (!dep || !generationSeen || (dep.status?.updatedReplicas ?? 0) < want || (dep.status?.availableReplicas ?? 0) < want) {
          seen = `deployment ${d}: ${dep ? `${dep.status?.availableReplicas ?? 0}/${want} available` : 'missing'}`;
          return undefined;
        }
      }
      return true;
    },
    () => seen,
  );
}

import { UsageError } from '../index.js';
import { checkDatabaseName, DEFAULT_CHE_DB } from './database.js';
import { isNotFound, type CheKube } from './kube.js';
import { resolveServerConfig, type ResolvedServer } from './server-config.js';
import { CHE_GROUP, CHE_VERSION, INTERNAL_SERVER, PLURALS, type CheBackupServerConfiguration, type CheCluster, type ObjectMeta } from './types.js';

/** Time limits of the steps of a backup or restore, in milliseconds. */
export interface CheTimeouts {
  /** One Kubernetes API call. */
  api: number;
  /** Opening or creating the repository (includes connecting to the server). */
  repository: number;
  /** Uploading or downloading one snapshot. */
  transfer: number;
  /** One pg_dump or one database load. */
  database: number;
  /** Waiting for a running postgres pod. */
  pod: number;
  /** Waiting for the old CheCluster's finalizers. */
  finalizers: number;
  /** Waiting for Che to report Available. */
  cheAvailable: number;
  /** Waiting for the internal backup server to answer. */
  internalServer: number;
}

export const DEFAULT_TIMEOUTS: CheTimeouts = {
  api: 30_000,
  repository: 120_000,
  transfer: 30 * 60_000,
  database: 15 * 60_000,
  pod: 5 * 60_000,
  finalizers: 5 * 60_000,
  cheAvailable: 15 * 60_000,
  internalServer: 5 * 60_000,
};

export interface InternalServerOptions {
  /**
   * URL (scheme, host, port) the controller itself reaches the internal server at, e.g. when it runs outside the
   * cluster network; default the Service's in-cluster address.
   */
  url?: (namespace: string) => string;
  /** Image with the restic-ts CLI on PATH. */
  image?: string;
  /** Size of the server's PVC (default 10Gi). */
  storage?: string;
}

export const custom = (namespace: string, plural: string) => ({ group: CHE_GROUP, version: CHE_VERSION, namespace, plural });

/** The CheBackupServerConfiguration `ref` names, or the only one of the namespace when `ref` is empty. */
export async function findServerConfiguration(kube: CheKube, namespace: string, ref: string | undefined, signal?: AbortSignal): Promise<CheBackupServerConfiguration> {
  const where = custom(namespace, PLURALS.backupServerConfiguration);
  if (ref) {
    try {
      return (await kube.call(`read CheBackupServerConfiguration ${ref}`, signal, (o) =>
        kube.custom.getNamespacedCustomObject({ ...where, name: ref }, o),
      )) as CheBackupServerConfiguration;
    } catch (err) {
      if (isNotFound(err)) throw new UsageError(`CheBackupServerConfiguration '${ref}' not found in namespace '${namespace}'`);
      throw err;
    }
  }
  const list = (await kube.call('list CheBackupServerConfigurations', signal, (o) => kube.custom.listNamespacedCustomObject(where, o))) as {
    items: CheBackupServerConfiguration[];
  };
  if (list.items.length !== 1) {
    throw new UsageError(
      `spec.backupServerConfigRef is not set and namespace '${namespace}' has ${list.items.length} CheBackupServerConfigurations: name the one to use`,
    );
  }
  return list.items[0]!;
}

/** Resolves a configuration against the Secrets of its namespace; the internal server is reached at `internal.url` when given. */
export function resolveInCluster(
  kube: CheKube,
  namespace: string,
  config: CheBackupServerConfiguration,
  internal: InternalServerOptions | undefined,
  signal?: AbortSignal,
): Promise<ResolvedServer> {
  const restBaseUrl = config.metadata.name === INTERNAL_SERVER.configuration && internal?.url ? internal.url(namespace) : undefined;
  return resolveServerConfig(config, (name) => kube.readSecretData(namespace, name, signal), { restBaseUrl });
}

/** The namespace's CheCluster; UsageError when there is none or more than one. */
export async function findCheCluster(kube: CheKube, namespace: string, signal?: AbortSignal): Promise<CheCluster | undefined> {
  const list = (await kube.call('list CheClusters', signal, (o) => kube.custom.listNamespacedCustomObject(custom(namespace, PLURALS.cheCluster), o))) as {
    items: CheCluster[];
  };
  if (list.items.length > 1) {
    throw new UsageError(`namespace '${namespace}' has ${list.items.length} CheClusters (${list.items.map((c) => c.metadata.name).join(', ')}); expected one`);
  }
  return list.items[0];
}

/** Metadata the API server sets; meaningless in another cluster or namespace. */
const SERVER_SET_METADATA: ReadonlyArray<keyof ObjectMeta | 'selfLink'> = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'managedFields',
  'finalizers',
  'ownerReferences',
  'selfLink',
];

/** A plain-JSON copy of a Kubernetes object without server-set metadata and status. */
export function portableObject<T extends { metadata?: object }>(obj: T, apiVersion: string, kind: string): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(obj)) as Record<string, unknown> & { metadata?: Record<string, unknown> };
  const metadata = { ...(copy.metadata ?? {}) };
  for (const key of SERVER_SET_METADATA) delete metadata[key];
  if (metadata.annotations && Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
  delete copy.status;
  return { apiVersion, kind, ...copy, metadata };
}

const DEFAULT_SECRETS = {
  chePostgresSecret: 'che-postgres-secret',
  identityProviderPostgresSecret: 'che-identity-postgres-secret',
  identityProviderSecret: 'che-identity-secret',
} as const;

/** The secrets a CheCluster names, with whether the name is explicit (then the Secret must exist). */
export function cheSecretNames(cr: CheCluster): { name: string; explicit: boolean; field: string }[] {
  const entries: [string, string | undefined, string][] = [
    ['spec.database.chePostgresSecret', cr.spec?.database?.chePostgresSecret, DEFAULT_SECRETS.chePostgresSecret],
    ['spec.auth.identityProviderPostgresSecret', cr.spec?.auth?.identityProviderPostgresSecret, DEFAULT_SECRETS.identityProviderPostgresSecret],
    ['spec.auth.identityProviderSecret', cr.spec?.auth?.identityProviderSecret, DEFAULT_SECRETS.identityProviderSecret],
  ];
  const seen = new Set<string>();
  const out: { name: string; explicit: boolean; field: string }[] = [];
  for (const [field, given, fallback] of entries) {
    const name = given || fallback;
    if (seen.has(name)) continue;
    seen.add(name);
    out.push({ name, explicit: Boolean(given), field });
  }
  return out;
}

export function cheDatabaseName(cr: CheCluster): string {
  return checkDatabaseName(cr.spec?.database?.chePostgresDb || DEFAULT_CHE_DB, 'spec.database.chePostgresDb');
}

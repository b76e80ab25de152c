// What chectl's `server:backup` / `server:restore` do against the cluster, as a library: turn the user's
// repository URL and credentials into a CheBackupServerConfiguration plus Secrets (kept for the next run),
// create the CheClusterBackup / CheClusterRestore CR (re-created when present: only creation triggers
// work) and follow its status until it ends, bounded by a timeout (upstream chectl waited forever).
import { ApiException, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { ResticError, UsageError } from '../../index.js';
import {
  BACKUP_PART_OF,
  CHE_API_VERSION,
  CHE_GROUP,
  CHE_VERSION,
  LABELS,
  PLURALS,
  SECRET_KEYS,
  type CheBackupServerConfiguration,
  type CheBackupServerConfigurationSpec,
  type CheClusterBackup,
  type CheClusterRestore,
  type OperationStatus,
} from '../types.js';
import { apiMessage, isApiStatus, kubeClients, orNotFound, sleep, type KubeClients } from './kube.js';

export const BACKUP_CR_NAME = 'eclipse-che-backup';
export const RESTORE_CR_NAME = 'eclipse-che-restore';
export const BACKUP_SERVER_CONFIG_NAME = 'eclipse-che-backup-server-config';
export const CHECTL_SECRETS = {
  repoPassword: 'chectl-backup-repository-password',
  restCredentials: 'chectl-backup-rest-server-credentials',
  aws: 'chectl-aws-credentials',
  sshKey: 'chectl-backup-sftp-server-key',
} as const;
export const DEFAULT_CHE_NAMESPACE = 'eclipse-che';
export const DEFAULT_TIMEOUT_MS = 30 * 60_000;

/** The backup server as the user gives it (chectl's flags). */
export interface BackupServerInput {
  /** restic repository URL: `rest:…`, `s3:…` or `sftp:…`. */
  repositoryUrl?: string;
  repositoryPassword?: string;
  /** REST server credentials (may also be in the URL as user:password@). */
  username?: string;
  password?: string;
  awsAccessKeyId?: string;
  awsSecretAccessKey?: string;
  /** SFTP private key text (PEM / OpenSSH). */
  sshKey?: string;
  /** Known-hosts lines for the SFTP server's key, stored with the key (not a chectl flag; our addition). */
  sshKnownHosts?: string;
  /** Use this existing CheBackupServerConfiguration instead of a URL. */
  backupServerConfigName?: string;
  /** Receives one line per ignored input. */
  onWarning?: (message: string) => void;
}

export interface CheOperationOptions extends BackupServerInput {
  kubeConfig: KubeConfig;
  /** Che's namespace (default eclipse-che). */
  namespace?: string;
  /** Bound on the whole operation (default 30 min). */
  timeoutMs?: number;
  /** Status poll interval (default 500 ms). */
  pollIntervalMs?: number;
  signal?: AbortSignal;
  /** Called whenever the CR's state, stage or message changes. */
  onProgress?: (status: OperationStatus) => void;
}

export interface CheRestoreOptions extends CheOperationOptions {
  /** Snapshot id, unique prefix or `latest` (default latest). */
  snapshotId?: string;
  /** Restore what this (successful) CheClusterBackup saved, from its server configuration. */
  backupCrName?: string;
}

export interface CheOperationResult {
  /** Name of the backup/restore CR that did the work. */
  name: string;
  /** Its server configuration, or undefined for the internal backup server. */
  backupServerConfigRef?: string;
  status: OperationStatus;
}

/** Thrown when the CR ends in state Failed; `status` holds what the controller reported. */
export class CheOperationFailedError extends ResticError {
  override name = 'CheOperationFailedError';
  constructor(
    message: string,
    readonly status: OperationStatus,
  ) {
    super(message);
  }
}

interface ParsedUrl {
  spec: CheBackupServerConfigurationSpec;
  /** REST credentials found in the URL. */
  credentials?: { username: string; password: string };
}

const secretLabels = { [LABELS.partOf]: BACKUP_PART_OF, [LABELS.managedBy]: 'chectl' };

function port(raw: string | undefined, url: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`invalid port "${raw}" in repository URL '${url}'`);
  return n;
}

/**
 * Parses a restic repository URL into the configuration chectl would create, with the secrets named as chectl
 * names them. Accepts chectl's forms: `rest:[//][http(s)://][user:pass@]host[:port][/path]`,
 * `s3:[//][http(s)://][host][:port]/bucket[/prefix]`, `sftp:user@host:path` and `sftp://user@host:port//abs/path`.
 */
export function parseRepositoryUrl(url: string): ParsedUrl {
  const secretRef = CHECTL_SECRETS.repoPassword;
  let m: RegExpExecArray | null;
  if (url.startsWith('rest:')) {
    m = /^rest:(?:\/\/)?(?:(https?):\/\/)?(?:([^@/]*)@)?([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]*))?(?:\/(.*))?$/.exec(url);
    if (!m) throw new UsageError(`invalid REST repository URL '${redact(url)}': use rest:http(s)://[user:password@]host[:port]/path`);
    const [, protocol, credentials, hostname, rawPort, path] = m;
    const parsed: ParsedUrl = {
      spec: { rest: { hostname: hostname!, repositoryPasswordSecretRef: secretRef, ...(protocol ? { protocol } : {}), ...opt('port', port(rawPort, url)), ...opt('repositoryPath', path || undefined) } },
    };
    if (credentials !== undefined) {
      const colon = credentials.indexOf(':');
      if (colon < 0) throw new UsageError(`invalid REST repository URL '${redact(url)}': credentials must be user:password`);
      parsed.credentials = { username: decodeURIComponent(credentials.slice(0, colon)), password: decodeURIComponent(credentials.slice(colon + 1)) };
    }
    return parsed;
  }
  if (url.startsWith('s3:')) {
    m = /^s3:(?:\/\/)?(?:(https?):\/\/)?([A-Za-z0-9_.-]+)?(?::([0-9]*))?\/(.+)$/.exec(url);
    if (!m) throw new UsageError(`invalid S3 repository URL '${url}': use s3:[http(s)://]host[:port]/bucket[/path]`);
    const [, protocol, hostname, rawPort, path] = m;
    return {
      spec: {
        awss3: {
          repositoryPath: path!,
          repositoryPasswordSecretRef: secretRef,
          awsAccessKeySecretRef: CHECTL_SECRETS.aws,
          ...opt('protocol', protocol),
          ...opt('hostname', hostname),
          ...opt('port', port(rawPort, url)),
        },
      },
    };
  }
  if (url.startsWith('sftp:')) {
    // URL form (port allowed): sftp://user@host[:port]/path, where "//abs" is an absolute path.
    m = /^sftp:\/\/([^@/:\s]+)@([A-Za-z0-9_.-]+)(?::([0-9]+))?\/(.+)$/.exec(url) ?? /^sftp:([^@/:\s]+)@([A-Za-z0-9_.-]+):()(.+)$/.exec(url);
    if (!m) throw new UsageError(`invalid SFTP repository URL '${url}': use sftp:user@host:/path or sftp://user@host:port//path`);
    const [, username, hostname, rawPort, path] = m;
    return {
      spec: {
        sftp: {
          username: username!,
          hostname: hostname!,
          repositoryPath: path!,
          repositoryPasswordSecretRef: secretRef,
          sshKeySecretRef: CHECTL_SECRETS.sshKey,
          ...opt('port', port(rawPort, url)),
        },
      },
    };
  }
  throw new UsageError(`unrecognized backup server protocol in '${redact(url)}': use rest:, s3: or sftp:`);
}

function opt<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** The URL with any password replaced, for messages. */
function redact(url: string): string {
  return url.replace(/(\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

function secret(ns: string, name: string, data: Record<string, string>): V1Secret {
  const encoded = Object.fromEntries(Object.entries(data).map(([key, v]) => [key, Buffer.from(v, 'utf8').toString('base64')]));
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns, labels: secretLabels }, type: 'Opaque', data: encoded };
}

async function upsertSecret(k: KubeClients, body: V1Secret): Promise<void> {
  const { name, namespace } = body.metadata as { name: string; namespace: string };
  // Delete then create (as chectl did): replacing would keep keys the new data no longer has.
  await orNotFound(k.core.deleteNamespacedSecret({ name, namespace }));
  await k.core.createNamespacedSecret({ namespace, body });
}

async function ensureNamespace(k: KubeClients, namespace: string): Promise<void> {
  if (await orNotFound(k.core.readNamespace({ name: namespace }))) return;
  try {
    await k.core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } } });
  } catch (e) {
    if (!isApiStatus(e, 409)) throw e;
  }
}

/**
 * Creates or replaces chectl's configuration CR and its Secrets from a repository URL and credentials; returns
 * the configuration's name. Validation (which credentials each kind needs) happens before anything is written.
 */
async function writeServerConfig(k: KubeClients, namespace: string, input: BackupServerInput & { repositoryUrl: string }): Promise<string> {
  if (!input.repositoryPassword) throw new UsageError('--repository-password (BACKUP_REPOSITORY_PASSWORD) is required with --repository-url');
  const parsed = parseRepositoryUrl(input.repositoryUrl);
  const secrets: V1Secret[] = [secret(namespace, CHECTL_SECRETS.repoPassword, { [SECRET_KEYS.repoPassword]: input.repositoryPassword })];
  // As chectl: credentials of another server kind (often ambient AWS_* variables) are ignored with a warning.
  const ignored = (keep: string[]): void => {
    const given = { username: input.username, password: input.password, 'aws-access-key-id': input.awsAccessKeyId, 'aws-secret-access-key': input.awsSecretAccessKey, 'ssh-key': input.sshKey };
    const extra = Object.entries(given).filter(([flag, v]) => v && !keep.includes(flag)).map(([flag]) => `--${flag}`);
    if (extra.length) input.onWarning?.(`${extra.join(', ')} ignored: ${extra.length > 1 ? 'they do' : 'it does'} not apply to a ${Object.keys(parsed.spec)[0]} repository`);
  };
  if (parsed.spec.rest) {
    ignored(['username', 'password']);
    const fromFlags = input.username !== undefined || input.password !== undefined;
    if (fromFlags && (!input.username || !input.password)) throw new UsageError('--username and --password (REST_SERVER_USERNAME/REST_SERVER_PASSWORD) go together');
    if (fromFlags && parsed.credentials) throw new UsageError('REST credentials given both in the repository URL and as --username/--password');
    const credentials = fromFlags ? { username: input.username!, password: input.password! } : parsed.credentials;
    if (credentials) {
      parsed.spec.rest.credentialsSecretRef = CHECTL_SECRETS.restCredentials;
      secrets.push(secret(namespace, CHECTL_SECRETS.restCredentials, { [SECRET_KEYS.username]: credentials.username, [SECRET_KEYS.password]: credentials.password }));
    }
  } else if (parsed.spec.awss3) {
    ignored(['aws-access-key-id', 'aws-secret-access-key']);
    if (!input.awsAccessKeyId || !input.awsSecretAccessKey)
      throw new UsageError('an S3 repository needs --aws-access-key-id and --aws-secret-access-key (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)');
    secrets.push(secret(namespace, CHECTL_SECRETS.aws, { [SECRET_KEYS.awsAccessKeyId]: input.awsAccessKeyId, [SECRET_KEYS.awsSecretAccessKey]: input.awsSecretAccessKey }));
  } else if (parsed.spec.sftp) {
    ignored(['ssh-key']);
    if (!input.sshKey) throw new UsageError('an SFTP repository needs --ssh-key or --ssh-key-file (SSH_KEY/SSH_KEY_FILE)');
    const data: Record<string, string> = { [SECRET_KEYS.sshPrivateKey]: input.sshKey.endsWith('\n') ? input.sshKey : `${input.sshKey}\n` };
    if (input.sshKnownHosts) data[SECRET_KEYS.knownHosts] = input.sshKnownHosts;
    secrets.push(secret(namespace, CHECTL_SECRETS.sshKey, data));
  }

  for (const s of secrets) await upsertSecret(k, s);
  const body: CheBackupServerConfiguration = {
    apiVersion: CHE_API_VERSION,
    kind: 'CheBackupServerConfiguration',
    metadata: { name: BACKUP_SERVER_CONFIG_NAME, namespace, labels: secretLabels },
    spec: parsed.spec,
  };
  const group = { group: CHE_GROUP, version: CHE_VERSION, namespace, plural: PLURALS.backupServerConfiguration };
  const existing = (await orNotFound(k.custom.getNamespacedCustomObject({ ...group, name: BACKUP_SERVER_CONFIG_NAME }))) as CheBackupServerConfiguration | undefined;
  if (existing) {
    body.metadata.resourceVersion = existing.metadata.resourceVersion;
    await k.custom.replaceNamespacedCustomObject({ ...group, name: BACKUP_SERVER_CONFIG_NAME, body });
  } else {
    await k.custom.createNamespacedCustomObject({ ...group, body });
  }
  return BACKUP_SERVER_CONFIG_NAME;
}

/**
 * Which configuration to use: the named one (must exist), one written from the URL, else the only existing one
 * (or chectl's among several); undefined when there is none.
 */
async function chooseServerConfig(k: KubeClients, namespace: string, input: BackupServerInput): Promise<string | undefined> {
  const group = { group: CHE_GROUP, version: CHE_VERSION, namespace, plural: PLURALS.backupServerConfiguration };
  if (input.backupServerConfigName) {
    if (input.repositoryUrl) throw new UsageError('--backup-server-config-name and --repository-url exclude each other');
    const found = await orNotFound(k.custom.getNamespacedCustomObject({ ...group, name: input.backupServerConfigName }));
    if (!found) throw new UsageError(`backup server configuration '${input.backupServerConfigName}' not found in namespace '${namespace}'`);
    return input.backupServerConfigName;
  }
  if (input.repositoryUrl) return writeServerConfig(k, namespace, { ...input, repositoryUrl: input.repositoryUrl });
  if (input.repositoryPassword) throw new UsageError('--repository-password needs --repository-url (BACKUP_REPOSITORY_URL)');
  const list = (await orNotFound(k.custom.listNamespacedCustomObject(group))) as { items: CheBackupServerConfiguration[] } | undefined;
  const names = (list?.items ?? []).map((c) => c.metadata.name!).sort();
  if (names.length <= 1) return names[0];
  if (names.includes(BACKUP_SERVER_CONFIG_NAME)) return BACKUP_SERVER_CONFIG_NAME;
  throw new UsageError(`${names.length} backup server configurations in '${namespace}' (${names.join(', ')}): choose one with --backup-server-config-name`);
}

/** Deletes `name` of `plural` if present and waits until it is gone, then creates `body`; returns the new uid. */
async function recreate(k: KubeClients, namespace: string, plural: string, name: string, body: object, deadline: number, signal?: AbortSignal): Promise<string> {
  const group = { group: CHE_GROUP, version: CHE_VERSION, namespace, plural };
  if (await orNotFound(k.custom.deleteNamespacedCustomObject({ ...group, name }))) {
    while (await orNotFound(k.custom.getNamespacedCustomObject({ ...group, name }))) {
      if (Date.now() >= deadline) throw new ResticError(`timed out waiting for the old ${plural} '${name}' to be deleted`);
      await sleep(200, signal);
    }
  }
  const created = (await k.custom.createNamespacedCustomObject({ ...group, body })) as { metadata: { uid: string } };
  return created.metadata.uid;
}

/** Polls the CR until its state is Succeeded or Failed, reporting changes; bounded by `deadline`. */
async function follow(
  k: KubeClients,
  namespace: string,
  plural: string,
  name: string,
  uid: string,
  deadline: number,
  opts: CheOperationOptions,
  what: string,
): Promise<OperationStatus> {
  const group = { group: CHE_GROUP, version: CHE_VERSION, namespace, plural };
  let last = '';
  let status: OperationStatus = {};
  for (;;) {
    const cr = (await orNotFound(k.custom.getNamespacedCustomObject({ ...group, name }))) as CheClusterBackup | undefined;
    if (!cr || cr.metadata.uid !== uid) throw new ResticError(`${what} '${name}' was deleted or replaced while it ran`);
    status = cr.status ?? {};
    const key = `${status.state ?? ''}\0${status.stage ?? ''}\0${status.message ?? ''}`;
    if (key !== last) {
      last = key;
      opts.onProgress?.(status);
    }
    if (status.state === 'Succeeded' || status.state === 'Failed') return status;
    const left = deadline - Date.now();
    if (left <= 0) {
      const where = status.stage ? `stage: ${status.stage}` : status.state ? `state: ${status.state}` : 'no controller has picked it up: is `restic-ts che operator` running?';
      throw new ResticError(`${what} '${name}' did not finish within ${formatMs(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)} (${where})`);
    }
    await sleep(Math.min(opts.pollIntervalMs ?? 500, left), opts.signal);
  }
}

function formatMs(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

/** Turns client-node's API errors (whose message holds the whole response) into one-line ResticErrors. */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApiException) throw new ResticError(`Kubernetes API: ${apiMessage(e)}`);
    throw e;
  }
}

/**
 * `chectl server:backup`: configures the backup server from the input (or reuses the existing configuration, or
 * the internal backup server when there is none), creates CheClusterBackup `eclipse-che-backup` and waits for it.
 * Resolves with the final status (holding `snapshotId`); throws CheOperationFailedError when it failed.
 */
export function cheServerBackup(opts: CheOperationOptions): Promise<CheOperationResult> {
  return guarded(async () => {
    const namespace = opts.namespace ?? DEFAULT_CHE_NAMESPACE;
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const k = kubeClients(opts.kubeConfig);
    if (!(await orNotFound(k.core.readNamespace({ name: namespace })))) throw new UsageError(`namespace '${namespace}' not found: is Che installed there? (see -n/--chenamespace)`);
    const configRef = await chooseServerConfig(k, namespace, opts);
    const body: CheClusterBackup = {
      apiVersion: CHE_API_VERSION,
      kind: 'CheClusterBackup',
      metadata: { name: BACKUP_CR_NAME, namespace, labels: secretLabels },
      spec: configRef ? { backupServerConfigRef: configRef } : { useInternalBackupServer: true },
    };
    const uid = await recreate(k, namespace, PLURALS.backup, BACKUP_CR_NAME, body, deadline, opts.signal);
    const status = await follow(k, namespace, PLURALS.backup, BACKUP_CR_NAME, uid, deadline, opts, 'backup');
    if (status.state === 'Failed') throw new CheOperationFailedError(`backup failed: ${status.message ?? 'no message'}`, status);
    if (!status.snapshotId) throw new ResticError(`backup '${BACKUP_CR_NAME}' succeeded without reporting a snapshot id`);
    return { name: BACKUP_CR_NAME, ...opt('backupServerConfigRef', configRef), status };
  });
}

/**
 * `chectl server:restore`: configures the backup server as cheServerBackup does (a configuration is required:
 * restore never starts the internal server), creates CheClusterRestore `eclipse-che-restore` for the snapshot
 * (default latest; or what `backupCrName` saved) and waits for it. The namespace is created when it is gone.
 */
export function cheServerRestore(opts: CheRestoreOptions): Promise<CheOperationResult> {
  return guarded(async () => {
    const namespace = opts.namespace ?? DEFAULT_CHE_NAMESPACE;
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const k = kubeClients(opts.kubeConfig);
    let configRef: string | undefined;
    let snapshotId = opts.snapshotId;
    if (opts.backupCrName) {
      if (opts.repositoryUrl || opts.backupServerConfigName || opts.snapshotId)
        throw new UsageError('--backup-cr-name excludes --repository-url, --backup-server-config-name and --snapshot-id');
      const backup = (await orNotFound(
        k.custom.getNamespacedCustomObject({ group: CHE_GROUP, version: CHE_VERSION, namespace, plural: PLURALS.backup, name: opts.backupCrName }),
      )) as CheClusterBackup | undefined;
      if (!backup) throw new UsageError(`backup '${opts.backupCrName}' not found in namespace '${namespace}'`);
      if (backup.status?.state !== 'Succeeded' || !backup.status.snapshotId) throw new UsageError(`backup '${opts.backupCrName}' did not succeed: nothing to restore from it`);
      configRef = backup.spec?.backupServerConfigRef;
      if (!configRef) throw new UsageError(`backup '${opts.backupCrName}' has no backupServerConfigRef`);
      snapshotId = backup.status.snapshotId;
    } else {
      await ensureNamespace(k, namespace);
      configRef = await chooseServerConfig(k, namespace, opts);
      if (!configRef) throw new UsageError(`no backup server configuration in namespace '${namespace}': give --repository-url and --repository-password`);
    }
    const spec: CheClusterRestore['spec'] = { backupServerConfigRef: configRef };
    if (snapshotId && snapshotId !== 'latest') spec.snapshotId = snapshotId;
    const body: CheClusterRestore = {
      apiVersion: CHE_API_VERSION,
      kind: 'CheClusterRestore',
      metadata: { name: RESTORE_CR_NAME, namespace, labels: secretLabels },
      spec,
    };
    const uid = await recreate(k, namespace, PLURALS.restore, RESTORE_CR_NAME, body, deadline, opts.signal);
    const status = await follow(k, namespace, PLURALS.restore, RESTORE_CR_NAME, uid, deadline, opts, 'restore');
    if (status.state === 'Failed') throw new CheOperationFailedError(`restore failed: ${status.message ?? 'no message'}`, status);
    return { name: RESTORE_CR_NAME, backupServerConfigRef: configRef, status };
  });
}

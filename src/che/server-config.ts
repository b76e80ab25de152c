import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  NotFoundError,
  openBackend,
  redactLocation,
  Repository,
  UsageError,
  type Backend,
  type OpenBackendOptions,
} from '../index.js';
import { SECRET_KEYS, type CheBackupServerConfiguration, type CheBackupServerConfigurationSpec } from './types.js';

/** Decoded data of a Secret, or undefined when the Secret does not exist. */
export type SecretReader = (name: string) => Promise<Record<string, string> | undefined>;

export type ServerKind = 'rest' | 'awss3' | 'sftp';

/** A CheBackupServerConfiguration turned into what openBackend and Repository.open need. */
export interface ResolvedServer {
  kind: ServerKind;
  /** restic location; a REST location carries the server credentials (see displayLocation). */
  location: string;
  /** The location with any password hidden, for messages and logs. */
  displayLocation: string;
  /** Repository password. */
  password: string;
  /** Credentials go through `env` (AWS_*, SSH_KEY), never a shell or the process environment. */
  backendOptions: OpenBackendOptions;
  /** SFTP only: known_hosts text from the SSH secret; without it the host key is not checked (as che-operator did). */
  knownHosts?: string;
}

export interface ResolveOptions {
  /**
   * URL whose scheme, host and port replace the configured protocol, hostname and port of a REST server (its path
   * is ignored); used for the internal backup server when the controller runs outside the cluster network.
   */
  restBaseUrl?: string;
}

const KINDS: readonly ServerKind[] = ['rest', 'awss3', 'sftp'];
const HOST = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
/** Kubernetes object names (DNS subdomain). */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

class ConfigProblem {
  constructor(
    readonly configName: string,
    readonly kind: ServerKind,
  ) {}

  error(problem: string): UsageError {
    return new UsageError(`CheBackupServerConfiguration '${this.configName}': ${problem}`);
  }

  /** spec.<kind>.<field> must be a non-empty string. */
  required(value: unknown, field: string): string {
    if (typeof value !== 'string' || value.trim() === '') throw this.error(`spec.${this.kind}.${field} must be set`);
    return value.trim();
  }

  host(value: unknown, field = 'hostname'): string {
    const host = this.required(value, field);
    if (IPV6.test(host) && host.includes(':')) return `[${host}]`;
    if (!HOST.test(host)) throw this.error(`spec.${this.kind}.${field} "${host}" is not a host name or IP address`);
    return host;
  }

  port(value: unknown): string {
    if (value === undefined || value === null || value === 0) return '';
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
      throw this.error(`spec.${this.kind}.port must be a number from 1 to 65535`);
    }
    return `:${value}`;
  }

  protocol(value: unknown, fallback: string): string {
    if (value === undefined || value === '') return fallback;
    if (value !== 'http' && value !== 'https') throw this.error(`spec.${this.kind}.protocol must be http or https, not "${String(value)}"`);
    return value;
  }

  /**
   * Reads one key of a Secret. `soleKeyFallback`: as che-operator, a Secret with exactly one key may use any key
   * name for the password or SSH key.
   */
  async secretValue(read: SecretReader, secretName: unknown, field: string, key: string, soleKeyFallback: boolean): Promise<string> {
    const name = this.required(secretName, field);
    const where = `(spec.${this.kind}.${field})`;
    if (!OBJECT_NAME.test(name)) throw this.error(`secret name "${name}" ${where} is not a valid object name`);
    const data = await read(name);
    if (!data) throw this.error(`secret '${name}' ${where} not found`);
    let value = data[key];
    if (value === undefined && soleKeyFallback) {
      const keys = Object.keys(data);
      if (keys.length === 1) value = data[keys[0]!];
    }
    if (value === undefined) throw this.error(`secret '${name}' ${where} has no key '${key}'`);
    if (value === '') throw this.error(`secret '${name}' ${where} has an empty '${key}'`);
    return value;
  }
}

/** Which of rest/awss3/sftp the spec sets; exactly one is allowed. */
export function serverKind(configName: string, spec: CheBackupServerConfigurationSpec | undefined): ServerKind {
  const set = KINDS.filter((k) => spec?.[k] !== undefined && spec[k] !== null);
  const rule = 'set exactly one of spec.rest, spec.awss3 or spec.sftp';
  if (set.length === 0) throw new UsageError(`CheBackupServerConfiguration '${configName}' configures no server: ${rule}`);
  if (set.length > 1) {
    throw new UsageError(`CheBackupServerConfiguration '${configName}' configures ${set.map((k) => `spec.${k}`).join(' and ')}: ${rule}`);
  }
  return set[0]!;
}

function cleanRepositoryPath(path: string | undefined): string {
  return (path ?? '').trim().replace(/^\/+/, '');
}

/**
 * Builds the restic location and credentials of a CheBackupServerConfiguration, reading its Secrets through
 * `readSecret`. Locations follow che-operator: `rest:<proto>://[user:pass@]host[:port]/path/`,
 * `s3:[proto://]host[:port]/bucket[/prefix]`, `sftp:user@host:path` or `sftp://user@host:port/path`.
 * Throws UsageError (one line, no secret values) for anything unusable.
 */
export async function resolveServerConfig(
  config: CheBackupServerConfiguration,
  readSecret: SecretReader,
  options: ResolveOptions = {},
): Promise<ResolvedServer> {
  const configName = config.metadata.name ?? '(unnamed)';
  const kind = serverKind(configName, config.spec);
  const p = new ConfigProblem(configName, kind);
  const spec = config.spec!;
  switch (kind) {
    case 'rest': {
      const rest = spec.rest!;
      const password = await p.secretValue(readSecret, rest.repositoryPasswordSecretRef, 'repositoryPasswordSecretRef', SECRET_KEYS.repoPassword, true);
      let scheme: string;
      let hostPort: string;
      if (options.restBaseUrl) {
        const url = new URL(options.restBaseUrl);
        scheme = url.protocol.replace(/:$/, '');
        hostPort = url.host;
      } else {
        scheme = p.protocol(rest.protocol, 'https');
        hostPort = `${p.host(rest.hostname)}${p.port(rest.port)}`;
      }
      let credentials = '';
      if (rest.credentialsSecretRef) {
        const username = await p.secretValue(readSecret, rest.credentialsSecretRef, 'credentialsSecretRef', SECRET_KEYS.username, false);
        const secret = await p.secretValue(readSecret, rest.credentialsSecretRef, 'credentialsSecretRef', SECRET_KEYS.password, false);
        // Escaped, unlike che-operator, so passwords with "@", ":" or "/" survive.
        credentials = `${encodeURIComponent(username)}:${encodeURIComponent(secret)}@`;
      }
      const path = cleanRepositoryPath(rest.repositoryPath);
      const location = `rest:${scheme}://${credentials}${hostPort}/${path}${path === '' || path.endsWith('/') ? '' : '/'}`;
      return { kind, location, displayLocation: redactLocation(location), password, backendOptions: { env: {} } };
    }
    case 'awss3': {
      const s3 = spec.awss3!;
      const password = await p.secretValue(readSecret, s3.repositoryPasswordSecretRef, 'repositoryPasswordSecretRef', SECRET_KEYS.repoPassword, true);
      const path = cleanRepositoryPath(p.required(s3.repositoryPath, 'repositoryPath'));
      if (path === '') throw p.error('spec.awss3.repositoryPath must name a bucket, e.g. bucket/che');
      const protocol = s3.protocol ? `${p.protocol(s3.protocol, 'https')}://` : '';
      const host = s3.hostname ? p.host(s3.hostname) : 's3.amazonaws.com';
      const keyId = await p.secretValue(readSecret, s3.awsAccessKeySecretRef, 'awsAccessKeySecretRef', SECRET_KEYS.awsAccessKeyId, false);
      const key = await p.secretValue(readSecret, s3.awsAccessKeySecretRef, 'awsAccessKeySecretRef', SECRET_KEYS.awsSecretAccessKey, false);
      const location = `s3:${protocol}${host}${p.port(s3.port)}/${path}`;
      return {
        kind,
        location,
        displayLocation: location,
        password,
        backendOptions: { env: { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: key } },
      };
    }
    case 'sftp': {
      const sftp = spec.sftp!;
      const password = await p.secretValue(readSecret, sftp.repositoryPasswordSecretRef, 'repositoryPasswordSecretRef', SECRET_KEYS.repoPassword, true);
      const user = p.required(sftp.username, 'username');
      if (/[\s:/@]/.test(user)) throw p.error(`spec.sftp.username "${user}" must not contain spaces, ":", "/" or "@"`);
      const host = p.host(sftp.hostname);
      const port = p.port(sftp.port);
      const path = p.required(sftp.repositoryPath, 'repositoryPath');
      const key = await p.secretValue(readSecret, sftp.sshKeySecretRef, 'sshKeySecretRef', SECRET_KEYS.sshPrivateKey, true);
      if (!key.trimStart().startsWith('-----BEGIN')) {
        throw p.error(`secret '${sftp.sshKeySecretRef}' (spec.sftp.sshKeySecretRef) does not hold a PEM/OpenSSH private key under '${SECRET_KEYS.sshPrivateKey}'`);
      }
      const keyData = (await readSecret(sftp.sshKeySecretRef))?.[SECRET_KEYS.knownHosts];
      // One "/" separates host and path in the URL form, so an absolute path shows as "//srv/repo".
      const location = port === '' ? `sftp:${user}@${host}:${path}` : `sftp://${user}@${host}${port}/${path}`;
      const resolved: ResolvedServer = { kind, location, displayLocation: location, password, backendOptions: { env: { SSH_KEY: key } } };
      if (keyData) resolved.knownHosts = keyData;
      return resolved;
    }
  }
}

export interface OpenedRepository {
  repo: Repository;
  backend: Backend;
  /** True when the repository did not exist and was created. */
  created: boolean;
  /** Closes the backend and removes temporary files. */
  close(): Promise<void>;
}

/**
 * Opens (and with `initIfMissing` creates) the repository of a resolved configuration. A wrong password gives
 * WrongPasswordError; a missing repository NotFoundError (unless created).
 */
export async function openServerRepository(server: ResolvedServer, options: { initIfMissing?: boolean } = {}): Promise<OpenedRepository> {
  const extended: Record<string, string> = { ...server.backendOptions.extended };
  let tempDir: string | undefined;
  if (server.kind === 'sftp') {
    if (server.knownHosts) {
      tempDir = await mkdtemp(join(tmpdir(), 'che-sftp-'));
      const file = join(tempDir, 'known_hosts');
      await writeFile(file, server.knownHosts, { mode: 0o600 });
      extended['sftp.known-hosts'] = file;
    } else {
      extended['sftp.insecure-host-key'] = 'true';
    }
  }
  const cleanup = async () => {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  };
  let backend: Backend;
  try {
    backend = await openBackend(server.location, { ...server.backendOptions, extended });
  } catch (err) {
    await cleanup();
    throw err;
  }
  let repo: Repository | undefined;
  const close = async () => {
    try {
      await repo?.close();
      await backend.close();
    } finally {
      await cleanup();
    }
  };
  try {
    try {
      repo = await Repository.open(backend, server.password);
      return { repo, backend, created: false, close };
    } catch (err) {
      if (!(err instanceof NotFoundError) || !options.initIfMissing) throw err;
      repo = await Repository.init(backend, server.password);
      return { repo, backend, created: true, close };
    }
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLocation, UsageError, WrongPasswordError } from '../src/index.js';
import { openServerRepository, resolveServerConfig, type SecretReader } from '../src/che/server-config.js';
import type { CheBackupServerConfigurationSpec } from '../src/che/types.js';

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n';

const secrets: Record<string, Record<string, string>> = {
  repo: { 'repo-password': 'RepoPw1' },
  'only-key': { whatever: 'sole' },
  'two-keys': { a: '1', b: '2' },
  'empty-pw': { 'repo-password': '' },
  creds: { username: 'che', password: 'p@ss:w/rd' },
  'creds-no-pass': { username: 'che' },
  aws: { awsAccessKeyId: 'AKID', awsSecretAccessKey: 'SECRET' },
  ssh: { 'ssh-privatekey': KEY },
  'ssh-pinned': { 'ssh-privatekey': KEY, known_hosts: '[h]:2222 ssh-ed25519 AAAA\n' },
  'ssh-sole': { id_rsa: KEY },
  'ssh-bad': { 'ssh-privatekey': 'not a key' },
};
const read: SecretReader = async (name) => secrets[name];

function resolve(spec: CheBackupServerConfigurationSpec, restBaseUrl?: string) {
  return resolveServerConfig({ metadata: { name: 'cfg' }, spec }, read, { restBaseUrl });
}

describe('resolveServerConfig: locations', () => {
  const table: [string, CheBackupServerConfigurationSpec, string][] = [
    ['rest defaults to https, path gets a trailing slash', { rest: { hostname: 'backup.example.com', repositoryPasswordSecretRef: 'repo', repositoryPath: 'che' } }, 'rest:https://backup.example.com/che/'],
    ['rest http with port', { rest: { protocol: 'http', hostname: 'h', port: 8000, repositoryPath: 'a/b/', repositoryPasswordSecretRef: 'repo' } }, 'rest:http://h:8000/a/b/'],
    ['rest without path', { rest: { hostname: 'h', repositoryPasswordSecretRef: 'repo' } }, 'rest:https://h/'],
    ['rest leading slash dropped', { rest: { hostname: 'h', repositoryPath: '/che', repositoryPasswordSecretRef: 'repo' } }, 'rest:https://h/che/'],
    ['rest IPv6', { rest: { hostname: '::1', port: 8000, repositoryPasswordSecretRef: 'repo' } }, 'rest:https://[::1]:8000/'],
    ['rest with credentials (escaped)', { rest: { hostname: 'h', repositoryPath: 'che', repositoryPasswordSecretRef: 'repo', credentialsSecretRef: 'creds' } }, 'rest:https://che:p%40ss%3Aw%2Frd@h/che/'],
    ['s3 default host', { awss3: { repositoryPath: 'bucket/che', repositoryPasswordSecretRef: 'repo', awsAccessKeySecretRef: 'aws' } }, 's3:s3.amazonaws.com/bucket/che'],
    ['s3 compatible server', { awss3: { protocol: 'http', hostname: 'minio', port: 9000, repositoryPath: 'bucket', repositoryPasswordSecretRef: 'repo', awsAccessKeySecretRef: 'aws' } }, 's3:http://minio:9000/bucket'],
    ['sftp without port', { sftp: { username: 'che', hostname: 'h', repositoryPath: '/srv/repo', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh' } }, 'sftp:che@h:/srv/repo'],
    ['sftp with port, absolute path', { sftp: { username: 'che', hostname: 'h', port: 2222, repositoryPath: '/srv/repo', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh' } }, 'sftp://che@h:2222//srv/repo'],
    ['sftp with port, relative path', { sftp: { username: 'che', hostname: 'h', port: 2222, repositoryPath: 'repo', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh' } }, 'sftp://che@h:2222/repo'],
  ];
  for (const [name, spec, location] of table) {
    it(name, async () => {
      const r = await resolve(spec);
      expect(r.location).toBe(location);
      expect(r.password).toBe('RepoPw1');
      // Every location we build must parse with restic-ts's own parser.
      expect(() => parseLocation(r.location, {})).not.toThrow();
    });
  }

  it('parses back to the intended pieces', async () => {
    const rest = parseLocation((await resolve(table[5]![1])).location, {});
    expect(rest).toEqual({ kind: 'rest', url: 'https://h/che/', username: 'che', password: 'p@ss:w/rd' });
    const sftp = parseLocation((await resolve(table[9]![1])).location, {});
    expect(sftp).toEqual({ kind: 'sftp', user: 'che', host: 'h', port: 2222, path: '/srv/repo' });
    const s3 = parseLocation((await resolve(table[7]![1])).location, {});
    expect(s3).toMatchObject({ kind: 's3', endpoint: 'minio:9000', useTls: false, bucket: 'bucket', prefix: '' });
  });

  it('hides the REST password in displayLocation', async () => {
    const r = await resolve(table[5]![1]);
    expect(r.displayLocation).toBe('rest:https://che:***@h/che/');
  });

  it('passes credentials through env only', async () => {
    const s3 = await resolve(table[6]![1]);
    expect(s3.backendOptions.env).toEqual({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'SECRET' });
    expect(s3.location).not.toContain('AKID');
    const sftp = await resolve(table[8]![1]);
    expect(sftp.backendOptions.env).toEqual({ SSH_KEY: KEY });
    expect(sftp.knownHosts).toBeUndefined();
    const pinned = await resolve({ sftp: { username: 'che', hostname: 'h', repositoryPath: 'r', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh-pinned' } });
    expect(pinned.knownHosts).toBe('[h]:2222 ssh-ed25519 AAAA\n');
  });

  it('takes the only key of a secret for the password and the SSH key (as che-operator)', async () => {
    const r = await resolve({ sftp: { username: 'che', hostname: 'h', repositoryPath: 'r', repositoryPasswordSecretRef: 'only-key', sshKeySecretRef: 'ssh-sole' } });
    expect(r.password).toBe('sole');
    expect(r.backendOptions.env?.SSH_KEY).toBe(KEY);
  });

  it('restBaseUrl replaces scheme, host and port, keeps the path', async () => {
    const r = await resolve({ rest: { protocol: 'http', hostname: 'backup-rest-server-service.che.svc', port: 8000, repositoryPath: 'che', repositoryPasswordSecretRef: 'repo' } }, 'http://127.0.0.1:41234/');
    expect(r.location).toBe('rest:http://127.0.0.1:41234/che/');
  });
});

describe('resolveServerConfig: validation', () => {
  const table: [string, CheBackupServerConfigurationSpec | undefined, RegExp][] = [
    ['no server', {}, /configures no server: set exactly one of spec.rest, spec.awss3 or spec.sftp/],
    ['no spec', undefined, /configures no server/],
    ['two servers', { rest: { hostname: 'h', repositoryPasswordSecretRef: 'repo' }, sftp: { username: 'u', hostname: 'h', repositoryPath: 'p', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh' } }, /configures spec.rest and spec.sftp: set exactly one/],
    ['missing password secret', { rest: { hostname: 'h', repositoryPasswordSecretRef: 'nope' } }, /secret 'nope' \(spec.rest.repositoryPasswordSecretRef\) not found/],
    ['password secret without the key', { rest: { hostname: 'h', repositoryPasswordSecretRef: 'two-keys' } }, /secret 'two-keys' \(spec.rest.repositoryPasswordSecretRef\) has no key 'repo-password'/],
    ['empty password', { rest: { hostname: 'h', repositoryPasswordSecretRef: 'empty-pw' } }, /has an empty 'repo-password'/],
    ['no password secret named', { rest: { hostname: 'h', repositoryPasswordSecretRef: '' } }, /spec.rest.repositoryPasswordSecretRef must be set/],
    ['credentials without password', { rest: { hostname: 'h', repositoryPasswordSecretRef: 'repo', credentialsSecretRef: 'creds-no-pass' } }, /secret 'creds-no-pass' \(spec.rest.credentialsSecretRef\) has no key 'password'/],
    ['bad protocol', { rest: { protocol: 'ftp', hostname: 'h', repositoryPasswordSecretRef: 'repo' } }, /spec.rest.protocol must be http or https, not "ftp"/],
    ['no hostname', { rest: { hostname: '', repositoryPasswordSecretRef: 'repo' } }, /spec.rest.hostname must be set/],
    ['bad hostname', { rest: { hostname: 'h/x', repositoryPasswordSecretRef: 'repo' } }, /spec.rest.hostname "h\/x" is not a host name/],
    ['bad port', { rest: { hostname: 'h', port: 70000, repositoryPasswordSecretRef: 'repo' } }, /spec.rest.port must be a number from 1 to 65535/],
    ['s3 without bucket', { awss3: { repositoryPath: '', repositoryPasswordSecretRef: 'repo', awsAccessKeySecretRef: 'aws' } }, /spec.awss3.repositoryPath must be set/],
    ['s3 missing aws secret', { awss3: { repositoryPath: 'b', repositoryPasswordSecretRef: 'repo', awsAccessKeySecretRef: 'nope' } }, /secret 'nope' \(spec.awss3.awsAccessKeySecretRef\) not found/],
    ['s3 aws secret without id', { awss3: { repositoryPath: 'b', repositoryPasswordSecretRef: 'repo', awsAccessKeySecretRef: 'creds' } }, /has no key 'awsAccessKeyId'/],
    ['sftp without key secret', { sftp: { username: 'u', hostname: 'h', repositoryPath: 'p', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: '' } }, /spec.sftp.sshKeySecretRef must be set/],
    ['sftp key not PEM', { sftp: { username: 'u', hostname: 'h', repositoryPath: 'p', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh-bad' } }, /does not hold a PEM\/OpenSSH private key/],
    ['sftp secret with several keys, none ssh-privatekey', { sftp: { username: 'u', hostname: 'h', repositoryPath: 'p', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'two-keys' } }, /has no key 'ssh-privatekey'/],
    ['sftp without user', { sftp: { username: '', hostname: 'h', repositoryPath: 'p', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh' } }, /spec.sftp.username must be set/],
    ['sftp without path', { sftp: { username: 'u', hostname: 'h', repositoryPath: '', repositoryPasswordSecretRef: 'repo', sshKeySecretRef: 'ssh' } }, /spec.sftp.repositoryPath must be set/],
  ];
  for (const [name, spec, message] of table) {
    it(name, async () => {
      const err = await resolveServerConfig({ metadata: { name: 'cfg' }, spec }, read).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(/^CheBackupServerConfiguration 'cfg'/);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
      // Secret values never appear in messages.
      for (const v of ['RepoPw1', 'SECRET', 'p@ss', 'sole']) expect((err as Error).message).not.toContain(v);
    });
  }
});

describe('openServerRepository', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'che-server-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('initialises a missing repository only when asked, and the result opens with restic', async () => {
    const server = { kind: 'rest' as const, location: join(dir, 'repo'), displayLocation: join(dir, 'repo'), password: 'pw', backendOptions: {} };
    await expect(openServerRepository(server)).rejects.toThrow(/no config file found/);
    const created = await openServerRepository(server, { initIfMissing: true });
    expect(created.created).toBe(true);
    await created.close();
    const again = await openServerRepository(server, { initIfMissing: true });
    expect(again.created).toBe(false);
    await again.close();
    await expect(openServerRepository({ ...server, password: 'wrong' })).rejects.toBeInstanceOf(WrongPasswordError);
    const out = execFileSync('restic', ['-r', join(dir, 'repo'), 'cat', 'config'], { env: { ...process.env, RESTIC_PASSWORD: 'pw' } }).toString();
    expect(JSON.parse(out)).toHaveProperty('chunker_polynomial');
  });
});

// Time limits and status transitions of the Che layer, driven by a fake clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { failedStatus, startedStatus, succeededStatus } from '../src/che/controller.js';
import { clearRuntimeSql, loadScript, rewriteUrlsSql, sqlIdent, sqlLiteral } from '../src/che/database.js';
import { adaptCheCluster, hostSuffixes, type BackupContent } from '../src/che/importer.js';
import { CheAbortedError, CheTimeoutError, poll, withTimeout } from '../src/che/util.js';
import { UsageError } from '../src/index.js';

describe('withTimeout and poll (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a step that never settles is cut at its limit, and its signal fires', async () => {
    let seen: AbortSignal | undefined;
    const p = withTimeout('pg_dump', 5_000, undefined, (s) => {
      seen = s;
      return new Promise<never>(() => undefined);
    });
    const outcome = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(seen?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = await outcome;
    expect(err).toBeInstanceOf(CheTimeoutError);
    expect((err as Error).message).toBe('pg_dump: timed out after 5s');
    expect(seen?.aborted).toBe(true);
  });

  it('the caller’s signal cancels a step at once', async () => {
    const stop = new AbortController();
    const outcome = withTimeout('upload', 60_000, stop.signal, () => new Promise<never>(() => undefined)).catch((e: unknown) => e);
    stop.abort();
    const err = await outcome;
    expect(err).toBeInstanceOf(CheAbortedError);
    expect((err as Error).message).toBe('upload: cancelled');
    await expect(withTimeout('later', 1_000, stop.signal, async () => 1)).rejects.toBeInstanceOf(CheAbortedError);
  });

  it('poll returns the first defined value, checking every interval', async () => {
    let calls = 0;
    const p = poll('Che to be Available', { timeoutMs: 10_000, intervalMs: 1_000 }, async () => (++calls === 3 ? 'up' : undefined));
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(p).resolves.toBe('up');
    expect(calls).toBe(3);
  });

  it('poll times out naming what it waited for and what it saw last', async () => {
    const p = poll('waiting for CheCluster x to be deleted', { timeoutMs: 3_000, intervalMs: 1_000 }, async () => undefined, () => 'finalizers left: f1');
    const outcome = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(3_000);
    const err = await outcome;
    expect(err).toBeInstanceOf(CheTimeoutError);
    expect((err as Error).message).toBe('waiting for CheCluster x to be deleted: timed out after 3s (finalizers left: f1)');
  });

  it('poll cuts a check that hangs at the deadline', async () => {
    const outcome = poll('hanging check', { timeoutMs: 2_000, intervalMs: 500 }, () => new Promise<undefined>(() => undefined)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(((await outcome) as Error).message).toBe('hanging check: timed out after 2s');
  });
});

describe('status transitions', () => {
  const at = new Date('2026-01-02T03:04:05.678Z');

  it('starts with the first stage that will run', () => {
    expect(startedStatus('backup', at, { metadata: {}, spec: { backupServerConfigRef: 'x' } })).toEqual({
      state: 'InProgress',
      stage: 'Connecting to backup repository',
      message: 'Backup is in progress. Start time: 2026-01-02T03:04:05.678Z',
    });
    expect(startedStatus('backup', at, { metadata: {}, spec: { useInternalBackupServer: true } }).stage).toBe('Setting up internal backup server');
    expect(startedStatus('restore', at, { metadata: {}, spec: {} })).toEqual({
      state: 'InProgress',
      stage: 'Downloading backup from backup server',
      message: 'Restore is in progress. Start time: 2026-01-02T03:04:05.678Z',
    });
  });

  it('success clears the stage, failure keeps it and carries the one-line reason', () => {
    expect(succeededStatus('backup', at, 'abc', '7.42.0')).toEqual({
      state: 'Succeeded',
      stage: null,
      message: 'Backup successfully finished at 2026-01-02T03:04:05.678Z',
      snapshotId: 'abc',
      cheVersion: '7.42.0',
    });
    expect(succeededStatus('restore', at, 'abc', '7.42.0').message).toBe('Restore successfully finished at 2026-01-02T03:04:05.678Z');
    expect(failedStatus(new UsageError('bad config\nsecond line'))).toEqual({ state: 'Failed', message: 'Error: bad config' });
  });
});

describe('restore adaptation', () => {
  const content = (namespace: string, spec: Record<string, unknown>): BackupContent => ({
    dir: '/nowhere',
    metadata: { metadataFileVersion: 'v1', creationDate: '', cheVersion: '7.42.0', infrastructure: 'Kubernetes', appsDomain: 'apps.example.com', namespace },
    cheCluster: { apiVersion: 'org.eclipse.che/v1', kind: 'CheCluster', metadata: { name: 'eclipse-che', namespace, uid: 'u', resourceVersion: '9', finalizers: ['f'] }, spec, status: { cheClusterRunning: 'Available' } },
    configMaps: [],
    secrets: [],
    dumps: new Map(),
  });

  it('same namespace: the spec is kept as it was, user-set identityProviderURL included (che#20941); status and server metadata go', () => {
    const spec = { server: { cheHost: 'che.apps.example.com' }, auth: { identityProviderURL: 'https://sso.example.com/auth', externalIdentityProvider: false } };
    const cr = adaptCheCluster(content('che', spec), 'che');
    expect(cr.spec).toEqual(spec);
    expect(cr.status).toBeUndefined();
    expect(cr.metadata).toEqual({ name: 'eclipse-che', namespace: 'che' });
  });

  it('another namespace and domain: <ns>.<domain> is rewritten everywhere in the spec', () => {
    const spec = { server: { cheHost: 'old.apps.example.com' }, auth: { identityProviderURL: 'https://keycloak-old.apps.example.com/auth' }, k8s: { ingressDomain: 'apps.example.com' } };
    const cr = adaptCheCluster(content('old', spec), 'new', 'apps.other.org');
    expect(cr.spec).toEqual({
      server: { cheHost: 'new.apps.other.org' },
      auth: { identityProviderURL: 'https://keycloak-new.apps.other.org/auth' },
      k8s: { ingressDomain: 'apps.other.org' },
    });
    expect(hostSuffixes(content('old', {}).metadata, 'new', undefined)).toEqual({ from: 'old.apps.example.com', to: 'new.apps.example.com' });
  });
});

describe('SQL generation', () => {
  it('quotes literals and identifiers', () => {
    expect(sqlLiteral(`it's \\ "x"`)).toBe(`'it''s \\ "x"'`);
    expect(sqlIdent('a"b')).toBe('"a""b"');
  });

  it('the load script ends sessions and waits for them before DROP, creates closed, reopens at the end', () => {
    const script = loadScript({ db: 'dbche', fallbackOwner: "pg'che", ownerPassword: "p'w", dumpFile: '/x' });
    const order = ['CONNECTION LIMIT 0;', 'pg_terminate_backend', 'DROP DATABASE "dbche"', 'CREATE DATABASE "dbche" OWNER :"owner" CONNECTION LIMIT 0', '\\ir dump.sql', '\\ir after.sql', 'CONNECTION LIMIT :old_limit'];
    const positions = order.map((s) => script.indexOf(s));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(script).toContain(`PASSWORD 'p''w'`);
    expect(script).toContain(`'pg''che'`);
    expect(() => loadScript({ db: 'x; DROP', fallbackOwner: 'o', dumpFile: '/x' })).toThrow(UsageError);
  });

  it('rewrites nothing when the host suffix is unchanged; runtime clean-up names the tables', () => {
    expect(rewriteUrlsSql([['devfile_project', 'location']], 'a.d', 'a.d')).toBe('');
    expect(rewriteUrlsSql([['devfile_project', 'location']], 'a.d', 'b.d')).toContain(`ARRAY['devfile_project', 'location']`);
    expect(clearRuntimeSql()).toContain(`'che_k8s_runtime'`);
  });
});

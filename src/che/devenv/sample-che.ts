// A sample Eclipse Che installation shaped like what che-operator 7.42 deployed on Kubernetes: the
// CheCluster CR, the postgres credentials Secrets, CA-bundle ConfigMaps, the postgres and che Deployments,
// and real databases (dbche, keycloak) on a real PostgreSQL server. Plus snapshotChe/diffCheStates, which
// capture and compare everything a restore must bring back.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeConfig, V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { ResticError } from '../../index.js';
import type { Postgres, PgConnectionEnv } from './postgres.js';
import { applyCrds, crdDirectory, isApiStatus, kubeClients, orNotFound, waitFor } from './kube.js';

export const CHE_CLUSTER_NAME = 'eclipse-che';
export const CHE_DB = 'dbche';
export const CHE_DB_USER = 'pgche';
export const KEYCLOAK_DB = 'keycloak';
export const KEYCLOAK_DB_USER = 'keycloak';
export const CHE_POSTGRES_SECRET = 'che-postgres-secret';
export const IDENTITY_POSTGRES_SECRET = 'che-identity-postgres-secret';
export const IDENTITY_SECRET = 'che-identity-secret';
export const SAMPLE_DOMAIN = '192.168.49.2.nip.io';

const CHE_LABELS = {
  app: 'che',
  'app.kubernetes.io/part-of': 'che.eclipse.org',
  'app.kubernetes.io/name': 'che',
  'app.kubernetes.io/instance': 'che',
  'app.kubernetes.io/managed-by': 'che-operator',
};

export interface SampleCheOptions {
  namespace?: string;
  /** Cluster apps domain (spec.k8s.ingressDomain). */
  domain?: string;
  /** Bound on each wait (namespace, CRDs). Default 30 s. */
  timeoutMs?: number;
}

export interface SampleChe {
  namespace: string;
  domain: string;
  cheClusterName: string;
  databases: string[];
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
/** SQL string literal. */
const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
/** SQL identifier. */
const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** A Secret as che-operator made them for postgres credentials (`user`, `password`). */
function credentialsSecret(ns: string, name: string, component: string, user: string, password: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, labels: { ...CHE_LABELS, 'app.kubernetes.io/component': component } },
    type: 'Opaque',
    data: { user: b64(user), password: b64(password) },
  };
}

/**
 * The postgres Deployment (label `component=postgres`) whose container env reaches the real server as its
 * superuser, so a `pg_dump`/`psql` exec'd "in the pod" (run on this host by kubesim) talks to it.
 */
export function postgresDeployment(ns: string, pg: PgConnectionEnv): V1Deployment {
  const labels = { ...CHE_LABELS, component: 'postgres', 'app.kubernetes.io/component': 'postgres' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'postgres', namespace: ns, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'che', component: 'postgres' } },
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'postgres',
              image: 'quay.io/eclipse/che--centos--postgresql-13-centos7:1-71b2468',
              ports: [{ name: 'postgres', containerPort: 5432 }],
              env: [
                { name: 'PGHOST', value: pg.PGHOST },
                { name: 'PGPORT', value: pg.PGPORT },
                { name: 'PGUSER', value: pg.PGUSER },
                { name: 'PGPASSWORD', value: pg.PGPASSWORD },
                { name: 'POSTGRESQL_DATABASE', value: CHE_DB },
              ],
            },
          ],
        },
      },
    },
  };
}

/** The Che server Deployment (label `component=che`); restore deletes it and the operator brings it back. */
export function cheDeployment(ns: string): V1Deployment {
  const labels = { ...CHE_LABELS, component: 'che', 'app.kubernetes.io/component': 'che' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'che', namespace: ns, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'che', component: 'che' } },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'che', image: 'quay.io/eclipse/che-server:7.42.0', ports: [{ name: 'http', containerPort: 8080 }] }] },
      },
    },
  };
}

/** The CheCluster CR as che-operator 7.42 (org.eclipse.che/v1) took it, with our database and secrets. */
export function sampleCheCluster(ns: string, domain: string): Record<string, unknown> {
  return {
    apiVersion: 'org.eclipse.che/v1',
    kind: 'CheCluster',
    metadata: { name: CHE_CLUSTER_NAME, namespace: ns, labels: { 'app.kubernetes.io/part-of': 'che.eclipse.org' } },
    spec: {
      server: {
        cheFlavor: 'che',
        cheHost: `${ns}.${domain}`,
        cheLogLevel: 'INFO',
        serverExposureStrategy: 'multi-host',
        tlsSupport: true,
        selfSignedCert: false,
        gitSelfSignedCert: false,
        workspaceNamespaceDefault: '<username>-che',
        customCheProperties: { CHE_LIMITS_USER_WORKSPACES_RUN_COUNT: '2', CHE_INFRA_KUBERNETES_WORKSPACE__START__TIMEOUT__MIN: '15' },
      },
      database: {
        externalDb: false,
        chePostgresHostName: 'postgres',
        chePostgresPort: '5432',
        chePostgresDb: CHE_DB,
        chePostgresSecret: CHE_POSTGRES_SECRET,
        postgresVersion: '13.3',
      },
      auth: {
        externalIdentityProvider: false,
        // Set by the user on purpose: a restore must keep it (upstream bug che#20941 cleared it).
        identityProviderURL: `https://keycloak-${ns}.${domain}/auth`,
        identityProviderRealm: 'che',
        identityProviderClientId: 'che-public',
        identityProviderPostgresSecret: IDENTITY_POSTGRES_SECRET,
        identityProviderSecret: IDENTITY_SECRET,
      },
      storage: { pvcStrategy: 'common', pvcClaimSize: '10Gi', preCreateSubPaths: true },
      k8s: { ingressDomain: domain, ingressClass: 'nginx', tlsSecretName: 'che-tls' },
      metrics: { enable: true },
      devWorkspace: { enable: false },
    },
  };
}

/** A PEM-looking block (content is random: nothing parses these certificates). */
function fakePem(label: string): string {
  const body = randomBytes(540).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `# ${label}\n-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

function caBundle(ns: string, name: string, data: Record<string, string>): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: ns,
      labels: { 'app.kubernetes.io/part-of': 'che.eclipse.org', 'app.kubernetes.io/component': 'ca-bundle' },
      annotations: { 'che.eclipse.org/sample': 'true' },
    },
    data,
  };
}

/** Che's schema (a subset of Che 7's tables) and rows exercising what a dump must carry. */
function cheSchemaSql(ns: string, domain: string): string {
  const inNs = `${ns}.${domain}`;
  return `
SET ROLE ${CHE_DB_USER};
CREATE TABLE usr (id varchar(255) PRIMARY KEY, name varchar(255) NOT NULL UNIQUE, email varchar(255) NOT NULL UNIQUE, password varchar(255));
CREATE TABLE account (id varchar(255) PRIMARY KEY, name varchar(100) NOT NULL UNIQUE, type varchar(255));
CREATE TABLE workspace (id varchar(255) PRIMARY KEY, name varchar(255) NOT NULL, accountid varchar(255) NOT NULL REFERENCES account(id),
  istemporary boolean NOT NULL DEFAULT false, created timestamptz NOT NULL, updated timestamptz);
CREATE TABLE workspace_attributes (workspace_id varchar(255) NOT NULL REFERENCES workspace(id), name varchar(255) NOT NULL, value text,
  PRIMARY KEY (workspace_id, name));
CREATE TABLE devfile (id bigserial PRIMARY KEY, workspace_id varchar(255) UNIQUE REFERENCES workspace(id), api_version varchar(255), name varchar(255), content jsonb);
CREATE TABLE devfile_project (id bigserial PRIMARY KEY, devfile_id bigint NOT NULL REFERENCES devfile(id), name varchar(255) NOT NULL,
  location text, clone_path text);
CREATE TABLE sshkeypair (owner varchar(255) NOT NULL REFERENCES usr(id), service varchar(255) NOT NULL, name varchar(255) NOT NULL,
  public_key text, private_key bytea, PRIMARY KEY (owner, service, name));
CREATE TABLE che_k8s_runtime (workspace_id varchar(255) PRIMARY KEY REFERENCES workspace(id), namespace varchar(255), status varchar(255));
CREATE TABLE che_event (id serial PRIMARY KEY, workspace_id varchar(255) REFERENCES workspace(id), at timestamptz NOT NULL, kind varchar(64), payload text, amount numeric(12,4));

INSERT INTO usr VALUES
  ('user-admin', 'admin', 'admin@che', NULL),
  ('user-zoe', 'zoë 日本', 'zoe@example.com', 'p''w\\"d'),
  ('user-tab', E'tab\\there', E'new\\nline@example.com', '');
INSERT INTO account VALUES ('user-admin', 'admin', 'personal'), ('user-zoe', 'zoë 日本', 'personal'), ('user-tab', E'tab\\there', 'personal');
INSERT INTO workspace VALUES
  ('workspace1a2b3c', 'nodejs-web-app', 'user-admin', false, '2022-01-10 10:00:00.123456+00', NULL),
  ('workspace4d5e6f', 'quarkus 🚀', 'user-zoe', false, '2022-02-11 11:11:11+02', '2022-03-01 00:00:00+00'),
  ('workspace7g8h9i', 'tmp', 'user-tab', true, '2022-03-12 12:00:00+00', NULL);
INSERT INTO workspace_attributes VALUES
  ('workspace1a2b3c', 'stackName', 'Node.js Express Web Application'),
  ('workspace1a2b3c', 'infrastructureNamespace', 'admin-che'),
  ('workspace4d5e6f', 'note', E'multi\\nline\\twith ''quotes'' and \\\\ backslash'),
  ('workspace4d5e6f', 'empty', ''),
  ('workspace7g8h9i', 'null', NULL);
INSERT INTO devfile (workspace_id, api_version, name, content) VALUES
  ('workspace1a2b3c', '1.0.0', 'nodejs-web-app', '{"components":[{"type":"chePlugin","id":"che-incubator/typescript/latest"}],"attributes":{"persistVolumes":"false"}}'),
  ('workspace4d5e6f', '1.0.0', 'quarkus', '{"components":[],"commands":[{"name":"build","actions":[{"type":"exec","command":"mvn package"}]}]}');
INSERT INTO devfile_project (devfile_id, name, location, clone_path) VALUES
  (1, 'nodejs-web-app', 'https://github.com/che-samples/web-nodejs-sample.git', NULL),
  (1, 'in-cluster', 'https://devfile-registry.${inNs}/projects/nodejs-web-app.zip', 'src/in-cluster'),
  (2, 'quarkus-quickstarts', 'https://git.${inNs}/zoe/quarkus-quickstarts.git', 'quarkus');
INSERT INTO sshkeypair VALUES
  ('user-admin', 'vcs', 'github.com', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheSample admin@che', '\\x00ff10207f80'),
  ('user-zoe', 'workspace', 'default', NULL, NULL);
INSERT INTO che_event (workspace_id, at, kind, payload, amount)
  SELECT (ARRAY['workspace1a2b3c','workspace4d5e6f','workspace7g8h9i'])[1 + i % 3], timestamptz '2022-01-01 00:00:00+00' + i * interval '37 minutes',
         (ARRAY['start','stop','error'])[1 + i % 3], 'event ' || i || repeat(' x', i % 17), i * 1.0625
  FROM generate_series(1, 1500) AS i;
`;
}

function keycloakSchemaSql(ns: string, domain: string): string {
  const inNs = `${ns}.${domain}`;
  return `
SET ROLE ${KEYCLOAK_DB_USER};
CREATE TABLE client (id varchar(36) PRIMARY KEY, client_id varchar(255) NOT NULL, realm_id varchar(255) NOT NULL, root_url varchar(255), enabled boolean NOT NULL);
CREATE TABLE redirect_uris (client_id varchar(36) NOT NULL REFERENCES client(id), value varchar(255) NOT NULL, PRIMARY KEY (client_id, value));
CREATE TABLE web_origins (client_id varchar(36) NOT NULL REFERENCES client(id), value varchar(255) NOT NULL, PRIMARY KEY (client_id, value));
INSERT INTO client VALUES ('5b1a4f0e-0000-4000-8000-000000000001', 'che-public', 'che', 'https://${inNs}', true),
  ('5b1a4f0e-0000-4000-8000-000000000002', 'admin-cli', 'master', NULL, true);
INSERT INTO redirect_uris VALUES ('5b1a4f0e-0000-4000-8000-000000000001', 'https://${inNs}/dashboard/*'),
  ('5b1a4f0e-0000-4000-8000-000000000001', 'https://${inNs}/*');
INSERT INTO web_origins VALUES ('5b1a4f0e-0000-4000-8000-000000000001', 'https://${inNs}');
`;
}

/** Creates the role (LOGIN, password) when missing and an empty database it owns when missing. */
export async function ensureDatabase(pg: Postgres, db: string, user: string, password: string): Promise<void> {
  await pg.psql(`
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${lit(user)}) THEN
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', ${lit(user)}, ${lit(password)});
  END IF;
END $$;`);
  const exists = (await pg.psql(`SELECT 1 FROM pg_database WHERE datname = ${lit(db)}`)).trim() === '1';
  if (!exists) await pg.psql(`CREATE DATABASE ${ident(db)} OWNER ${ident(user)}`);
}

/** Creates Che's and Keycloak's databases with their owners, schemas and rows; refuses existing ones. */
export async function createSampleDatabases(pg: Postgres, ns: string, domain: string, passwords: { che: string; keycloak: string }): Promise<void> {
  for (const [db, user, password, schema] of [
    [CHE_DB, CHE_DB_USER, passwords.che, cheSchemaSql(ns, domain)],
    [KEYCLOAK_DB, KEYCLOAK_DB_USER, passwords.keycloak, keycloakSchemaSql(ns, domain)],
  ] as const) {
    const exists = (await pg.psql(`SELECT 1 FROM pg_database WHERE datname = ${lit(db)}`)).trim() === '1';
    if (exists) throw new ResticError(`database ${db} already exists on the PostgreSQL server: the sample Che needs a fresh one`);
    await ensureDatabase(pg, db, user, password);
    await pg.psql(schema, db);
  }
}

async function upsertSecret(kc: KubeConfig, body: V1Secret): Promise<void> {
  const { core } = kubeClients(kc);
  const { name, namespace } = body.metadata as { name: string; namespace: string };
  try {
    await core.createNamespacedSecret({ namespace, body });
  } catch (e) {
    if (!isApiStatus(e, 409)) throw e;
    await core.replaceNamespacedSecret({ name, namespace, body });
  }
}

/** Applies every CRD of deploy/crds (CheCluster and the three backup kinds) and waits until they are served. */
export async function installCheCrds(kc: KubeConfig, timeoutMs = 30_000): Promise<void> {
  const crds = crdDirectory();
  await applyCrds(kc, (await readdir(crds)).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(crds, f)), timeoutMs);
}

/**
 * Installs the sample Che into `namespace` (default eclipse-che) on the cluster behind `kc`, with its
 * databases on `pg`. The namespace and the databases must not exist yet.
 */
export async function installSampleChe(kc: KubeConfig, pg: Postgres, opts: SampleCheOptions = {}): Promise<SampleChe> {
  const ns = opts.namespace ?? 'eclipse-che';
  const domain = opts.domain ?? SAMPLE_DOMAIN;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const { core, apps, custom } = kubeClients(kc);

  await installCheCrds(kc, timeoutMs);
  await core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });

  const chePassword = randomBytes(12).toString('base64url');
  const keycloakPassword = randomBytes(12).toString('base64url');
  await upsertSecret(kc, credentialsSecret(ns, CHE_POSTGRES_SECRET, 'postgres-secret', CHE_DB_USER, chePassword));
  await upsertSecret(kc, credentialsSecret(ns, IDENTITY_POSTGRES_SECRET, 'keycloak-postgres-secret', KEYCLOAK_DB_USER, keycloakPassword));
  await upsertSecret(kc, credentialsSecret(ns, IDENTITY_SECRET, 'keycloak-secret', 'admin', randomBytes(12).toString('base64url')));

  await createSampleDatabases(pg, ns, domain, { che: chePassword, keycloak: keycloakPassword });

  await core.createNamespacedConfigMap({ namespace: ns, body: caBundle(ns, 'custom-certs', { 'company-root-ca.crt': fakePem('Company root CA') }) });
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: caBundle(ns, 'ca-certs-extra', { 'proxy-ca.crt': fakePem('Proxy CA'), 'git-ca.crt': fakePem('Git server CA') }),
  });
  // Che's own settings ConfigMap: part of Che but not a CA bundle, so not part of a backup.
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'che', namespace: ns, labels: { ...CHE_LABELS, 'app.kubernetes.io/component': 'che' } }, data: { CHE_HOST: `${ns}.${domain}` } },
  });

  await apps.createNamespacedDeployment({ namespace: ns, body: postgresDeployment(ns, pg.connectionEnv) });
  await apps.createNamespacedDeployment({ namespace: ns, body: cheDeployment(ns) });
  await custom.createNamespacedCustomObject({ group: 'org.eclipse.che', version: 'v1', namespace: ns, plural: 'checlusters', body: sampleCheCluster(ns, domain) });
  return { namespace: ns, domain, cheClusterName: CHE_CLUSTER_NAME, databases: [CHE_DB, KEYCLOAK_DB] };
}

/**
 * Loses the whole installation, as deleting the namespace does on a real cluster (the postgres volume
 * goes with it): deletes the namespace, waits until it is gone, and drops the databases and their roles.
 */
export async function deleteSampleChe(kc: KubeConfig, pg: Postgres, ns: string, timeoutMs = 60_000): Promise<void> {
  const { core } = kubeClients(kc);
  try {
    await core.deleteNamespace({ name: ns });
  } catch (e) {
    if (!isApiStatus(e, 404)) throw e;
  }
  await waitFor(`namespace ${ns} to be deleted`, timeoutMs, async () => ((await orNotFound(core.readNamespace({ name: ns }))) ? undefined : true));
  await dropDatabases(pg, [[CHE_DB, CHE_DB_USER], [KEYCLOAK_DB, KEYCLOAK_DB_USER]]);
}

export async function dropDatabases(pg: Postgres, dbs: ReadonlyArray<readonly [db: string, owner: string]>): Promise<void> {
  for (const [db, owner] of dbs) {
    await pg.psql(`DROP DATABASE IF EXISTS ${ident(db)} WITH (FORCE)`);
    await pg.psql(`DROP ROLE IF EXISTS ${ident(owner)}`);
  }
}

/** Everything a restore must bring back, in comparable form. */
export interface CheState {
  cheCluster?: { labels: Record<string, string>; spec: unknown };
  /** CA-bundle ConfigMaps by name. */
  configMaps: Record<string, { labels: Record<string, string>; data: Record<string, string> }>;
  /** The Secrets the CheCluster names, by name, values decoded. */
  secrets: Record<string, { type: string; data: Record<string, string> }>;
  databases: Record<string, DatabaseState>;
}

export interface DatabaseState {
  owner: string;
  /** Table → owner and every row as JSON text (row_to_json), sorted. */
  tables: Record<string, { owner: string; rows: string[] }>;
  /** Sequence → last value. */
  sequences: Record<string, string>;
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

/** Owner, tables (owner, every row) and sequence values of `db`; undefined when it does not exist. */
export async function snapshotDatabase(pg: Postgres, db: string): Promise<DatabaseState | undefined> {
  const owner = (await pg.psql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = ${lit(db)}`)).trim();
  if (owner === '') return undefined;
  const tables: DatabaseState['tables'] = {};
  for (const line of lines(await pg.psql(`SELECT tablename || '|' || tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`, db))) {
    const [table, tableOwner] = line.split('|') as [string, string];
    const rows = lines(await pg.psql(`SELECT row_to_json(t)::text FROM public.${ident(table)} t`, db)).sort();
    tables[table] = { owner: tableOwner, rows };
  }
  const sequences: Record<string, string> = {};
  for (const line of lines(await pg.psql(`SELECT sequencename || '|' || coalesce(last_value::text, '') FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1`, db))) {
    const [seq, value] = line.split('|') as [string, string];
    sequences[seq] = value;
  }
  return { owner, tables, sequences };
}

const decode = (data: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

/** Reads the Che installation in `ns` (CheCluster spec, CA bundles, named Secrets, every DB row). */
export async function snapshotChe(kc: KubeConfig, pg: Postgres, ns: string): Promise<CheState> {
  const { core, custom } = kubeClients(kc);
  const state: CheState = { configMaps: {}, secrets: {}, databases: {} };
  const list = (await orNotFound(custom.listNamespacedCustomObject({ group: 'org.eclipse.che', version: 'v1', namespace: ns, plural: 'checlusters' }))) as
    | { items: Array<{ metadata: { labels?: Record<string, string> }; spec?: Record<string, Record<string, unknown> | undefined> }> }
    | undefined;
  const cr = list?.items[0];
  if (cr) state.cheCluster = { labels: cr.metadata.labels ?? {}, spec: cr.spec ?? {} };

  const cms = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app.kubernetes.io/part-of=che.eclipse.org,app.kubernetes.io/component=ca-bundle' });
  for (const cm of cms.items) state.configMaps[cm.metadata!.name!] = { labels: cm.metadata!.labels ?? {}, data: cm.data ?? {} };

  const spec = cr?.spec ?? {};
  const str = (v: unknown, fallback: string): string => (typeof v === 'string' && v !== '' ? v : fallback);
  const secretNames = [
    str(spec.database?.chePostgresSecret, CHE_POSTGRES_SECRET),
    str(spec.auth?.identityProviderPostgresSecret, IDENTITY_POSTGRES_SECRET),
    str(spec.auth?.identityProviderSecret, IDENTITY_SECRET),
  ];
  for (const name of secretNames) {
    const s = await orNotFound(core.readNamespacedSecret({ name, namespace: ns }));
    if (s) state.secrets[name] = { type: s.type ?? '', data: decode(s.data) };
  }

  for (const db of [str(spec.database?.chePostgresDb, CHE_DB), KEYCLOAK_DB]) {
    const d = await snapshotDatabase(pg, db);
    if (d) state.databases[db] = d;
  }
  return state;
}

/** Human-readable differences between two states ("" entries never; empty list when equal). */
export function diffCheStates(before: CheState, after: CheState): string[] {
  const problems: string[] = [];
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
  if (!after.cheCluster && before.cheCluster) problems.push('CheCluster: missing');
  else if (before.cheCluster && after.cheCluster) {
    if (!same(before.cheCluster.spec, after.cheCluster.spec)) problems.push(`CheCluster spec differs: ${describeDiff(before.cheCluster.spec, after.cheCluster.spec)}`);
    if (!same(before.cheCluster.labels, after.cheCluster.labels)) problems.push('CheCluster labels differ');
  }
  for (const [kind, a, b] of [
    ['ConfigMap', before.configMaps, after.configMaps],
    ['Secret', before.secrets, after.secrets],
  ] as const) {
    for (const name of Object.keys(a)) {
      if (!(name in b)) problems.push(`${kind} ${name}: missing`);
      else if (!same(a[name], b[name])) problems.push(`${kind} ${name}: differs (${describeDiff(a[name], b[name])})`);
    }
    for (const name of Object.keys(b)) if (!(name in a)) problems.push(`${kind} ${name}: unexpected`);
  }
  for (const [db, a] of Object.entries(before.databases)) {
    const b = after.databases[db];
    if (!b) {
      problems.push(`database ${db}: missing`);
      continue;
    }
    if (a.owner !== b.owner) problems.push(`database ${db}: owner ${b.owner}, expected ${a.owner}`);
    for (const [table, t] of Object.entries(a.tables)) {
      const u = b.tables[table];
      if (!u) {
        problems.push(`table ${db}.${table}: missing`);
        continue;
      }
      if (t.owner !== u.owner) problems.push(`table ${db}.${table}: owner ${u.owner}, expected ${t.owner}`);
      const mine = new Set(u.rows);
      const lost = t.rows.filter((r) => !mine.has(r));
      const theirs = new Set(t.rows);
      const extra = u.rows.filter((r) => !theirs.has(r));
      if (lost.length || extra.length || t.rows.length !== u.rows.length)
        problems.push(`table ${db}.${table}: ${lost.length} rows missing, ${extra.length} unexpected (of ${t.rows.length})${lost[0] ? `, e.g. ${lost[0].slice(0, 120)}` : ''}`);
    }
    for (const table of Object.keys(b.tables)) if (!(table in a.tables)) problems.push(`table ${db}.${table}: unexpected`);
    if (!same(a.sequences, b.sequences)) problems.push(`database ${db}: sequence values differ (${describeDiff(a.sequences, b.sequences)})`);
  }
  return problems;
}

/** Counts for a verification summary. */
export function countCheState(state: CheState): { configMaps: number; secrets: number; databases: number; tables: number; rows: number } {
  const dbs = Object.values(state.databases);
  const tables = dbs.flatMap((d) => Object.values(d.tables));
  return {
    configMaps: Object.keys(state.configMaps).length,
    secrets: Object.keys(state.secrets).length,
    databases: dbs.length,
    tables: tables.length,
    rows: tables.reduce((n, t) => n + t.rows.length, 0),
  };
}

/** JSON with object keys sorted, so key order never counts as a difference. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** The first differing path between two JSON values, e.g. `server.cheHost: "a" ≠ "b"`. */
function describeDiff(a: unknown, b: unknown, path = ''): string {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const x = (a as Record<string, unknown>)[k];
      const y = (b as Record<string, unknown>)[k];
      if (JSON.stringify(canonical(x)) !== JSON.stringify(canonical(y))) return describeDiff(x, y, path ? `${path}.${k}` : k);
    }
  }
  const show = (v: unknown): string => (v === undefined ? 'absent' : JSON.stringify(v).slice(0, 80));
  return `${path || '(value)'}: ${show(a)} ≠ ${show(b)}`;
}

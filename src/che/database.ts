import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { ResticError, UsageError } from '../index.js';
import type { CheKube, ExecResult } from './kube.js';
import { POLL_INTERVAL_MS, poll } from './util.js';

/** Label of Che's postgres pod (che-operator's component label). */
export const POSTGRES_SELECTOR = 'component=postgres';
export const DEFAULT_CHE_DB = 'dbche';
export const KEYCLOAK_DB = 'keycloak';

/** Database names we hand to pg_dump/psql; anything else is refused rather than quoted through a shell. */
const DB_NAME = /^[A-Za-z_][A-Za-z0-9_$-]*$/;

export function checkDatabaseName(name: string, where: string): string {
  if (!DB_NAME.test(name)) throw new UsageError(`${where} "${name}" is not a database name restic-ts handles (letters, digits, _, $, -)`);
  return name;
}

/** SQL string literal (standard_conforming_strings on, which load scripts set). */
export function sqlLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** A running postgres pod of the namespace, waiting up to `timeoutMs` for one. */
export async function postgresPod(kube: CheKube, namespace: string, timeoutMs: number, signal?: AbortSignal): Promise<V1Pod> {
  let seen = 'no running pod';
  return poll(
    `waiting for a running postgres pod (label ${POSTGRES_SELECTOR}) in namespace '${namespace}'`,
    { timeoutMs, intervalMs: POLL_INTERVAL_MS, signal },
    async (s) => {
      const pod = await kube.findRunningPod(namespace, POSTGRES_SELECTOR, s);
      if (pod) seen = `pod ${pod.metadata?.name}`;
      return pod;
    },
    () => seen,
  );
}

/** The container to run postgres tools in: the one named postgres, else the first. */
export function postgresContainer(pod: V1Pod): string {
  const containers = pod.spec?.containers ?? [];
  return (containers.find((c) => c.name === 'postgres') ?? containers[0])?.name ?? '';
}

function execFailure(what: string, result: ExecResult): ResticError {
  const lines = result.stderr
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  const last = lines.slice(-2).join(' / ');
  return new ResticError(`${what} failed (exit ${result.exitCode})${last ? `: ${last}` : ''}`);
}

function collector(chunks: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _e, done) {
      chunks.push(chunk);
      done();
    },
  });
}

export interface DbContext {
  kube: CheKube;
  namespace: string;
  pod: V1Pod;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Names of the databases on the server behind the postgres pod. */
export async function listDatabases(ctx: DbContext): Promise<string[]> {
  const chunks: Buffer[] = [];
  const sql = 'SELECT datname FROM pg_database WHERE NOT datistemplate';
  const result = await ctx.kube.exec(ctx.namespace, ctx.pod, ['psql', '-w', '-X', '-d', 'postgres', '-tA', '-c', sql], {
    container: postgresContainer(ctx.pod),
    stdout: collector(chunks),
    timeoutMs: ctx.timeoutMs,
    signal: ctx.signal,
  });
  if (result.exitCode !== 0) throw execFailure(`listing databases in pod ${ctx.pod.metadata?.name}`, result);
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** `pg_dump <db>` in the postgres pod, written to `file` (plain SQL, as che-operator made them). */
export async function dumpDatabase(ctx: DbContext, db: string, file: string): Promise<void> {
  const result = await ctx.kube.exec(ctx.namespace, ctx.pod, ['pg_dump', '-w', checkDatabaseName(db, 'database')], {
    container: postgresContainer(ctx.pod),
    stdout: createWriteStream(file, { mode: 0o600 }),
    timeoutMs: ctx.timeoutMs,
    signal: ctx.signal,
  });
  if (result.exitCode !== 0) throw execFailure(`pg_dump of database '${db}' in pod ${ctx.pod.metadata?.name}`, result);
}

export interface LoadDatabase {
  db: string;
  /** Owner of a newly created database when none exists yet (an existing database's owner is kept). */
  fallbackOwner: string;
  /** Password for the owner role, used only when that role does not exist and is created. */
  ownerPassword?: string;
  /** Plain-SQL dump file. */
  dumpFile: string;
  /** SQL run in the loaded database after the dump (search_path is empty then: qualify names). */
  afterSql?: string;
}

/**
 * The psql script driving a load (run against the `postgres` database): close the database to new sessions,
 * end the open ones and wait until they are gone (che#20940: DROP fails while sessions remain), drop it, create it
 * again for its owner (still closed), load the dump and `afterSql`, then restore its connection limit.
 */
export function loadScript(job: LoadDatabase): string {
  const db = checkDatabaseName(job.db, 'database');
  const lit = sqlLiteral(db);
  const others = `FROM pg_stat_activity WHERE datname = ${lit} AND pid <> pg_backend_pid()`;
  const createRole =
    job.ownerPassword !== undefined ? `CREATE ROLE :"owner" LOGIN PASSWORD ${sqlLiteral(job.ownerPassword)};` : `CREATE ROLE :"owner" LOGIN;`;
  return `\\set ON_ERROR_STOP on
SET standard_conforming_strings = on;
SELECT coalesce((SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = ${lit}), ${sqlLiteral(job.fallbackOwner)}) AS owner \\gset
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') AS create_role \\gset
\\if :create_role
${createRole}
\\endif
SELECT coalesce((SELECT datconnlimit FROM pg_database WHERE datname = ${lit}), -1) AS old_limit \\gset
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${lit}) AS db_exists \\gset
\\if :db_exists
ALTER DATABASE ${sqlIdent(db)} CONNECTION LIMIT 0;
DO $do$
BEGIN
  FOR i IN 1..300 LOOP
    PERFORM pg_stat_clear_snapshot();
    PERFORM pg_terminate_backend(pid) ${others};
    EXIT WHEN NOT EXISTS (SELECT 1 ${others});
    PERFORM pg_sleep(0.1);
  END LOOP;
END
$do$;
DROP DATABASE ${sqlIdent(db)};
\\endif
CREATE DATABASE ${sqlIdent(db)} OWNER :"owner" CONNECTION LIMIT 0;
\\connect ${db}
\\ir dump.sql
\\ir after.sql
\\connect postgres
ALTER DATABASE ${sqlIdent(db)} CONNECTION LIMIT :old_limit;
`;
}

/**
 * Receives the three parts (script, dump, after-SQL) of a load on stdin, by their sizes ($1 $2 $3), into a
 * private temporary folder, then runs the script. Sizes instead of EOF because exec cannot close stdin reliably;
 * the password stays out of every command line.
 */
const LOAD_SHELL = `set -eu
umask 077
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
take() {
  head -c "$2" > "$D/$1"
  got=$(wc -c < "$D/$1" | tr -d ' ')
  [ "$got" -eq "$2" ] || { echo "received $got of $2 bytes of $1" >&2; exit 1; }
}
take load.sql "$1"
take dump.sql "$2"
take after.sql "$3"
cd "$D"
psql -w -X -q -d postgres -f load.sql > /dev/null
`;

/** Replaces a database with the dump (see loadScript), in the postgres pod. */
export async function loadDatabase(ctx: DbContext, job: LoadDatabase): Promise<void> {
  const script = Buffer.from(loadScript(job));
  const after = Buffer.from(job.afterSql ?? '');
  const dumpSize = (await stat(job.dumpFile)).size;
  const stdin = Readable.from(
    (async function* () {
      yield script;
      yield* createReadStream(job.dumpFile);
      yield after;
    })(),
  );
  const command = ['sh', '-c', LOAD_SHELL, 'sh', String(script.length), String(dumpSize), String(after.length)];
  const result = await ctx.kube.exec(ctx.namespace, ctx.pod, command, {
    container: postgresContainer(ctx.pod),
    stdin,
    timeoutMs: ctx.timeoutMs,
    signal: ctx.signal,
  });
  if (result.exitCode !== 0) throw execFailure(`loading database '${job.db}' in pod ${ctx.pod.metadata?.name}`, result);
}

/** Che's workspace runtime tables: after a restore no workspace is running, whatever the dump says. */
const RUNTIME_TABLES = [
  'che_k8s_runtime',
  'che_k8s_machine',
  'che_k8s_machine_attributes',
  'che_k8s_server',
  'che_k8s_server_attributes',
  'k8s_runtime_command',
  'k8s_runtime_command_attributes',
];

/** Columns holding URLs under `<namespace>.<domain>`, per database kind. */
export const URL_COLUMNS = {
  che: [['devfile_project', 'location']],
  keycloak: [
    ['redirect_uris', 'value'],
    ['web_origins', 'value'],
    ['client', 'root_url'],
    ['client', 'base_url'],
    ['client', 'management_url'],
  ],
} as const;

/** Empties the runtime tables that exist (in one TRUNCATE: they reference each other). */
export function clearRuntimeSql(): string {
  const names = `ARRAY[${RUNTIME_TABLES.map(sqlLiteral).join(', ')}]`;
  return `DO $do$
DECLARE
  t text;
  found text[] := ARRAY[]::text[];
BEGIN
  FOREACH t IN ARRAY ${names} LOOP
    IF to_regclass(format('public.%I', t)) IS NOT NULL THEN
      found := found || format('public.%I', t);
    END IF;
  END LOOP;
  IF array_length(found, 1) > 0 THEN
    EXECUTE 'TRUNCATE ' || array_to_string(found, ', ');
  END IF;
END
$do$;
`;
}

/** Replaces `from` by `to` in the given columns, where they exist. */
export function rewriteUrlsSql(columns: ReadonlyArray<readonly [string, string]>, from: string, to: string): string {
  if (from === to || columns.length === 0) return '';
  const pairs = columns.map(([t, c]) => `ARRAY[${sqlLiteral(t)}, ${sqlLiteral(c)}]`).join(', ');
  return `DO $do$
DECLARE
  tc text[];
BEGIN
  FOREACH tc SLICE 1 IN ARRAY ARRAY[${pairs}] LOOP
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = tc[1] AND column_name = tc[2]) THEN
      EXECUTE format('UPDATE public.%I SET %I = replace(%I, %L, %L) WHERE strpos(%I, %L) > 0', tc[1], tc[2], tc[2], ${sqlLiteral(from)}, ${sqlLiteral(to)}, tc[2], ${sqlLiteral(from)});
    END IF;
  END LOOP;
END
$do$;
`;
}

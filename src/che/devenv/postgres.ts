// A throwaway real PostgreSQL server (Debian's postgresql-15) for the Che demo and tests: its own
// data directory under os.tmpdir(), TCP on 127.0.0.1 only, password authentication, bounded start/stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResticError } from '../../index.js';
import { firstLine, runProcess } from './process.js';

export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';

export interface PostgresOptions {
  /** Directory holding initdb, postgres, psql (default Debian's postgresql-15). */
  binDir?: string;
  /** Bound on initdb plus server start-up (default 60 s). */
  startTimeoutMs?: number;
}

/** libpq environment variables that reach the server as its superuser. */
export interface PgConnectionEnv {
  PGHOST: string;
  PGPORT: string;
  PGUSER: string;
  PGPASSWORD: string;
}

export interface Postgres {
  host: string;
  port: number;
  superuser: string;
  password: string;
  connectionEnv: PgConnectionEnv;
  /** Runs SQL through psql (ON_ERROR_STOP, unaligned tuples-only output) and returns its stdout. */
  psql(sql: string, db?: string): Promise<string>;
  /** Fast shutdown (SIGKILL if it lingers), then removes the data directory. Idempotent. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const PSQL_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const READY_POLL_MS = 100;

/** uid/gid of a user from /etc/passwd, or undefined. */
async function lookupUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  const bin = opts.binDir ?? DEFAULT_PG_BIN;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  const left = (): number => Math.max(1, deadline - Date.now());
  const dir = await mkdtemp(join(tmpdir(), 'restic-ts-pg-'));
  let child: ChildProcess | undefined;
  try {
    // PostgreSQL refuses to run as root: hand the directory to the unprivileged `postgres` user.
    const owner = process.getuid?.() === 0 ? await lookupUser('postgres') : undefined;
    if (process.getuid?.() === 0 && !owner) throw new ResticError('running as root but there is no "postgres" user to run PostgreSQL as');
    if (owner) await chown(dir, owner.uid, owner.gid);
    const password = randomBytes(18).toString('base64url');
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) await chown(pwfile, owner.uid, owner.gid);
    const asOwner = { uid: owner?.uid, gid: owner?.gid, cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', TZ: 'UTC' } };

    const data = join(dir, 'data');
    const init = await runProcess(
      join(bin, 'initdb'),
      ['-D', data, '-U', SUPERUSER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--no-locale', '-E', 'UTF8', '--no-sync'],
      { ...asOwner, timeoutMs: left() },
    );
    await rm(pwfile, { force: true });
    if (init.code !== 0) throw new ResticError(`initdb failed: ${firstLine(init.stderr)}`);

    const psqlBin = join(bin, 'psql');
    let port = 0;
    let env: NodeJS.ProcessEnv = {};
    // The free port may be taken between probing and binding (other tests run alongside): retry.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      env = { PATH: process.env.PATH ?? '/usr/bin:/bin', TZ: 'UTC', PGCONNECT_TIMEOUT: '5', PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: SUPERUSER, PGPASSWORD: password };
      const stderr: Buffer[] = [];
      const server = spawn(
        join(bin, 'postgres'),
        [
          '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
          // A disposable server: durability is not needed, a small footprint is (shared 2-core machine).
          '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
          '-c', 'shared_buffers=16MB', '-c', 'max_connections=30', '-c', 'log_min_messages=warning',
        ],
        { ...asOwner, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child = server;
      server.stderr!.on('data', (d: Buffer) => {
        if (stderr.length < 100) stderr.push(d);
      });
      let ready = false;
      while (server.exitCode === null && server.signalCode === null) {
        const r = await runProcess(join(bin, 'pg_isready'), ['-q', '-t', '1'], { env, timeoutMs: 5_000 });
        if (r.code === 0) {
          ready = true;
          break;
        }
        if (Date.now() >= deadline) throw new ResticError(`postgres did not accept connections within ${opts.startTimeoutMs ?? 60_000} ms`);
        await sleep(READY_POLL_MS);
      }
      if (ready) break;
      await exited(server);
      const log = Buffer.concat(stderr).toString('utf8');
      if (attempt < 3 && /could not bind|already in use/i.test(log)) continue;
      throw new ResticError(`postgres exited during start-up: ${firstLine(log)}`);
    }
    const connectionEnv: PgConnectionEnv = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: SUPERUSER, PGPASSWORD: password };
    const psql = async (sql: string, db = 'postgres'): Promise<string> => {
      const r = await runProcess(psqlBin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', db], { env, input: sql, timeoutMs: PSQL_TIMEOUT_MS });
      if (r.code !== 0) throw new ResticError(`psql on database ${db} failed: ${firstLine(r.stderr)}`);
      return r.stdout;
    };

    const running = child;
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        // SIGINT is PostgreSQL's "fast" shutdown: open sessions are cut, no waiting for clients.
        running.kill('SIGINT');
        const killer = setTimeout(() => running.kill('SIGKILL'), STOP_GRACE_MS);
        await exited(running);
        clearTimeout(killer);
        await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      })());
    return { host: '127.0.0.1', port, superuser: SUPERUSER, password, connectionEnv, psql, stop };
  } catch (e) {
    if (child) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    throw e;
  }
}

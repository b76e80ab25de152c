// Runs our CLI and the real restic binary as child processes, always bounded by a timeout.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface RunOptions {
  cwd?: string;
  /** Merged over a minimal environment (PATH, HOME, TZ) so the caller's RESTIC_* never leak in. */
  env?: Record<string, string>;
  timeoutMs?: number;
  input?: string;
}

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

const DEFAULT_TIMEOUT_MS = 300_000;

/** Spawns `cmd args`; never rejects for a non-zero exit, only when the process cannot start. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    TZ: process.env.TZ ?? 'UTC',
    ...opts.env,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
    // A child that exits without reading its stdin makes the write fail with EPIPE: not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Our CLI (`npm run build` output). Fails loudly when it has not been built. */
export function ours(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  return run(process.execPath, [CLI, ...args], opts);
}

/** The real restic, without its cache so throwaway repos leave nothing in ~/.cache/restic. */
export function restic(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('restic', ['--no-cache', ...args], opts);
}

/** Human-readable summary of a run for assertion messages. */
export function formatRun(what: string, r: RunResult): string {
  return `${what}: exit ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout.slice(0, 4000)}\n--- stderr ---\n${r.stderr.slice(0, 4000)}`;
}

/** Throws with the full output unless the run exited 0. */
export function expectOk(what: string, r: RunResult): RunResult {
  if (r.code !== 0) throw new Error(formatRun(what, r));
  return r;
}

/** Parses JSON lines (restic's `ls --json` shape). */
export function jsonLines(text: string): unknown[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
}

// Runs the real kubectl against a kubeconfig in a private temp HOME (so its discovery cache is
// per test run), every call bounded by a timeout. KUBECTL=/path/to/kubectl picks another binary.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, formatRun, type RunResult } from './run.js';

export const KUBECTL = process.env.KUBECTL ?? 'kubectl';

const DEFAULT_TIMEOUT_MS = 30_000;

export interface KubectlRunOptions {
  input?: string;
  timeoutMs?: number;
  /** Extra environment, e.g. KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false to force SPDY for exec. */
  env?: Record<string, string>;
}

export interface Streaming {
  /** Everything written to stdout so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once stdout satisfies `test`; rejects after `timeoutMs` with the output seen. */
  waitFor(test: (stdout: string) => boolean, timeoutMs?: number): Promise<void>;
  /** Kills the process (if still running) and resolves when it has exited. */
  stop(): Promise<void>;
}

export interface Kubectl {
  /** Temp directory holding the kubeconfig and kubectl's HOME. */
  readonly dir: string;
  readonly kubeconfig: string;
  run(args: readonly string[], opts?: KubectlRunOptions): Promise<RunResult>;
  /** Like run, but throws with the full output unless kubectl exits 0. */
  ok(args: readonly string[], opts?: KubectlRunOptions): Promise<RunResult>;
  /** `kubectl <args> -o json`, parsed. */
  json<T = unknown>(args: readonly string[]): Promise<T>;
  /** Writes `text` to a file in the temp dir and returns its path (for `apply -f`). */
  file(name: string, text: string): Promise<string>;
  /** Starts a long-running kubectl (`get -w`) whose output can be awaited. */
  stream(args: readonly string[], timeoutMs?: number): Streaming;
  /** Removes the temp directory. */
  close(): Promise<void>;
}

export async function kubectlFor(server: { kubeconfig: string }): Promise<Kubectl> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesim-kubectl-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, server.kubeconfig, { mode: 0o600 });
  const env = { KUBECONFIG: kubeconfig, HOME: dir };
  const streams = new Set<Streaming>();

  const k: Kubectl = {
    dir,
    kubeconfig,
    run: (args, opts = {}) => run(KUBECTL, args, { env: { ...env, ...opts.env }, input: opts.input, timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS }),
    async ok(args, opts) {
      const r = await k.run(args, opts);
      if (r.code !== 0) throw new Error(formatRun(`kubectl ${args.join(' ')}`, r));
      return r;
    },
    async json<T>(args: readonly string[]) {
      const r = await k.ok([...args, '-o', 'json']);
      return JSON.parse(r.stdout) as T;
    },
    async file(name, text) {
      const p = join(dir, name);
      await writeFile(p, text);
      return p;
    },
    stream(args, timeoutMs = DEFAULT_TIMEOUT_MS) {
      const child = spawn(KUBECTL, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const waiters = new Set<() => void>();
      const poke = () => waiters.forEach((w) => w());
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
        poke();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
        poke();
      });
      const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
      const killTimer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      void exited.then(() => {
        clearTimeout(killTimer);
        poke();
      });
      const s: Streaming = {
        get stdout() {
          return stdout;
        },
        get stderr() {
          return stderr;
        },
        waitFor(test, waitMs = 10_000) {
          return new Promise<void>((resolve, reject) => {
            const check = () => {
              if (test(stdout)) done(undefined);
              else if (child.exitCode !== null || child.signalCode !== null) done(new Error(`kubectl ${args.join(' ')} exited before the expected output\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
            };
            const timer = setTimeout(() => done(new Error(`timed out waiting for kubectl ${args.join(' ')}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`)), waitMs);
            const done = (err: Error | undefined) => {
              clearTimeout(timer);
              waiters.delete(check);
              if (err) reject(err);
              else resolve();
            };
            waiters.add(check);
            check();
          });
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
          streams.delete(s);
        },
      };
      streams.add(s);
      return s;
    },
    async close() {
      await Promise.all([...streams].map((s) => s.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return k;
}

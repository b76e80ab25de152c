// Helpers the benches share: sizes, the layout generator, medians, and running a tool under
// /usr/bin/time with its output in a log file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MiB = 1024 * 1024;
export const TIME_BIN = '/usr/bin/time';
export const RESTIC_BIN = process.env.RESTIC_BIN ?? '/usr/bin/restic';
export const RESTIC_TS_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** The `restic-ts` command as npm links it (see bench/README, "Where the time goes"). */
export const RESTIC_TS_BIN = fileURLToPath(new URL('../../bin/restic-ts.js', import.meta.url));

/** Accepts `256M`, `1G`, `1GiB`, `512MiB`, `100k` or plain bytes; suffixes are binary. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new Error(`bad size "${text}" (examples: 256M, 1G)`);
  return Math.round(Number(m[1]) * 1024 ** ['', 'k', 'm', 'g', 't'].indexOf(m[2]!.toLowerCase()));
}

/** mulberry32: a data set's layout (sizes, names) depends only on the seed; contents are random. */
export function prng(seed: number): (lo: number, hi: number) => number {
  let a = seed >>> 0;
  return (lo, hi) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * (hi - lo + 1));
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Compares every regular file under `dir` with `hashes` (relative path → SHA-256); returns the problems. */
export async function verifyTree(dir: string, hashes: ReadonlyMap<string, string>): Promise<string[]> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const rel = relative(dir, join(e.parentPath, e.name));
    seen.add(rel);
    const want = hashes.get(rel);
    if (want === undefined) problems.push(`extra: ${rel}`);
    else if ((await sha256File(join(dir, rel))) !== want) problems.push(`differs: ${rel}`);
  }
  for (const rel of hashes.keys()) if (!seen.has(rel)) problems.push(`missing: ${rel}`);
  return problems;
}

export interface Measurement {
  ok: boolean;
  seconds: number;
  rssKiB: number | null;
  error?: string;
}

let running: ChildProcess | undefined;

/** Kills the command measure() is running, if any (for Ctrl-C). */
function killRunning(): void {
  if (!running?.pid) return;
  try {
    process.kill(-running.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** On Ctrl-C or SIGTERM: kills the running command, runs `cleanup` (remove the work directory), exits 130. */
export function cleanUpOnInterrupt(cleanup: () => void): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killRunning();
      cleanup();
      process.exit(130);
    });
  }
}

/** Runs `cmd args` under /usr/bin/time in its own process group, without RESTIC_* variables; output goes to `log`. */
export async function measure(cmd: string, args: string[], log: string, timeoutSec: number): Promise<Measurement> {
  const timeFile = `${log}.time`;
  const logFh = await open(log, 'w');
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RESTIC_')) delete env[k];
  const started = performance.now();
  const child = spawn(TIME_BIN, ['-f', '%e %M', '-o', timeFile, cmd, ...args], {
    stdio: ['ignore', logFh.fd, logFh.fd],
    detached: true,
    env,
  });
  running = child;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  }, timeoutSec * 1000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve).on('error', () => resolve(null)));
  clearTimeout(timer);
  running = undefined;
  const seconds = (performance.now() - started) / 1000;
  await logFh.close();

  // /usr/bin/time writes "Command exited with non-zero status N" before the format line on failure.
  const timeLines = existsSync(timeFile) ? (await readFile(timeFile, 'utf8')).trim().split('\n') : [];
  const rss = Number(timeLines.at(-1)?.split(' ')[1]);
  const rssKiB = Number.isFinite(rss) ? rss : null;
  if (code === 0 && !timedOut) return { ok: true, seconds, rssKiB };
  // The first error-looking line (restic's "Fatal:", a Node stack's "Error [...]: ...") beats the log's tail.
  const lines = (await readFile(log, 'utf8')).split('\n').filter((l) => l.trim());
  const reason = lines.find((l) => /^Fatal:|Error\b/.test(l)) ?? lines.at(-1) ?? 'no output';
  const error = timedOut ? `timed out after ${timeoutSec} s` : `exit ${code}: ${reason.trim()}`;
  return { ok: false, seconds, rssKiB, error };
}

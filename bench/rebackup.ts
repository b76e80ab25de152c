/**
 * Backup bench, restic 0.14 vs restic-ts in one run, on two data sets: a tree of large random files
 * (default 1 GiB) and a tree of many small files (default 20,000). For each set:
 *   - `restic init` makes one repository, copied byte for byte for restic-ts, so both tools use the
 *     same key (same scrypt cost on open), config and chunker polynomial;
 *   - new-data backup: restic into its copy, restic-ts into the other;
 *   - unchanged re-backup, `--runs` times, alternating tools (each run uses the previous snapshot as
 *     parent); ratios use the fastest run of each tool, medians are shown too.
 * restic-ts's unchanged runs must report "0 new, 0 changed" and "Added to the repository: 0 B", and read
 * (all reads of the process, from /proc/self/io) less than half the data set: no file contents.
 *
 *   node dist/bench/rebackup.js [--size 1G] [--small-files 20000] [--runs 3] [--tmp DIR] [--timeout S]
 *
 * Progress on stderr; a table on stdout, its last line the same numbers as JSON. Exit 1 on failure.
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cp, mkdir, open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanUpOnInterrupt, median, MiB, parseSize, prng, RESTIC_BIN, RESTIC_TS_BIN, RESTIC_TS_MAIN } from './common.js';


const { values } = parseArgs({
  options: { size: { type: 'string' }, 'small-files': { type: 'string' }, runs: { type: 'string' }, tmp: { type: 'string' }, timeout: { type: 'string' } },
  strict: true,
});
const SIZE = parseSize(values.size ?? '1G');
const SMALL = Number(values['small-files'] ?? '20000');
const RUNS = Math.max(1, Number(values.runs ?? '3'));
const TIMEOUT_S = Number(values.timeout ?? String(300 + Math.ceil(SIZE / 1e6)));

async function makeLarge(root: string, size: number): Promise<number> {
  const rand = prng(1);
  const block = Buffer.allocUnsafe(8 * MiB);
  for (let i = 0, left = size; left > 0; i++) {
    const dir = join(root, `d${i % 4}`);
    await mkdir(dir, { recursive: true });
    const fh = await open(join(dir, `f${i}.bin`), 'w');
    let n = Math.min(left, rand(MiB, 64 * MiB));
    left -= n;
    while (n > 0) {
      const k = Math.min(n, block.length);
      randomFillSync(block, 0, k);
      await fh.write(block, 0, k);
      n -= k;
    }
    await fh.close();
  }
  return size;
}

async function makeSmall(root: string, count: number): Promise<number> {
  const rand = prng(2);
  const perDir = 100;
  let bytes = 0;
  for (let i = 0; i < count; i += perDir) {
    const leaf = i / perDir;
    const dir = join(root, `a${leaf % 10}`, `b${Math.floor(leaf / 10) % 10}`, `c${Math.floor(leaf / 100)}`);
    await mkdir(dir, { recursive: true });
    await Promise.all(
      Array.from({ length: Math.min(perDir, count - i) }, (_, j) => {
        const data = randomFillSync(Buffer.allocUnsafe(rand(1024, 8192)));
        bytes += data.length;
        return writeFile(join(dir, `f${i + j}.txt`), data);
      }),
    );
  }
  return bytes;
}

interface Run {
  ok: boolean;
  seconds: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], cwd: string): Promise<Run> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RESTIC_')) delete env[k];
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_S * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, seconds: (performance.now() - started) / 1000, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

const min = (xs: number[]) => Math.min(...xs);

interface SetResult {
  name: string;
  newData: { restic: number; ours: number; ratio: number };
  /** oursBytesRead: everything restic-ts read per unchanged run (code, index, trees; no file contents). */
  unchanged: { restic: number[]; ours: number[]; ratioMin: number; ratioMedian: number; oursBytesRead: number[] };
  problems: string[];
}

async function benchSet(work: string, name: string, data: string, dataBytes: number, pw: string): Promise<SetResult> {
  const repoA = join(work, `${name}-restic`);
  const repoB = join(work, `${name}-ours`);
  const problems: string[] = [];
  const init = await exec(RESTIC_BIN, ['-r', repoA, '--password-file', pw, 'init'], work);
  if (!init.ok) throw new Error(`restic init: ${init.stderr}`);
  await cp(repoA, repoB, { recursive: true });
  // Relative targets (run in the parent directory) keep /tmp's changing metadata out of the snapshots.
  const restic = () => exec(RESTIC_BIN, ['-r', repoA, '--password-file', pw, '--cache-dir', join(work, 'restic-cache'), 'backup', basename(data)], dirname(data));
  // restic-ts runs under a wrapper that reports the bytes the process read in total (/proc/self/io).
  const ours = () => exec(join(work, 'rchar.mjs'), ['-r', repoB, '--password-file', pw, 'backup', basename(data)], dirname(data));
  const step = async (what: string, f: () => Promise<Run>): Promise<Run> => {
    process.stderr.write(`${name}: ${what} ... `);
    const r = await f();
    process.stderr.write(r.ok ? `${r.seconds.toFixed(2)} s\n` : 'FAILED\n');
    if (!r.ok) problems.push(`${what}: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 200)}`);
    return r;
  };
  const newR = await step('restic backup (new data)', restic);
  const newO = await step('restic-ts backup (new data)', ours);
  const unchanged = { restic: [] as number[], ours: [] as number[] };
  const readBytes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    unchanged.restic.push((await step(`restic backup (unchanged #${i + 1})`, restic)).seconds);
    const o = await step(`restic-ts backup (unchanged #${i + 1})`, ours);
    unchanged.ours.push(o.seconds);
    if (o.ok && !/Files: +0 new, +0 changed/.test(o.stdout)) problems.push(`restic-ts unchanged run #${i + 1} saw new or changed files`);
    if (o.ok && !/Added to the repository: 0 B /.test(o.stdout)) problems.push(`restic-ts unchanged run #${i + 1} added data`);
    const read = Number(/rchar (\d+)/.exec(o.stderr)?.[1] ?? NaN);
    readBytes.push(read);
    // Parent reuse: file contents are not read again (what is read is code, index and trees).
    if (!(read < dataBytes / 2)) problems.push(`restic-ts unchanged run #${i + 1} read ${read} bytes of a ${dataBytes}-byte data set`);
  }
  return {
    name,
    newData: { restic: newR.seconds, ours: newO.seconds, ratio: newO.seconds / newR.seconds },
    unchanged: { ...unchanged, ratioMin: min(unchanged.ours) / min(unchanged.restic), ratioMedian: median(unchanged.ours) / median(unchanged.restic), oursBytesRead: readBytes },
    problems,
  };
}

async function main(): Promise<void> {
  if (!existsSync(RESTIC_TS_MAIN)) throw new Error(`${RESTIC_TS_MAIN} not found (npm run build)`);
  const work = mkdtempSync(join(values.tmp ?? tmpdir(), 'restic-ts-rebackup-'));
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  cleanUpOnInterrupt(cleanup);
  try {
    const pw = join(work, 'password');
    await writeFile(pw, 'bench\n');
    // The wrapper starts with the restic-ts command's own shell lines, so Node starts as it does there.
    const launcher = readFileSync(RESTIC_TS_BIN, 'utf8').split('\n').slice(0, 2).join('\n');
    await writeFile(
      join(work, 'rchar.mjs'),
      `${launcher}\nimport { readFileSync } from 'node:fs';\n` +
        `process.on('exit', () => process.stderr.write('rchar ' + /rchar: (\\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))[1] + '\\n'));\n` +
        `await import(${JSON.stringify(RESTIC_TS_MAIN)});\n`,
      { mode: 0o755 },
    );
    const sets: SetResult[] = [];
    if (SIZE > 0) {
      process.stderr.write(`generating ${(SIZE / MiB).toFixed(0)} MiB of large files ...\n`);
      const bytes = await makeLarge(join(work, 'large'), SIZE);
      sets.push(await benchSet(work, `large-${(SIZE / MiB).toFixed(0)}MiB`, join(work, 'large'), bytes, pw));
      rmSync(join(work, 'large'), { recursive: true, force: true });
    }
    if (SMALL > 0) {
      process.stderr.write(`generating ${SMALL} small files ...\n`);
      const bytes = await makeSmall(join(work, 'small'), SMALL);
      sets.push(await benchSet(work, `small-${SMALL}`, join(work, 'small'), bytes, pw));
    }
    const f = (n: number) => n.toFixed(2);
    const lines = ['data set              new: restic  ours   ratio | unchanged: restic min/median  ours min/median  ratio min (median)'];
    for (const s of sets) {
      lines.push(
        `${s.name.padEnd(20)}  ${f(s.newData.restic).padStart(11)} ${f(s.newData.ours).padStart(5)} ${f(s.newData.ratio).padStart(7)} | ` +
          `${f(min(s.unchanged.restic))}/${f(median(s.unchanged.restic))}`.padStart(28) +
          `${f(min(s.unchanged.ours))}/${f(median(s.unchanged.ours))}`.padStart(17) +
          `  ${f(s.unchanged.ratioMin)} (${f(s.unchanged.ratioMedian)})`,
      );
      lines.push(`  restic-ts read per unchanged run (code, index, trees): ${s.unchanged.oursBytesRead.map((b) => `${(b / MiB).toFixed(1)} MiB`).join(', ')}`);
      for (const p of s.problems) lines.push(`  problem: ${p}`);
    }
    process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(sets)}\n`);
    process.exitCode = sets.every((s) => s.problems.length === 0) ? 0 : 1;
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

/**
 * Restore bench: restic 0.14 vs restic-ts restoring the same restic-made repository, in the same run.
 * Generates a data set, backs it up once with restic (v2 repository, compression auto), then restores
 * `latest` alternately with restic and restic-ts (`--runs` times each, fresh target every time, the
 * target removed and `sync`ed between runs) and checks every file restic-ts restored against the
 * SHA-256 recorded while generating. Wall time and peak RSS of every child come from /usr/bin/time.
 *
 *   node dist/bench/restore.js [--size 1G] [--small-files 2000] [--runs 3] [--seed 1] [--tmp DIR]
 *   (or BENCH_SIZE, BENCH_SMALL_FILES, BENCH_RUNS, BENCH_SEED, BENCH_TMPDIR)
 *
 * Progress goes to stderr; the table goes to stdout, and stdout's last line is the result as JSON.
 * Exit code 1 when a restore fails or restic-ts's restore differs from the data.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const MiB = 1024 * 1024;
const TIME_BIN = '/usr/bin/time';
const RESTIC_BIN = process.env.RESTIC_BIN ?? '/usr/bin/restic';
const RESTIC_TS_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Settings {
  sizeBytes: number;
  smallFiles: number;
  runs: number;
  seed: number;
  tmp: string;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: { size: { type: 'string' }, 'small-files': { type: 'string' }, runs: { type: 'string' }, seed: { type: 'string' }, tmp: { type: 'string' } },
    strict: true,
  });
  const int = (text: string, name: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${text}"`);
    return n;
  };
  const size = values.size ?? process.env.BENCH_SIZE ?? '1G';
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(size.trim());
  if (!m) throw new Error(`bad size "${size}" (examples: 256M, 1G)`);
  return {
    sizeBytes: Math.round(Number(m[1]) * 1024 ** ['', 'k', 'm', 'g', 't'].indexOf(m[2]!.toLowerCase())),
    smallFiles: int(values['small-files'] ?? process.env.BENCH_SMALL_FILES ?? '2000', 'small-files', 0),
    runs: int(values.runs ?? process.env.BENCH_RUNS ?? '3', 'runs', 1),
    seed: int(values.seed ?? process.env.BENCH_SEED ?? '1', 'seed', 0),
    tmp: values.tmp ?? process.env.BENCH_TMPDIR ?? tmpdir(),
  };
}

/** mulberry32: file sizes depend only on the seed. */
function prng(seed: number): (lo: number, hi: number) => number {
  let a = seed >>> 0;
  return (lo, hi) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * (hi - lo + 1));
  };
}

/**
 * Random (incompressible) content: files of 1–64 MiB up to `sizeBytes`, plus `smallFiles` files of
 * 1–8 KiB in 100-file directories. Returns path relative to root → SHA-256.
 */
async function makeDataSet(root: string, s: Settings): Promise<Map<string, string>> {
  const rand = prng(s.seed);
  const hashes = new Map<string, string>();
  const block = Buffer.allocUnsafe(8 * MiB);
  await mkdir(join(root, 'files'), { recursive: true });
  for (let i = 0, left = s.sizeBytes; left > 0; i++) {
    const size = Math.min(left, rand(MiB, 64 * MiB));
    const rel = join('files', `f${i}.bin`);
    const hash = createHash('sha256');
    const fh = await open(join(root, rel), 'w');
    for (let todo = size; todo > 0; ) {
      const n = Math.min(todo, block.length);
      randomFillSync(block, 0, n);
      hash.update(block.subarray(0, n));
      await fh.write(block, 0, n);
      todo -= n;
    }
    await fh.close();
    hashes.set(rel, hash.digest('hex'));
    left -= size;
  }
  for (let i = 0; i < s.smallFiles; i++) {
    const dir = join('small', `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) await mkdir(join(root, dir), { recursive: true });
    const data = randomFillSync(Buffer.allocUnsafe(rand(1024, 8192)));
    await writeFile(join(root, dir, `s${i}.txt`), data);
    hashes.set(join(dir, `s${i}.txt`), createHash('sha256').update(data).digest('hex'));
  }
  return hashes;
}

interface Measurement {
  seconds: number;
  rssKiB: number;
}

/** Runs a command under /usr/bin/time; throws with its output's last lines when it fails. */
async function measure(cmd: string, args: string[], timeFile: string): Promise<Measurement> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RESTIC_')) delete env[k];
  const started = performance.now();
  const child = spawn(TIME_BIN, ['-f', '%e %M', '-o', timeFile, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve).on('error', () => resolve(null)));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const rss = Number((await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)?.split(' ')[1]);
  return { seconds, rssKiB: rss };
}

async function verifyTree(dir: string, hashes: Map<string, string>): Promise<string[]> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const rel = relative(dir, p);
    seen.add(rel);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(p, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
    if (hashes.get(rel) === undefined) problems.push(`extra: ${rel}`);
    else if (hash.digest('hex') !== hashes.get(rel)) problems.push(`differs: ${rel}`);
  }
  for (const rel of hashes.keys()) if (!seen.has(rel)) problems.push(`missing: ${rel}`);
  return problems;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const s = readSettings();
  for (const [file, hint] of [
    [TIME_BIN, 'apt-get install -y time'],
    [RESTIC_BIN, 'set RESTIC_BIN'],
    [RESTIC_TS_MAIN, 'npm run build'],
  ] as const) {
    if (!existsSync(file)) throw new Error(`${file} not found (${hint})`);
  }
  const work = mkdtempSync(join(s.tmp, 'restic-ts-restore-bench-'));
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
  try {
    const pw = join(work, 'password');
    await writeFile(pw, 'bench-password\n');
    const data = join(work, 'data');
    process.stderr.write(`generating ${(s.sizeBytes / MiB).toFixed(0)} MiB + ${s.smallFiles} small files ... `);
    const hashes = await makeDataSet(data, s);
    const repo = join(work, 'repo');
    const base = ['-r', repo, '--password-file', pw];
    const resticBase = [...base, '--cache-dir', join(work, 'cache')];
    await measure(RESTIC_BIN, [...resticBase, 'init'], join(work, 'time'));
    const backup = await measure(RESTIC_BIN, [...resticBase, 'backup', data], join(work, 'time'));
    process.stderr.write(`${hashes.size} files, backed up by restic in ${backup.seconds.toFixed(1)} s\n`);

    const tools = {
      restic: { cmd: RESTIC_BIN, args: resticBase },
      'restic-ts': { cmd: process.execPath, args: [RESTIC_TS_MAIN, ...base] },
    };
    const runs: Record<keyof typeof tools, Measurement[]> = { restic: [], 'restic-ts': [] };
    let problems: string[] = [];
    for (let i = 0; i < s.runs; i++) {
      // Alternate who goes first, so neither always finds the page cache warmer.
      const order = (i % 2 === 0 ? ['restic', 'restic-ts'] : ['restic-ts', 'restic']) as (keyof typeof tools)[];
      for (const name of order) {
        const target = join(work, `target-${name}`);
        spawnSync('sync');
        const m = await measure(tools[name].cmd, [...tools[name].args, 'restore', 'latest', '--target', target], join(work, 'time'));
        runs[name].push(m);
        process.stderr.write(`run ${i + 1}: ${name} ${m.seconds.toFixed(2)} s, ${(m.rssKiB / 1024).toFixed(0)} MiB RSS\n`);
        if (name === 'restic-ts' && i === s.runs - 1) problems = await verifyTree(join(target, data), hashes);
        rmSync(target, { recursive: true, force: true });
      }
    }

    const bytes = s.sizeBytes + [...hashes.keys()].filter((k) => k.startsWith('small')).length * 4608;
    const summary = (name: keyof typeof tools) => {
      const secs = runs[name].map((m) => m.seconds);
      return { seconds: secs, median: median(secs), rssMiB: Math.max(...runs[name].map((m) => m.rssKiB)) / 1024, mbPerSec: bytes / 1e6 / median(secs) };
    };
    const r = summary('restic');
    const t = summary('restic-ts');
    const ratio = t.median / r.median;
    const lines = [
      `data set: ${hashes.size} files, ${(s.sizeBytes / MiB).toFixed(0)} MiB in large files + ${s.smallFiles} small files, seed ${s.seed}; ${s.runs} runs each`,
      `tool        median s  runs                    peak RSS MiB  ~MB/s`,
      `restic      ${r.median.toFixed(2).padStart(8)}  ${r.seconds.map((x) => x.toFixed(2)).join(' ').padEnd(22)}  ${r.rssMiB.toFixed(0).padStart(12)}  ${r.mbPerSec.toFixed(0).padStart(5)}`,
      `restic-ts   ${t.median.toFixed(2).padStart(8)}  ${t.seconds.map((x) => x.toFixed(2)).join(' ').padEnd(22)}  ${t.rssMiB.toFixed(0).padStart(12)}  ${t.mbPerSec.toFixed(0).padStart(5)}`,
      `ratio restic-ts/restic (median wall time): ${ratio.toFixed(2)} (bar: ≤ 1.00)`,
      `restore check (restic-ts, last run): ${problems.length === 0 ? 'byte-equal' : `${problems.length} problems, e.g. ${problems.slice(0, 3).join('; ')}`}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n${JSON.stringify({ settings: { ...s, tmp: undefined }, restic: r, resticTs: t, ratio, problems: problems.slice(0, 20) })}\n`);
    process.exitCode = problems.length === 0 ? 0 : 1;
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

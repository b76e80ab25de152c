/**
 * Restore bench: restic 0.14 vs restic-ts restoring the same restic-made repository, in the same run.
 * Generates a data set, backs it up once with restic (v2 repository, compression auto), then restores
 * `latest` alternately with restic and restic-ts (`--runs` times each, a new target every time, `sync`
 * before each run, the targets removed at the end) and checks every file restic-ts restored against the
 * SHA-256 recorded while generating. Wall time and peak RSS of every child come from /usr/bin/time.
 *
 *   node dist/bench/restore.js [--size 1G] [--small-files 2000] [--runs 3] [--seed 1] [--tmp DIR]
 *   (or BENCH_SIZE, BENCH_SMALL_FILES, BENCH_RUNS, BENCH_SEED, BENCH_TMPDIR)
 *
 * Progress goes to stderr; the table goes to stdout, and stdout's last line is the result as JSON.
 * Exit code 1 when a restore fails or restic-ts's restore differs from the data.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanUpOnInterrupt, measure, median, MiB, parseSize, prng, RESTIC_BIN, RESTIC_TS_BIN, RESTIC_TS_MAIN, TIME_BIN, verifyTree, type Measurement } from './common.js';


interface Settings {
  sizeBytes: number;
  smallFiles: number;
  runs: number;
  seed: number;
  tmp: string;
}

/** Per command: generous, so that only a hung child stops the bench. */
const TIMEOUT_S = 3600;

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
  return {
    sizeBytes: parseSize(values.size ?? process.env.BENCH_SIZE ?? '1G'),
    smallFiles: int(values['small-files'] ?? process.env.BENCH_SMALL_FILES ?? '2000', 'small-files', 0),
    runs: int(values.runs ?? process.env.BENCH_RUNS ?? '3', 'runs', 1),
    seed: int(values.seed ?? process.env.BENCH_SEED ?? '1', 'seed', 0),
    tmp: values.tmp ?? process.env.BENCH_TMPDIR ?? tmpdir(),
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
  const cleanup = (): void => rmSync(work, { recursive: true, force: true });
  // A command that fails or hangs ends the bench with its reason.
  const run = async (cmd: string, args: string[]): Promise<Measurement> => {
    const m = await measure(cmd, args, join(work, 'log'), TIMEOUT_S);
    if (!m.ok) throw new Error(`${cmd} ${args.join(' ')}: ${m.error}`);
    return m;
  };
  cleanUpOnInterrupt(cleanup);
  try {
    const pw = join(work, 'password');
    await writeFile(pw, 'bench-password\n');
    const data = join(work, 'data');
    process.stderr.write(`generating ${(s.sizeBytes / MiB).toFixed(0)} MiB + ${s.smallFiles} small files ... `);
    const hashes = await makeDataSet(data, s);
    const repo = join(work, 'repo');
    const base = ['-r', repo, '--password-file', pw];
    const resticBase = [...base, '--cache-dir', join(work, 'cache')];
    await run(RESTIC_BIN, [...resticBase, 'init']);
    const backup = await run(RESTIC_BIN, [...resticBase, 'backup', data]);
    process.stderr.write(`${hashes.size} files, backed up by restic in ${backup.seconds.toFixed(1)} s\n`);

    const tools = {
      restic: { cmd: RESTIC_BIN, args: resticBase },
      'restic-ts': { cmd: RESTIC_TS_BIN, args: base },
    };
    const runs: Record<keyof typeof tools, Measurement[]> = { restic: [], 'restic-ts': [] };
    let problems: string[] = [];
    for (let i = 0; i < s.runs; i++) {
      // Alternate who goes first, so neither always finds the page cache warmer.
      const order = (i % 2 === 0 ? ['restic', 'restic-ts'] : ['restic-ts', 'restic']) as (keyof typeof tools)[];
      for (const name of order) {
        // A new target each time, all removed at the end: on ext4 without a journal (this project's CI
        // machine), files created within a minute of deleting thousands make inode allocation step over
        // every recently deleted inode, which cost either tool ~30 % of its CPU here and most of the
        // run-to-run spread.
        const target = join(work, `target-${name}-${i + 1}`);
        spawnSync('sync');
        const m = await run(tools[name].cmd, [...tools[name].args, 'restore', 'latest', '--target', target]);
        runs[name].push(m);
        process.stderr.write(`run ${i + 1}: ${name} ${m.seconds.toFixed(2)} s, ${((m.rssKiB ?? 0) / 1024).toFixed(0)} MiB RSS\n`);
        if (name === 'restic-ts' && i === s.runs - 1) problems = await verifyTree(join(target, data), hashes);
      }
    }

    const bytes = s.sizeBytes + [...hashes.keys()].filter((k) => k.startsWith('small')).length * 4608;
    const summary = (name: keyof typeof tools) => {
      const secs = runs[name].map((m) => m.seconds);
      return { seconds: secs, median: median(secs), rssMiB: Math.max(...runs[name].map((m) => m.rssKiB ?? 0)) / 1024, mbPerSec: bytes / 1e6 / median(secs) };
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

/**
 * End-to-end bench: restic 0.14 vs restic-ts on the same generated data set, in the same run.
 * For each tool: init a fresh v2 repo, backup (new data), backup again (unchanged tree), restore latest.
 * Wall time and peak RSS of every child come from /usr/bin/time; both restores are checked byte-for-byte.
 *
 *   npm run bench -- [--size 1G] [--small-files 20000] [--seed 1] [--timeout SECONDS] [--tmp DIR]
 *   (or BENCH_SIZE, BENCH_SMALL_FILES, BENCH_SEED, BENCH_TIMEOUT, BENCH_TMPDIR)
 *
 * Progress goes to stderr; the table goes to stdout, and stdout's last line is the same table as JSON.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanUpOnInterrupt, measure, MiB, parseSize, prng, RESTIC_BIN, RESTIC_TS_BIN, RESTIC_TS_MAIN, TIME_BIN, verifyTree, type Measurement } from './common.js';


interface Settings {
  sizeBytes: number;
  smallFiles: number;
  seed: number;
  timeoutSec: number;
  tmp: string;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      size: { type: 'string' },
      'small-files': { type: 'string' },
      seed: { type: 'string' },
      timeout: { type: 'string' },
      tmp: { type: 'string' },
    },
    strict: true,
  });
  const int = (text: string, name: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${text}"`);
    return n;
  };
  const sizeBytes = parseSize(values.size ?? process.env.BENCH_SIZE ?? '1G');
  return {
    sizeBytes,
    smallFiles: int(values['small-files'] ?? process.env.BENCH_SMALL_FILES ?? '20000', 'small-files'),
    seed: int(values.seed ?? process.env.BENCH_SEED ?? '1', 'seed'),
    // Generous per-command cap (2 min + 1 s per MB) so a hung child cannot stall the bench forever.
    timeoutSec: int(values.timeout ?? process.env.BENCH_TIMEOUT ?? String(120 + Math.ceil(sizeBytes / 1e6)), 'timeout'),
    tmp: values.tmp ?? process.env.BENCH_TMPDIR ?? tmpdir(),
  };
}

interface DataSet {
  root: string;
  files: number;
  bytes: number;
  /** Path relative to root → hex SHA-256 of its contents, recorded while writing. */
  hashes: Map<string, string>;
}

const block = Buffer.allocUnsafe(8 * MiB);

async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, block.length);
      randomFillSync(block, 0, n);
      hash.update(block.subarray(0, n));
      await fh.write(block, 0, n);
      left -= n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/**
 * Large files of 100–300 MiB take up to 60% of the size budget, medium files of 64 KiB–16 MiB the rest;
 * the small files (1–8 KiB, three levels of directories, ~100 per leaf) come on top of the budget.
 */
async function makeDataSet(root: string, s: Settings): Promise<DataSet> {
  const rand = prng(s.seed);
  const hashes = new Map<string, string>();
  let bytes = 0;
  const add = async (rel: string, size: number): Promise<void> => {
    hashes.set(rel, await writeRandomFile(join(root, rel), size));
    bytes += size;
  };

  await mkdir(join(root, 'large'), { recursive: true });
  let largeBudget = Math.floor(s.sizeBytes * 0.6);
  let remaining = s.sizeBytes;
  for (let i = 0; largeBudget >= 100 * MiB; i++) {
    const size = rand(100 * MiB, Math.min(300 * MiB, largeBudget));
    await add(join('large', `big-${i}.bin`), size);
    largeBudget -= size;
    remaining -= size;
  }
  for (let i = 0; remaining > 0; i++) {
    const dir = join('medium', `m${i % 8}`);
    if (i < 8) await mkdir(join(root, dir), { recursive: true });
    const size = Math.min(remaining, rand(64 * 1024, 16 * MiB));
    await add(join(dir, `file-${i}.dat`), size);
    remaining -= size;
  }

  const leaves = Math.max(1, Math.ceil(s.smallFiles / 100));
  const small: Array<{ rel: string; data: Buffer }> = [];
  for (let i = 0; i < s.smallFiles; i++) {
    const leaf = i % leaves;
    const rel = join('small', `a${leaf % 10}`, `b${Math.floor(leaf / 10) % 10}`, `c${Math.floor(leaf / 100)}`, `f${i}.txt`);
    small.push({ rel, data: randomFillSync(Buffer.allocUnsafe(rand(1024, 8192))) });
  }
  await Promise.all([...new Set(small.map((f) => join(root, f.rel, '..')))].map((d) => mkdir(d, { recursive: true })));
  // A small pool of concurrent writers: 20k sequential awaits would dominate generation time.
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < small.length) {
        const f = small[next++]!;
        await writeFile(join(root, f.rel), f.data);
        hashes.set(f.rel, createHash('sha256').update(f.data).digest('hex'));
        bytes += f.data.length;
      }
    }),
  );
  return { root, files: hashes.size, bytes, hashes };
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

interface Tool {
  name: 'restic' | 'restic-ts';
  cmd: string;
  /** Arguments that select the repo, password and (for restic) a cache inside the temp dir. */
  base(repo: string): string[];
}

const OPS = ['init', 'backup (new data)', 'backup (unchanged)', 'restore latest'] as const;
type Op = (typeof OPS)[number];

interface ToolResult {
  ops: Partial<Record<Op, Measurement>>;
  repoBytes: number | null;
  restoreProblems: string[] | null;
}

async function runTool(tool: Tool, work: string, ds: DataSet, s: Settings): Promise<ToolResult> {
  const repo = join(work, `repo-${tool.name}`);
  const target = join(work, `restore-${tool.name}`);
  const result: ToolResult = { ops: {}, repoBytes: null, restoreProblems: null };
  const steps: Array<[Op, string[]]> = [
    ['init', ['init']],
    ['backup (new data)', ['backup', ds.root]],
    ['backup (unchanged)', ['backup', ds.root]],
    ['restore latest', ['restore', 'latest', '--target', target]],
  ];
  for (const [i, [op, args]] of steps.entries()) {
    process.stderr.write(`${tool.name}: ${op} ... `);
    const m = await measure(tool.cmd, [...tool.base(repo), ...args], join(work, `${tool.name}-${i}.log`), s.timeoutSec);
    result.ops[op] = m;
    process.stderr.write(m.ok ? `${m.seconds.toFixed(2)} s, ${((m.rssKiB ?? 0) / 1024).toFixed(0)} MiB RSS\n` : `FAILED (${m.error})\n`);
    if (!m.ok) break;
  }
  if (existsSync(repo)) result.repoBytes = await duBytes(repo);
  if (result.ops['restore latest']?.ok) {
    // Both tools restore an absolute backup path below the target, e.g. TARGET/tmp/x/data.
    const restored = join(target, ds.root);
    process.stderr.write(`${tool.name}: verifying restore ... `);
    result.restoreProblems = existsSync(restored) ? await verifyTree(restored, ds.hashes) : [`not found: ${restored}`];
    process.stderr.write(result.restoreProblems.length ? `${result.restoreProblems.length} problems\n` : 'byte-equal\n');
  }
  await rm(repo, { recursive: true, force: true });
  await rm(target, { recursive: true, force: true });
  return result;
}

function fmt(n: number | null | undefined, digits: number): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

async function main(): Promise<void> {
  const s = readSettings();
  if (!existsSync(TIME_BIN)) throw new Error(`${TIME_BIN} not found (apt-get install -y time)`);
  if (!existsSync(RESTIC_BIN)) throw new Error(`${RESTIC_BIN} not found (set RESTIC_BIN)`);
  if (!existsSync(RESTIC_TS_MAIN)) throw new Error(`${RESTIC_TS_MAIN} not found (npm run build)`);

  const work = mkdtempSync(join(s.tmp, 'restic-ts-bench-'));
  const cleanup = (): void => rmSync(work, { recursive: true, force: true });
  cleanUpOnInterrupt(cleanup);
  try {
    const pw = join(work, 'password');
    await writeFile(pw, 'bench-password\n');
    process.stderr.write(`generating ${(s.sizeBytes / MiB).toFixed(0)} MiB + ${s.smallFiles} small files in ${work} ... `);
    let t = performance.now();
    const ds = await makeDataSet(join(work, 'data'), s);
    process.stderr.write(`${ds.files} files, ${(ds.bytes / MiB).toFixed(1)} MiB in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);

    const tools: Tool[] = [
      { name: 'restic', cmd: RESTIC_BIN, base: (repo) => ['-r', repo, '--password-file', pw, '--cache-dir', join(work, 'restic-cache')] },
      { name: 'restic-ts', cmd: RESTIC_TS_BIN, base: (repo) => ['-r', repo, '--password-file', pw] },
    ];
    const results: Partial<Record<Tool['name'], ToolResult>> = {};
    for (const tool of tools) results[tool.name] = await runTool(tool, work, ds, s);
    const r = results.restic!;
    const ts = results['restic-ts']!;

    const rows = OPS.map((op) => {
      const a = r.ops[op];
      const b = ts.ops[op];
      const mbps = (m: Measurement | undefined): number | null => (m?.ok && op !== 'init' ? ds.bytes / 1e6 / m.seconds : null);
      const side = (m: Measurement | undefined) => ({ ok: m?.ok ?? false, seconds: m?.seconds ?? null, rssKiB: m?.rssKiB ?? null, mbPerSec: mbps(m), error: m?.error });
      return { op, restic: side(a), resticTs: side(b), ratio: a?.ok && b?.ok ? b.seconds / a.seconds : null };
    });

    const header = ['operation', 'restic s', 'restic-ts s', 'ours/restic', 'restic RSS MiB', 'ours RSS MiB', 'restic MB/s', 'ours MB/s'];
    const cells = rows.map((row) => [
      row.op,
      row.restic.ok ? fmt(row.restic.seconds, 2) : 'FAIL',
      row.resticTs.ok ? fmt(row.resticTs.seconds, 2) : 'FAIL',
      fmt(row.ratio, 2),
      fmt(row.restic.rssKiB === null ? null : row.restic.rssKiB / 1024, 0),
      fmt(row.resticTs.rssKiB === null ? null : row.resticTs.rssKiB / 1024, 0),
      fmt(row.restic.mbPerSec, 1),
      fmt(row.resticTs.mbPerSec, 1),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]): string => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
    const out: string[] = [];
    out.push(`data set: ${ds.files} files, ${(ds.bytes / MiB).toFixed(1)} MiB (${(s.sizeBytes / MiB).toFixed(0)} MiB in large/medium files + ${s.smallFiles} small files), seed ${s.seed}`);
    out.push(line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line));
    out.push(`repo size: restic ${fmt(r.repoBytes === null ? null : r.repoBytes / MiB, 1)} MiB, restic-ts ${fmt(ts.repoBytes === null ? null : ts.repoBytes / MiB, 1)} MiB`);
    const verdict = (p: string[] | null): string => (p === null ? 'not checked' : p.length === 0 ? 'byte-equal' : `${p.length} problems, e.g. ${p.slice(0, 3).join('; ')}`);
    out.push(`restore check: restic ${verdict(r.restoreProblems)}; restic-ts ${verdict(ts.restoreProblems)}`);
    for (const row of rows) {
      if (row.restic.error) out.push(`restic ${row.op}: ${row.restic.error}`);
      if (row.resticTs.error) out.push(`restic-ts ${row.op}: ${row.resticTs.error}`);
    }
    const json = {
      dataSet: { files: ds.files, bytes: ds.bytes, smallFiles: s.smallFiles, sizeBytes: s.sizeBytes, seed: s.seed },
      rows,
      repoBytes: { restic: r.repoBytes, resticTs: ts.repoBytes },
      restoreProblems: { restic: r.restoreProblems?.slice(0, 20) ?? null, resticTs: ts.restoreProblems?.slice(0, 20) ?? null },
    };
    process.stdout.write(`${out.join('\n')}\n${JSON.stringify(json)}\n`);
    const allOk = rows.every((row) => row.restic.ok && row.resticTs.ok) && ts.restoreProblems?.length === 0;
    process.exitCode = allOk ? 0 : 1;
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

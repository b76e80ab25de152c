// Restore at restic 0.14's level: the same files as restic for include/exclude patterns, --verify,
// --sparse, --dry-run, each pack read once, and failures that leave the target untouched.
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend, Repository, type Backend } from '../src/index.js';
import { restoreTree } from '../src/restorer/restorer.js';
import { decodeBlobPieces, storedFrame } from '../src/restorer/decode.js';
import { decrypt } from '../src/crypto/index.js';
import { compress, initCompression } from '../src/repo/compression.js';
import { makeTempDir, removeDir, removeResticRepos, resticRepos, type ResticRepos } from './helpers/fixtures.js';
import { compareTrees, scanTree, summarize } from './helpers/fstree.js';
import { expectOk, formatRun, ours, restic, run } from './helpers/run.js';

let fx: ResticRepos;
let work: string;
let n = 0;

beforeAll(async () => {
  await initCompression();
  fx = await resticRepos();
  work = await makeTempDir('restore');
});

afterAll(async () => {
  await removeDir(work);
  await removeResticRepos();
});

const g = (name = 'v2-auto' as const) => ['-r', fx.repo(name), '--password-file', fx.passwordFile];
const fresh = (label: string) => path.join(work, `${label}-${n++}`);

describe('include / exclude: the same files, modes, times and links as restic 0.14', () => {
  const cases: string[][] = [
    ['--include', '*.sh', '--include', '{src}/hard'],
    ['--exclude', 'many', '--exclude', '*.bin'],
    ['--iinclude', '*CAFE*'],
    ['--iexclude', 'NAMES', '--exclude', '{src}/big/**'],
    ['--include', 'nested/a/b'],
    ['--include', '{src}/empty/empty-dir*'],
    ['--include', '{src}/links/to-*', '--include', 'f00?.txt'],
    ['--exclude', '{src}'],
    ['--include', 'no-such-name'],
  ];
  it.each(cases)('%s %s %s %s', async (...flags) => {
    const args = flags.map((f) => f.replace('{src}', fx.src));
    const theirs = fresh('theirs');
    const mine = fresh('mine');
    expectOk('restic restore', await restic([...g(), 'restore', 'latest', '--target', theirs, ...args]));
    const r = expectOk('our restore', await ours([...g(), 'restore', 'latest', '--target', mine, ...args]));
    expect(r.stdout).toContain(`restoring <Snapshot `);
    const exists = await stat(theirs).then(() => true, () => false);
    if (!exists) {
      // restic creates the target only when it restores something.
      expect(await readdir(mine)).toEqual([]);
      return;
    }
    const diffs = compareTrees(await scanTree(theirs), await scanTree(mine), { mtime: 'us', rootMeta: false, hardlinks: true });
    expect(diffs, summarize(diffs)).toEqual([]);
  });
});

it('a full restore equals restic\'s, and --verify checks as many files as restic does', async () => {
  const theirs = fresh('theirs');
  const mine = fresh('mine');
  const t = expectOk('restic restore --verify', await restic([...g('v1'), 'restore', 'latest', '--target', theirs, '--verify']));
  const m = expectOk('our restore --verify', await ours([...g('v1'), 'restore', 'latest', '--target', mine, '--verify']));
  const count = (s: string) => /finished verifying (\d+) files/.exec(s)?.[1];
  expect(count(m.stdout)).toBeDefined();
  expect(count(m.stdout)).toBe(count(t.stdout));
  const diffs = compareTrees(await scanTree(theirs), await scanTree(mine), { mtime: 'us', rootMeta: false, hardlinks: true });
  expect(diffs, summarize(diffs)).toEqual([]);
});

it('--verify notices a file that differs from the snapshot', async () => {
  const repo = await Repository.open(new LocalBackend(fx.repo('v2-auto')), 'correct horse battery staple');
  const snap = await repo.findSnapshot('latest');
  const target = fresh('verify');
  // Restore with a select function that corrupts nothing, then restore again with verify after damage:
  // verification reads what is on disk, so damage it between the two calls via onVerifyStart.
  await expect(
    restoreTree(repo, snap.tree, {
      target,
      subfolder: `${fx.src}/text`,
      verify: true,
      onVerifyStart: () => {
        execFileSync('sh', ['-c', `printf X | dd of='${target}/small.txt' bs=1 seek=3 conv=notrunc 2>/dev/null`]);
      },
    }),
  ).rejects.toThrow(/verify \/small.txt: unexpected content at offset 0/);
});

it('--sparse leaves zero blocks as holes; without it they are written', async () => {
  const file = `${fx.src}/big/zeros-9m.bin`;
  const sparse = fresh('sparse');
  const dense = fresh('dense');
  expectOk('restore --sparse', await ours([...g(), 'restore', 'latest', '--target', sparse, '--sparse', '--include', file, '--include', `${fx.src}/text`]));
  expectOk('restore', await ours([...g(), 'restore', 'latest', '--target', dense, '--include', file]));
  const [s, d] = await Promise.all([stat(path.join(sparse, file)), stat(path.join(dense, file))]);
  expect(s.size).toBe(9 * 1024 * 1024);
  expect(d.size).toBe(9 * 1024 * 1024);
  expect(s.blocks * 512).toBeLessThan(1024 * 1024);
  expect(d.blocks * 512).toBeGreaterThanOrEqual(9 * 1024 * 1024);
  expect((await readFile(path.join(sparse, file))).equals(Buffer.alloc(9 * 1024 * 1024))).toBe(true);
  // Non-zero content is unaffected.
  const diffs = compareTrees(await scanTree(path.join(fx.src, 'text')), await scanTree(path.join(sparse, fx.src, 'text')), { mtime: 'us', rootMeta: true, hardlinks: false });
  expect(diffs, summarize(diffs)).toEqual([]);
});

it('--dry-run writes nothing and lists exactly what a restore creates', async () => {
  const target = fresh('dry');
  const args = ['--include', `${fx.src}/names/dir*`, '--include', `${fx.src}/hard`, '--include', '*.sh', '--include', 'empty'];
  const r = expectOk('restore --dry-run', await ours([...g(), 'restore', 'latest', '--target', target, '--dry-run', ...args]));
  await expect(stat(target)).rejects.toThrow();
  const listed = r.stdoutBytes
    .toString('latin1')
    .split('\n')
    .filter((l) => l.startsWith('would restore '))
    .map((l) => l.slice('would restore '.length))
    .sort();
  const real = fresh('real');
  expectOk('restore', await ours([...g(), 'restore', 'latest', '--target', real, ...args]));
  const restored = [...(await scanTree(real)).keys()].filter((k) => k !== '').map((k) => `/${k}`).sort();
  expect(listed.length).toBeGreaterThan(15);
  expect(listed).toEqual(restored);
});

/** A backend that records the byte ranges loaded from each data/ file. */
function counting(inner: Backend): { backend: Backend; loads: Map<string, [number, number][]> } {
  const loads = new Map<string, [number, number][]>();
  const backend: Backend = {
    location: inner.location,
    create: () => inner.create(),
    save: (t, name, d) => inner.save(t, name, d),
    load: async (t, name, offset, length) => {
      const data = await inner.load(t, name, offset, length);
      if (t === 'data') loads.set(name, [...(loads.get(name) ?? []), [offset ?? 0, data.length]]);
      return data;
    },
    stat: (t, name) => inner.stat(t, name),
    list: (t, signal) => inner.list(t, signal),
    remove: (t, name) => inner.remove(t, name),
    close: () => inner.close(),
  };
  return { backend, loads };
}

it('reads the file content of every pack once per restore, in at most one request per 16 MiB', async () => {
  for (const snapshotIndex of [0, 1]) {
    const { backend, loads } = counting(new LocalBackend(fx.repo('v2-auto')));
    const repo = await Repository.open(backend, 'correct horse battery staple');
    const snap = (await repo.snapshots())[snapshotIndex]!;
    await repo.loadIndex();
    loads.clear();
    const stats = await restoreTree(repo, snap.tree, { target: fresh('count') });
    expect(stats.bytes).toBeGreaterThan(50 * 1024 * 1024);
    const dataPacks = [...loads.keys()].filter((p) => repo.index.packs.get(p)!.some((b) => b.type === 'data'));
    expect(dataPacks.length).toBeGreaterThan(1);
    for (const p of dataPacks) {
      const ranges = loads.get(p)!.sort((a, b) => a[0] - b[0]);
      const size = (await backend.stat('data', p)).size;
      expect(ranges.length, `requests for data pack ${p} (${size} bytes)`).toBeLessThanOrEqual(Math.ceil(size / (16 * 1024 * 1024)));
      for (let i = 1; i < ranges.length; i++) {
        expect(ranges[i]![0], `pack ${p}: ranges do not overlap`).toBeGreaterThanOrEqual(ranges[i - 1]![0] + ranges[i - 1]![1]);
      }
    }
  }
});

it('decodes every blob of restic\'s repos like Repository.loadBlob, and rejects damaged ones', async () => {
  for (const name of ['v2-auto', 'v2-max', 'v1'] as const) {
    const repo = await Repository.open(new LocalBackend(fx.repo(name)), 'correct horse battery staple');
    await repo.loadIndex();
    let stored = 0;
    let checked = 0;
    for (const b of repo.index.allBlobs()) {
      const data = await repo.backend.load('data', b.packId, b.offset, b.length);
      const pieces = decodeBlobPieces(repo.key, b.packId, b, data);
      if (b.uncompressedLength !== undefined && storedFrame(Buffer.from(decrypt(repo.key, data)), b.uncompressedLength)) stored++;
      expect(Buffer.concat(pieces).equals(Buffer.from(await repo.loadBlob(b.type, b.id))), `${name} ${b.type} blob ${b.id}`).toBe(true);
      if (checked++ % 50 === 0) {
        for (const at of [0, 20, Math.floor(data.length / 2), data.length - 1]) {
          const bad = Buffer.from(data);
          bad[at]! ^= 1;
          expect(() => decodeBlobPieces(repo.key, b.packId, b, bad)).toThrow(/ciphertext verification failed/);
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
    // Random data is stored in raw zstd blocks, which are handed on without the zstd decoder.
    if (name !== 'v1') expect(stored).toBeGreaterThan(100);
    // A frame with compressed blocks is left to the decoder.
    expect(storedFrame(compress(Buffer.alloc(100_000, 'abc'), 'auto'), 100_000)).toBeUndefined();
  }
});

it('range bytes that are a view into a larger buffer are copied for the decoding thread, not moved', async () => {
  // The compiled dispatcher: it has its worker file next to it.
  const { RangeDispatcher } = (await import(new URL('../dist/src/restorer/decode.js', import.meta.url).href)) as typeof import('../src/restorer/decode.js');
  const { encrypt, newMasterKey, sha256Hex } = await import('../src/crypto/index.js');
  const key = newMasterKey();
  const plain = Buffer.from('restic-ts '.repeat(1000));
  const stored = encrypt(key, plain);
  const whole = Buffer.alloc(stored.length + 100);
  whole.set(stored, 40);
  const dir = fresh('dispatcher');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'restored');
  const dispatcher = new RangeDispatcher(key, false, 1);
  try {
    // A Buffer view, as backends may return: its slice() would share the memory.
    const data = whole.subarray(40, 40 + stored.length);
    const target = { path: Buffer.from(file).toString('latin1'), size: plain.length, offset: 0 };
    const blob = { type: 'data' as const, id: sha256Hex(plain), offset: 0, length: stored.length, targets: [target] };
    expect(await dispatcher.run({ packId: 'ab'.repeat(32), data, blobs: [blob] })).toBe(plain.length);
  } finally {
    await dispatcher.close();
  }
  expect(whole.buffer.byteLength, 'the larger buffer is not detached').toBe(stored.length + 100);
  expect(whole.subarray(40, 40 + stored.length).equals(stored)).toBe(true);
  expect((await readFile(file)).equals(plain)).toBe(true);
});

it('a damaged pack fails the restore naming the pack, and leaves nothing in the target', async () => {
  const repo = fresh('damaged-repo');
  expectOk('cp -a', await run('cp', ['-a', fx.repo('v2-auto'), repo]));
  const r = await Repository.open(new LocalBackend(repo), 'correct horse battery staple');
  await r.loadIndex();
  // The data pack of the largest size, damaged in the middle of a blob.
  const [packId, blobs] = [...r.index.packs].filter(([, b]) => b[0]!.type === 'data').sort((a, b) => b[1].length - a[1].length)[0]!;
  const blob = blobs[Math.floor(blobs.length / 2)]!;
  const file = path.join(repo, 'data', packId.slice(0, 2), packId);
  await (await import('node:fs/promises')).chmod(file, 0o600);
  const fh = await open(file, 'r+');
  await fh.write(Buffer.from([0xff]), 0, 1, blob.offset + Math.floor(blob.length / 2));
  await fh.close();

  const existing = fresh('existing');
  await mkdir(existing);
  await writeFile(path.join(existing, 'keep.txt'), 'mine\n');
  for (const target of [fresh('new-target'), existing]) {
    const res = await ours(['-r', repo, '--password-file', fx.passwordFile, 'restore', 'latest', '--target', target]);
    const info = formatRun('restore from damaged repo', res);
    expect(res.code, info).toBe(1);
    expect(res.stderr.trim().split('\n'), info).toHaveLength(1);
    expect(res.stderr, info).toContain(packId);
    if (target === existing) expect(await readdir(existing)).toEqual(['keep.txt']);
    else await expect(stat(target)).rejects.toThrow();
  }
});

it('an unwritable target is a one-line error', async () => {
  const target = fresh('immutable');
  await mkdir(target);
  const locked = await run('chattr', ['+i', target]);
  try {
    if (locked.code !== 0) {
      // Without chattr support, a path below a regular file cannot be created either.
      await writeFile(path.join(work, 'a-file'), '');
      const res = await ours([...g(), 'restore', 'latest', '--target', path.join(work, 'a-file', 'sub')]);
      expect(res.code, formatRun('restore', res)).toBe(1);
      expect(res.stderr).toMatch(/^Fatal: cannot create target .*ENOTDIR\n$/);
      return;
    }
    const res = await ours([...g(), 'restore', 'latest', '--target', target]);
    expect(res.code, formatRun('restore', res)).toBe(1);
    expect(res.stderr).toMatch(/^Fatal: cannot write to target .*EPERM\n$/);
  } finally {
    if (locked.code === 0) await run('chattr', ['-i', target]);
  }
  expect(await readdir(target)).toEqual([]);
});

it('restores the subfolder of snapshot:subfolder into the target', async () => {
  const target = fresh('sub');
  expectOk('restore', await ours([...g('v2-max'), 'restore', `latest:${fx.src}/modes`, '--target', target]));
  const diffs = compareTrees(await scanTree(path.join(fx.src, 'modes')), await scanTree(target), { mtime: 'us', rootMeta: false, hardlinks: false });
  expect(diffs, summarize(diffs)).toEqual([]);
  expect((await lstat(path.join(target, 'dir-0555'))).mode & 0o777).toBe(0o555);
});

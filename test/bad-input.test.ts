// Bad input: wrong password, corrupted repository files, missing repository. Our CLI must fail with a
// one-line message naming the culprit, a non-zero exit and no stack trace, and write nothing on restore.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, open, readdir, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { expectOk, formatRun, ours, restic, run, type RunResult } from './helpers/run.js';

let work: string;
let pristine: string;
let passwordFile: string;
let wrongPasswordFile: string;
let ids: { pack: string; packOffset: number; index: string; snapshot: string; key: string };

/** Deterministic incompressible bytes, so the repo has a data pack of real size. */
function bytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function resticList(repo: string, type: string): Promise<string[]> {
  const r = expectOk(`restic list ${type}`, await restic(['-r', repo, '--password-file', passwordFile, 'list', type]));
  return r.stdout.split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l));
}

beforeAll(async () => {
  work = await makeTempDir('bad-input');
  passwordFile = path.join(work, 'password');
  wrongPasswordFile = path.join(work, 'wrong-password');
  await writeFile(passwordFile, 'the right one\n');
  await writeFile(wrongPasswordFile, 'the wrong one\n');
  const src = path.join(work, 'src');
  await mkdir(path.join(src, 'dir'), { recursive: true });
  await writeFile(path.join(src, 'big.bin'), bytes('big', 700 * 1024));
  await writeFile(path.join(src, 'small.txt'), 'small file\n');
  await writeFile(path.join(src, 'dir', 'inner.txt'), 'inner file\n');

  pristine = path.join(work, 'pristine');
  const g = ['-r', pristine, '--password-file', passwordFile];
  expectOk('restic init', await restic([...g, 'init', '--repository-version', '2']));
  expectOk('restic backup', await restic([...g, 'backup', src]));

  const [index] = await resticList(pristine, 'index');
  const [snapshot] = await resticList(pristine, 'snapshots');
  const [key] = await resticList(pristine, 'keys');
  const indexJson = JSON.parse(expectOk('restic cat index', await restic([...g, 'cat', 'index', index!])).stdout) as {
    packs: { id: string; blobs: { type: string; offset: number; length: number }[] }[];
  };
  const dataPack = indexJson.packs.find((p) => p.blobs.some((b) => b.type === 'data'))!;
  const blob = dataPack.blobs.find((b) => b.type === 'data')!;
  ids = { pack: dataPack.id, packOffset: blob.offset + Math.floor(blob.length / 2), index: index!, snapshot: snapshot!, key: key! };
});

afterAll(async () => {
  await removeDir(work);
});

/** A fresh copy of the pristine repo. */
async function copyRepo(label: string): Promise<string> {
  const dest = path.join(work, `repo-${label}`);
  expectOk('cp -a', await run('cp', ['-a', pristine, dest]));
  return dest;
}

async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b.writeUInt8(b.readUInt8(0) ^ 0x01, 0);
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

const STACK_TRACE = /^\s+at .*:\d+:\d+\)?$|node:internal/m;

/** A clean failure: non-zero exit (not a signal), no stack trace, a message (one line unless told). */
function expectCleanFailure(what: string, r: RunResult, oneLine = true): void {
  const info = formatRun(what, r);
  expect(r.signal, info).toBeNull();
  expect(r.code, info).not.toBe(0);
  expect(r.stderr, info).not.toMatch(STACK_TRACE);
  expect(r.stderr.trim(), info).not.toBe('');
  if (oneLine) expect(r.stderr.trim().split('\n'), `${info}\nexpected a one-line error message`).toHaveLength(1);
}

async function expectNothingRestored(target: string): Promise<void> {
  const exists = await stat(target).then(() => true, () => false);
  if (exists) expect(await readdir(target), `restore left files in ${target}`).toEqual([]);
}

it('control: the undamaged repo checks and restores fine', async () => {
  expectOk('our check --read-data', await ours(['-r', pristine, '--password-file', passwordFile, 'check', '--read-data']));
  const target = path.join(work, 'target-pristine');
  expectOk('our restore', await ours(['-r', pristine, '--password-file', passwordFile, 'restore', 'latest', '--target', target]));
  expect((await readdir(target)).length).toBeGreaterThan(0);
  await removeDir(target);
});

it('wrong password: "wrong password or no key found", exit 1', async () => {
  const r = await ours(['-r', pristine, '--password-file', wrongPasswordFile, 'snapshots']);
  expectCleanFailure('our snapshots with a wrong password', r);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('wrong password or no key found');
});

it('repository path that does not exist: clear error naming it, exit 1', async () => {
  const missing = path.join(work, 'no-such-repo');
  const r = await ours(['-r', missing, '--password-file', passwordFile, 'snapshots']);
  expectCleanFailure('our snapshots on a missing repo', r);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(missing);
});

describe.each([
  { kind: 'pack', file: () => path.join('data', ids.pack.slice(0, 2), ids.pack), offset: () => ids.packOffset, id: () => ids.pack },
  { kind: 'index', file: () => path.join('index', ids.index), offset: () => 40, id: () => ids.index },
  { kind: 'snapshot', file: () => path.join('snapshots', ids.snapshot), offset: () => 40, id: () => ids.snapshot },
  // Byte 0 of the (plain JSON) key file: it no longer parses, which must not pass for a wrong password.
  { kind: 'key', file: () => path.join('keys', ids.key), offset: () => 0, id: () => ids.key },
])('a flipped byte in a $kind file', ({ kind, file, offset, id }) => {
  let repo: string;

  beforeAll(async () => {
    repo = await copyRepo(kind);
    await flipByte(path.join(repo, file()), offset());
  });

  it('restore fails naming the file and writes nothing', async () => {
    const target = path.join(work, `target-${kind}`);
    const r = await ours(['-r', repo, '--password-file', passwordFile, 'restore', 'latest', '--target', target]);
    expectCleanFailure(`our restore with a corrupted ${kind} file`, r);
    expect(r.stderr, formatRun('error must name the file', r)).toContain(id().slice(0, 8));
    await expectNothingRestored(target);
  });

  it('check fails naming the file', async () => {
    const r = await ours(['-r', repo, '--password-file', passwordFile, 'check', '--read-data']);
    expectCleanFailure(`our check --read-data with a corrupted ${kind} file`, r, false);
    expect(r.stderr + r.stdout, formatRun('check must name the file', r)).toContain(id().slice(0, 8));
  });
});

#!/usr/bin/env node
// Builds the deterministic fixture tree used by the interop tests.
//
//   node test-fixtures/make-tree.mjs DIR            create the first state in DIR (must not exist or be empty)
//   node test-fixtures/make-tree.mjs --mutate DIR   turn an existing first state into the second state
//
// Everything (content, names, modes, mtimes) depends only on constants here, so two runs give
// byte-identical trees; only inode numbers and ctimes differ. Needs GNU `touch` for nanosecond mtimes.
import { createCipheriv, createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Pseudo-random bytes: AES-128-CTR keystream keyed by the seed string (fast and reproducible). */
function prng(seed, length) {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/** Compressible text, so `--compression auto|max` actually compresses something. */
function lorem(seed, length) {
  const words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do',
    'eiusmod', 'tempor', 'incididunt', 'ut', 'labore', 'et', 'dolore', 'magna', 'aliqua'];
  const noise = prng(seed, Math.ceil(length / 3));
  const parts = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const w = words[noise[i % noise.length] % words.length] + ((i + 1) % 12 === 0 ? '.\n' : ' ');
    parts.push(w);
    size += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

/**
 * Sets atime and mtime of `p` (not following symlinks). Node's utimes keeps only microseconds and
 * turns negative times into "now", so nanosecond digits and pre-1970 times go through GNU `touch`,
 * which needs a UTF-8 string path.
 */
function setTime(p, sec, nsec) {
  if (sec >= 0 && nsec % 1000 === 0) {
    fs.lutimesSync(p, sec + nsec / 1e9, sec + nsec / 1e9);
    return;
  }
  if (Buffer.isBuffer(p)) throw new Error('ns-precise or negative times need a UTF-8 path');
  // `touch -d @S.F` means S + F; for negative times express the instant as (sec + 1) - (1e9 - nsec).
  const stamp = sec >= 0 ? `@${sec}.${String(nsec).padStart(9, '0')}`
    : nsec === 0 ? `@${sec}` : `@-${-(sec + 1)}.${String(1e9 - nsec).padStart(9, '0')}`;
  const r = spawnSync('touch', ['-h', '-d', stamp, p], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`touch ${p}: ${r.stderr || r.error}`);
}

/** Deterministic mtime for the i-th entry, with a microsecond fraction. */
function timeFor(i) {
  return { sec: 1_600_000_000 + i * 3607, nsec: ((i * 7919 + 11) % 1_000_000) * 1000 };
}

// Files with hand-picked times: nanosecond digits, pre-1970, after 2038, and a whole second.
const SPECIAL_TIMES = new Map([
  ['text/lorem.txt', { sec: 1_700_000_000, nsec: 123_456_789 }],
  ['modes/0600.txt', { sec: 1_650_000_000, nsec: 1 }],
  ['modes/0755.sh', { sec: 1_650_000_001, nsec: 999_999_999 }],
  ['modes/0444.txt', { sec: 1_650_000_002, nsec: 500_000_000 }],
  ['times/pre-1970.txt', { sec: -86_401, nsec: 500_000_000 }],
  ['times/after-2038.txt', { sec: 4_102_444_800, nsec: 7_000 }],
  ['times/whole-second.txt', { sec: 1_234_567_890, nsec: 0 }],
]);

/** Builds the first state; returns nothing, throws on any failure. */
function createTree(root) {
  const R = (rel) => (Buffer.isBuffer(rel) ? b(root, '/', rel) : path.join(root, rel));
  const entries = []; // relative paths (string or Buffer), in creation order, for mtimes
  const dir = (rel, mode = 0o755) => {
    fs.mkdirSync(R(rel), { recursive: true });
    fs.chmodSync(R(rel), mode);
    entries.push(rel);
  };
  const file = (rel, data, mode = 0o644) => {
    fs.writeFileSync(R(rel), data);
    fs.chmodSync(R(rel), mode);
    entries.push(rel);
  };
  const link = (rel, target) => {
    fs.symlinkSync(target, R(rel));
    entries.push(rel);
  };

  fs.mkdirSync(root, { recursive: true });
  if (fs.readdirSync(root).length !== 0) throw new Error(`${root} is not empty`);
  fs.chmodSync(root, 0o755);

  // Sizes around the chunker's limits (min 512 KiB, max 8 MiB) and a big random file.
  dir('big');
  const random = prng('random-big', 12 * MiB + 12_345);
  file('big/random-12m.bin', random);
  file('big/exact-512k.bin', prng('exact-512k', 512 * KiB));
  file('big/exact-8m.bin', prng('exact-8m', 8 * MiB));
  file('big/exact-8m-plus-1.bin', prng('exact-8m-plus-1', 8 * MiB + 1));
  file('big/zeros-9m.bin', Buffer.alloc(9 * MiB));
  dir('dup');
  file('dup/copy-of-random-12m.bin', random);

  dir('text');
  file('text/lorem.txt', lorem('lorem', 2 * MiB + 77));
  file('text/small.txt', 'hello restic\n');

  dir('empty');
  file('empty/empty-file', Buffer.alloc(0));
  file('empty/another-empty', Buffer.alloc(0), 0o600);
  dir('empty/empty-dir');
  dir('empty/empty-dir-0700', 0o700);

  // 1,200 small files in one directory, some sharing content, some empty.
  dir('many');
  for (let i = 0; i < 1200; i++) {
    const name = `many/f${String(i).padStart(4, '0')}.txt`;
    const content = i % 100 === 0 ? Buffer.alloc(0)
      : i % 7 === 0 ? Buffer.from('shared content\n')
        : b(`file ${i}\n`, prng(`small-${i}`, (i * 13) % 3000));
    file(name, content);
  }

  let nested = 'nested';
  dir(nested);
  for (const part of 'abcdefgh') dir((nested += `/${part}`));
  file('nested/a/b/c/d/e/f/g/h/deep.txt', 'deep\n');
  file('nested/a/mid.txt', 'middle\n');

  dir('names');
  file('names/with space.txt', 'space\n');
  file('names/ leading and trailing space ', 'spaces\n');
  file('names/quote"double.txt', 'dq\n');
  file("names/quote'single.txt", 'sq\n');
  file('names/back\\slash.txt', 'bs\n');
  file('names/lit-\\xff-name', 'literal backslash-x-f-f\n');
  file('names/x<&>.txt', 'xml chars\n');
  file('names/new\nline.txt', 'newline\n');
  file('names/tab\tname.txt', 'tab\n');
  file('names/ctrl-\x01-\x7f.txt', 'control chars\n');
  file('names/café-é.txt', 'nfc\n');
  file('names/cafe\u0301-nfd.txt', 'nfd\n');
  file('names/日本語.txt', 'japanese\n');
  file('names/emoji-😀-🎉.txt', 'emoji\n');
  file('names/-dash-first', 'dash\n');
  file('names/percent-%41-%zz', 'percent\n');
  file(b('names/bad-utf8-', Buffer.from([0xff, 0xfe]), '.bin'), 'invalid utf-8 name\n');
  file(b('names/lone-', Buffer.from([0xc3]), '-half'), 'truncated sequence\n');
  dir('names/dir with <&> and é');
  file('names/dir with <&> and é/inner.txt', 'inner\n');
  dir(b('names/dir-', Buffer.from([0xfe]), '-bad'));
  file(b('names/dir-', Buffer.from([0xfe]), '-bad/inside.txt'), 'inside bad dir\n');

  dir('links');
  link('links/to-file', '../text/small.txt');
  link('links/to-dir', '../nested');
  link('links/dangling', 'does/not/exist');
  link('links/absolute-dangling', '/nonexistent/restic-ts/target');
  link('links/xml-target', 'x<&>.txt');
  link('links/target with space', '../names/with space.txt');
  link('links/to-日本語', '../names/日本語.txt');

  dir('hard');
  file('hard/original.txt', 'hardlinked content\n');
  fs.linkSync(R('hard/original.txt'), R('hard/second-name.txt'));
  entries.push('hard/second-name.txt');

  dir('modes');
  file('modes/0600.txt', 'private\n', 0o600);
  file('modes/0755.sh', '#!/bin/sh\necho hi\n', 0o755);
  file('modes/0444.txt', 'read only\n', 0o444);
  file('modes/0640.txt', 'group read\n', 0o640);
  dir('modes/dir-0700', 0o700);
  file('modes/dir-0700/secret.txt', 'secret\n', 0o600);
  dir('modes/dir-0555', 0o755); // made read-only after its content has been written, below
  file('modes/dir-0555/inside.txt', 'in a read-only dir\n', 0o644);

  dir('times');
  file('times/pre-1970.txt', 'before the epoch\n');
  file('times/after-2038.txt', 'after 2038\n');
  file('times/whole-second.txt', 'no fraction\n');

  fs.chmodSync(R('modes/dir-0555'), 0o555);
  applyTimes(root, entries);
}

/** Sets every entry's mtime, children before parents, since creating a child bumps its dir's mtime. */
function applyTimes(root, entries) {
  const key = (rel) => (Buffer.isBuffer(rel) ? rel.toString('latin1') : rel);
  const depth = (rel) => key(rel).split('/').length;
  const order = entries.map((rel, i) => ({ rel, i })).sort((x, y) => depth(y.rel) - depth(x.rel) || x.i - y.i);
  for (const { rel, i } of order) {
    const t = SPECIAL_TIMES.get(key(rel)) ?? timeFor(i);
    setTime(Buffer.isBuffer(rel) ? b(root, '/', rel) : path.join(root, rel), t.sec, t.nsec);
  }
  setTime(root, 1_600_000_000 - 1, 250_000_000);
}

/** Second state: a few edits, each with its own deterministic mtime (parents included). */
function mutateTree(root) {
  const R = (rel) => path.join(root, rel);
  fs.appendFileSync(R('text/lorem.txt'), lorem('lorem-appendix', 100 * KiB));
  fs.writeFileSync(R('big/exact-512k.bin'), prng('exact-512k-second-state', 512 * KiB));
  const big = fs.readFileSync(R('big/random-12m.bin'));
  prng('patch', 4096).copy(big, 5 * MiB); // one changed region in the middle of a big file
  fs.writeFileSync(R('big/random-12m.bin'), big);
  fs.rmSync(R('many/f0007.txt'));
  fs.writeFileSync(R('many/new-in-second-state.txt'), 'new\n');
  fs.mkdirSync(R('empty/new-empty-dir'));
  fs.chmodSync(R('modes/0640.txt'), 0o600);
  const changed = ['text/lorem.txt', 'big/exact-512k.bin', 'big/random-12m.bin', 'many/new-in-second-state.txt',
    'empty/new-empty-dir', 'modes/0640.txt', 'text', 'big', 'many', 'empty'];
  changed.forEach((rel, i) => setTime(R(rel), 1_750_000_000 + i * 61, ((i * 4799 + 5) % 1_000_000) * 1000));
  setTime(root, 1_750_000_000 - 1, 750_000_000);
}

const args = process.argv.slice(2);
const mutate = args[0] === '--mutate';
const target = mutate ? args[1] : args[0];
if (!target || args.length !== (mutate ? 2 : 1)) {
  process.stderr.write('usage: make-tree.mjs [--mutate] DIR\n');
  process.exit(2);
}
const root = path.resolve(target);
if (mutate) mutateTree(root);
else createTree(root);

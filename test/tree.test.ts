// Tree blobs byte-identical to restic 0.14's: every tree restic writes for a nasty fixture must
// decode and encode back to the same bytes (same id), names must unquote to the bytes on disk.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile, link } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { IntegrityError, UsageError } from '../src/errors.js';
import { goJsonString, goStringFromBytes, INVALID_BYTE_MARK, isGoPrint, quoteName, unquoteName } from '../src/repo/gostring.js';
import { formatGoTime, parseGoTime } from '../src/repo/gotime.js';
import type { Node } from '../src/repo/node.js';
import { decodeTree, decodeTreeExact, decodeTreeFast, encodeTree, sortNodes } from '../src/repo/tree.js';
import { expectOk, restic } from './helpers/run.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const bpath = (dir: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(dir + '/'), name]);

/** Names restic must quote in every way strconv.Quote can. */
const NAMES: Buffer[] = [
  ...[
    'with space',
    'quote"q',
    'back\\slash',
    '<&>',
    'new\nline',
    'tab\tname',
    'é',
    '日本語',
    'emoji😀',
    'ctl\x01',
    'bell\x07vt\x0b',
    'del\x7f',
    'c1\u0085',
    'nbsp\u00a0shy\u00ad',
    'sep\u2028',
    // Unicode 14: printable for today's JS, not for Go 1.19 (restic 0.14) → \U0001fae0.
    'melting\u{1FAE0}',
    'lit-\\xff-name',
    'real\ufffd',
  ].map((s) => Buffer.from(s)),
  Buffer.from([0x69, 0x6e, 0xff, 0xfe]),
  Buffer.from([0x74, 0xe6, 0x97, 0x78]), // truncated 3-byte sequence
  Buffer.from([0x73, 0xed, 0xa0, 0x80]), // UTF-8 encoded surrogate
  Buffer.from([0x6f, 0xc0, 0xaf]), // overlong "/"
  Buffer.from([0x62, 0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
];

/** Code points on both sides of every boundary of Go's IsPrint table, in names of ≤ 60 runes. */
function boundaryNames(): Buffer[] {
  const cps: number[] = [];
  let prev = isGoPrint(0);
  for (let r = 1; r <= 0x10ffff; r++) {
    const p = isGoPrint(r);
    if (p !== prev) cps.push(r - 1, r);
    prev = p;
  }
  const usable = [...new Set(cps)].filter((r) => r !== 0 && r !== 0x2f && (r < 0xd800 || r > 0xdfff));
  const names: Buffer[] = [];
  for (let i = 0; i < usable.length; i += 60) names.push(Buffer.from(String.fromCodePoint(...usable.slice(i, i + 60))));
  return names;
}

let dir = '';
let repo = '';
let pwFile = '';
let fixture = '';
let server: Server | undefined;
const trees = new Map<string, Buffer>();
let rootTree = '';

const R = (args: string[], cwd?: string) => restic(['-r', repo, '--password-file', pwFile, ...args], { cwd, timeoutMs: 120_000 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'restic-ts-tree-'));
  repo = join(dir, 'repo');
  pwFile = join(dir, 'pw');
  fixture = join(dir, 'fx');
  await writeFile(pwFile, 'secret\n');
  await mkdir(join(fixture, 'sub'), { recursive: true });
  await mkdir(join(fixture, 'emptydir'));
  await mkdir(join(fixture, 'runes'));
  await writeFile(join(fixture, 'empty'), '');
  await writeFile(join(fixture, 'small.txt'), 'hello\n');
  await writeFile(join(fixture, 'sub', 'inner.txt'), 'inner\n');
  for (const [i, name] of NAMES.entries()) await writeFile(bpath(fixture, name), `n${i}\n`);
  for (const name of boundaryNames()) await writeFile(bpath(join(fixture, 'runes'), name), '');
  await symlink('x<&>.txt', join(fixture, 'link'));
  // Invalid byte, Go-1.19-escaped controls, U+2028 and a real U+FFFD in a link target.
  await symlink(Buffer.from([0x74, 0xff, 0x08, 0x0c, 0xe2, 0x80, 0xa8, 0xef, 0xbf, 0xbd]), join(fixture, 'badlink'));
  await writeFile(join(fixture, 'hard1'), 'hard\n');
  await link(join(fixture, 'hard1'), join(fixture, 'hard2'));
  await writeFile(join(fixture, 'setuid'), '#!/bin/sh\n');
  await chmod(join(fixture, 'setuid'), 0o4755);
  await mkdir(join(fixture, 'sticky'));
  await chmod(join(fixture, 'sticky'), 0o1777);
  execFileSync('mkfifo', [join(fixture, 'fifo')]);
  server = createServer();
  await new Promise<void>((resolve) => server!.listen(join(fixture, 'sock'), resolve));
  expectOk('init', await R(['init']));
  expectOk('backup', await R(['backup', '.'], fixture));
  const snaps = JSON.parse(expectOk('snapshots', await R(['snapshots', '--json'])).stdout) as { tree: string }[];
  rootTree = snaps[0]!.tree;
  const list = expectOk('list blobs', await R(['list', 'blobs'])).stdout;
  for (const line of list.split('\n')) {
    const [type, id] = line.split(' ');
    if (type === 'tree' && id !== undefined) trees.set(id, expectOk('cat blob', await R(['cat', 'blob', id])).stdoutBytes);
  }
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('trees written by restic 0.14', () => {
  it('decode and encode back to the identical bytes, whose SHA-256 is the id', () => {
    expect(trees.size).toBe(4); // root, sub, runes, and the empty tree shared by emptydir and sticky
    for (const [id, bytes] of trees) {
      expect(sha256(bytes)).toBe(id);
      const nodes = decodeTree(bytes);
      const again = encodeTree(nodes);
      expect(again.toString('utf8')).toBe(bytes.toString('utf8'));
      expect(again.equals(bytes)).toBe(true);
      expect(sortNodes([...nodes].reverse()).map((n) => n.rawName)).toEqual(nodes.map((n) => n.rawName));
    }
  });

  it('names unquote to the raw bytes on disk, and quote to what restic stored', async () => {
    for (const [sub, treeId] of [
      ['', rootTree],
      ['runes', decodeTree(trees.get(rootTree)!).find((n) => n.name === 'runes')!.subtree!],
    ] as const) {
      const raw = trees.get(treeId)!;
      const stored = (JSON.parse(raw.toString('utf8')) as { nodes: { name: string }[] }).nodes.map((n) => n.name);
      const nodes = decodeTree(raw);
      // restic 0.14's archiver skips sockets.
      const onDisk = (await readdir(join(fixture, sub), { encoding: 'buffer' })).filter((b) => b.toString() !== 'sock').sort(Buffer.compare);
      expect(nodes.map((n) => n.rawName.toString('hex'))).toEqual(onDisk.map((b) => b.toString('hex')));
      expect(onDisk.map((b) => quoteName(b))).toEqual(stored);
    }
  });

  it('keeps the restic forms of names, link targets and modes seen in FORMAT-NOTES', () => {
    const raw = trees.get(rootTree)!.toString('utf8');
    // Go-quoted, then JSON-escaped: a backslash in a name is four in the blob.
    expect(raw).toContain(String.raw`"name":"back\\\\slash"`);
    expect(raw).toContain(String.raw`"name":"quote\\\"q"`);
    expect(raw).toContain(String.raw`"name":"in\\xff\\xfe"`);
    expect(raw).toContain(String.raw`"name":"lit-\\\\xff-name"`);
    expect(raw).toContain(String.raw`"name":"melting\\U0001fae0"`);
    expect(raw).toContain(String.raw`"name":"\u003c\u0026\u003e"`);
    expect(raw).toContain(String.raw`"linktarget":"x\u003c\u0026\u003e.txt","content":null`);
    expect(raw).toContain(String.raw`"linktarget":"t\ufffd\u0008\u000c\u2028` + '\ufffd"');
    const nodes = decodeTree(trees.get(rootTree)!);
    const byName = (n: string): Node => nodes.find((x) => x.name === n)!;
    expect(byName('badlink').linktarget).toBe(`t${INVALID_BYTE_MARK}\b\f\u2028\ufffd`);
    expect(byName('setuid').mode).toBe(0x00800000 | 0o755);
    expect(byName('sticky').mode).toBe((0x80000000 | 0x00100000 | 0o777) >>> 0);
    expect(byName('fifo').type).toBe('fifo');
    expect(nodes.some((n) => n.name === 'sock')).toBe(false);
    expect(byName('hard1').links).toBe(2);
    expect(byName('empty').content).toEqual([]);
    expect(byName('sub').content).toBeNull();
    const empty = trees.get(byName('emptydir').subtree!)!;
    expect(empty.toString()).toBe('{"nodes":[]}\n');
    expect(encodeTree([]).equals(empty)).toBe(true);
  });
});

/** Deterministic PRNG (LCG) so a failing case can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

describe('Go string quoting', () => {
  it('unquoteName(quoteName(x)) == x for random byte strings', () => {
    const next = prng(42);
    const pieces = [[0x5c], [0x22], [0x0a], [0xff], [0xe6, 0x97, 0xa5], [0xf0, 0x9f, 0x98, 0x80], [0xed, 0xa0, 0x80], [0xc2, 0x85], [0xe2, 0x80, 0xa8]];
    for (let i = 0; i < 3000; i++) {
      const bytes: number[] = [];
      const len = next() % 24;
      for (let k = 0; k < len; k++) {
        const r = next();
        if (r % 4 === 0) bytes.push(...pieces[(r >>> 8) % pieces.length]!);
        else bytes.push((r >>> 8) & 0xff);
      }
      const raw = Buffer.from(bytes);
      const q = quoteName(raw);
      expect(unquoteName(q).equals(raw), `${raw.toString('hex')} → ${q}`).toBe(true);
      // Go's quoting yields valid UTF-8 only, so the JSON layer never needs \ufffd for names.
      expect(goJsonString(q)).not.toContain('\\ufffd');
    }
  });

  it('unquotes every escape form Go accepts', () => {
    expect(unquoteName('\\a\\b\\f\\n\\r\\t\\v\\\\\\"').equals(Buffer.from('\x07\b\f\n\r\t\v\\"'))).toBe(true);
    expect(unquoteName('\\x41\\101\\u00e9\\U0001F600').equals(Buffer.from('AAé😀'))).toBe(true);
    expect(unquoteName('\\377').equals(Buffer.from([0xff]))).toBe(true);
    expect(unquoteName('raw\ttab').equals(Buffer.from('raw\ttab'))).toBe(true);
  });

  it('rejects what strconv.Unquote rejects', () => {
    for (const bad of ['"', 'a\\', '\\q', '\\x4', '\\ud800', '\\U00110000', '\\400', "\\'", 'new\nline', '\\0', '\\u12']) {
      expect(() => unquoteName(bad), JSON.stringify(bad)).toThrow(IntegrityError);
    }
  });

  it('escapes JSON strings as Go 1.19 encoding/json does', () => {
    expect(goJsonString('<a&b>')).toBe('"\\u003ca\\u0026b\\u003e"');
    expect(goJsonString('\u2028\u2029')).toBe('"\\u2028\\u2029"');
    expect(goJsonString('\b\f\n\r\t\x01\x7f"\\/')).toBe('"\\u0008\\u000c\\n\\r\\t\\u0001\x7f\\"\\\\/"');
    expect(goJsonString('é😀\ufffd')).toBe('"é😀\ufffd"');
    expect(goJsonString(Buffer.from([0x61, 0xff, 0xe6, 0x97, 0x62]))).toBe('"a\\ufffd\\ufffd\\ufffdb"');
    expect(goJsonString('lone\ud800')).toBe('"lone\\ufffd"');
    expect(goStringFromBytes(Buffer.from([0x61, 0xe6, 0x97]))).toBe(`a${INVALID_BYTE_MARK}${INVALID_BYTE_MARK}`);
  });
});

describe('tree codec', () => {
  const base = { mtime: '2024-01-02T03:04:05.5Z', atime: '2024-01-02T03:04:05.5Z', ctime: '2024-01-02T03:04:05Z', uid: 1, gid: 2 };

  it('keeps 64-bit integers exact', () => {
    const node: Node = { ...base, rawName: Buffer.from('f'), name: 'f', type: 'file', inode: 2n ** 64n - 1n, deviceId: 2n ** 53n + 1n, content: [] };
    const bytes = encodeTree([node]);
    expect(bytes.toString()).toContain('"inode":18446744073709551615,"device_id":9007199254740993,');
    const back = decodeTree(bytes);
    expect(back[0]!.inode).toBe(2n ** 64n - 1n);
    expect(encodeTree(back).equals(bytes)).toBe(true);
  });

  it('ignores unknown fields and tolerates null and missing ones like Go', () => {
    const json =
      '{"nodes":[{"name":"a","type":"dir","future":{"x":[1,2.5e3,true,null,"s"]},"mtime":"2024-01-02T03:04:05Z","uid":null,"content":null}],"extra":1}\n';
    const [n] = decodeTree(Buffer.from(json));
    expect(n!.type).toBe('dir');
    expect(n!.uid).toBe(0);
    expect(n!.atime).toBe('0001-01-01T00:00:00Z');
    expect(decodeTree(Buffer.from('{"nodes":null}'))).toEqual([]);
  });

  it('throws IntegrityError on malformed trees', () => {
    const ok = '{"name":"a","type":"file","mtime":"2024-01-02T03:04:05Z","uid":1,"gid":1,"content":[]}';
    const bad = [
      '{"nodes":[' + ok,
      '{"nodes":[' + ok + ']} x',
      '{"nodes":[' + ok.replace('"file"', '"weird"') + ']}',
      '{"nodes":[' + ok.replace('"uid":1', '"uid":-1') + ']}',
      '{"nodes":[' + ok.replace('"uid":1', '"uid":1.5') + ']}',
      '{"nodes":[' + ok.replace('"uid":1', '"uid":4294967296') + ']}',
      '{"nodes":[' + ok.replace('[]', '["abc"]') + ']}',
      '{"nodes":[' + ok.replace('2024-01-02T03:04:05Z', 'yesterday') + ']}',
      '{"nodes":[' + ok.replace('"a"', '"a\\\\q"') + ']}',
      '{"nodes":[' + ok.replace('"a"', '"a\x01"') + ']}',
      '{"nodes":{}}',
      '[]',
    ];
    for (const json of bad) expect(() => decodeTree(Buffer.from(json)), json).toThrow(IntegrityError);
  });

  it('refuses unsorted or duplicate nodes', () => {
    const mk = (name: string): Node => ({ ...base, rawName: Buffer.from(name), name, type: 'file', content: [] });
    expect(() => encodeTree([mk('b'), mk('a')])).toThrow(UsageError);
    expect(() => encodeTree([mk('a'), mk('a')])).toThrow(UsageError);
    // Byte order of UTF-8, not JS's UTF-16 order (where the emoji's surrogates sort before U+FF5E).
    const sorted = sortNodes([mk('\u{1F600}'), mk('\uff5e'), mk('Z'), mk('a')]);
    expect(sorted.map((n) => n.name)).toEqual(['Z', 'a', '\uff5e', '\u{1F600}']);
  });
});

describe('Go times', () => {
  const cases: [string, bigint, string][] = [
    ['UTC', 0n, '1970-01-01T00:00:00Z'],
    ['UTC', 1700000000123456789n, '2023-11-14T22:13:20.123456789Z'],
    ['UTC', 1700000000100000000n, '2023-11-14T22:13:20.1Z'],
    ['UTC', -1n, '1969-12-31T23:59:59.999999999Z'],
    ['Asia/Kolkata', 1700000000123456789n, '2023-11-15T03:43:20.123456789+05:30'],
    ['Asia/Kolkata', -86400000000001n, '1969-12-31T05:29:59.999999999+05:30'],
    ['Asia/Kolkata', -3786825600000000000n, '1850-01-01T05:53:28+05:53'],
    ['America/New_York', 1719792000000000000n, '2024-06-30T20:00:00-04:00'],
    ['America/New_York', 1700000000100000000n, '2023-11-14T17:13:20.1-05:00'],
    ['America/New_York', -3786825600000000000n, '1849-12-31T19:03:58-04:56'],
    ['Australia/Lord_Howe', 1719792000000000000n, '2024-07-01T10:30:00+10:30'],
    ['Australia/Lord_Howe', 1700000000100000000n, '2023-11-15T09:13:20.1+11:00'],
    ['', 1700000000100000000n, '2023-11-14T22:13:20.1Z'],
    ['No/Such_Zone', 1700000000100000000n, '2023-11-14T22:13:20.1Z'],
  ];
  const saved = process.env.TZ;
  afterAll(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });

  it('formats RFC3339Nano in the local zone as Go does (values from Go 1.19)', () => {
    for (const [tz, ns, want] of cases) {
      process.env.TZ = tz;
      expect(formatGoTime(ns), `${tz} ${ns}`).toBe(want);
      // The printed offset drops seconds (local mean time), so only whole-minute zones round-trip.
      if (!/\+05:53|-04:56/.test(want)) expect(parseGoTime(want)).toBe(ns);
    }
  });

  it('clamps years outside 0–9999 like restic FixTime', () => {
    process.env.TZ = 'UTC';
    expect(formatGoTime(400000000000n * 1000000000n + 5n)).toBe('9999-06-30T15:06:40.000000005Z');
    expect(formatGoTime(-100000000000n * 1000000000n + 5n)).toBe('0000-02-15T14:13:20.000000005Z');
  });

  it('rejects malformed times', () => {
    for (const bad of ['', '2024-01-02', '2024-13-01T00:00:00Z', '2023-02-29T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T00:00:00+0530', '2024-01-01T00:00:00.Z']) {
      expect(() => parseGoTime(bad), bad).toThrow(IntegrityError);
    }
    expect(parseGoTime('2024-02-29T00:00:00.1234567891-01:00')).toBe(BigInt(Date.UTC(2024, 1, 29, 1)) * 1_000_000n + 123456789n);
  });
});

describe('tree decoding fast path', () => {
  /** Bytes that stress the JSON forms: invalid UTF-8, U+FFFD, controls, quotes, multi-byte runes. */
  function randomBytes(rand: () => number, n: number): Buffer {
    const pieces = [[0xff], [0xef, 0xbf, 0xbd], [0x0a], [0x22], [0x5c], [0xe2, 0x80, 0xa8], [0xf0, 0x9f, 0x98, 0x80], [0xed, 0xa0, 0x80], [0x3c]];
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(...(rand() < 0.3 ? pieces[Math.floor(rand() * pieces.length)]! : [0x61 + Math.floor(rand() * 26)]));
    return Buffer.from(out);
  }

  it('gives the exact decoder’s nodes for 300 random trees, and they encode back to the same bytes', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let fast = 0;
    for (let t = 0; t < 300; t++) {
      const nodes: Node[] = [];
      const names = new Set<string>();
      for (let i = 0; i < 1 + Math.floor(rand() * 6); i++) {
        const rawName = randomBytes(rand, 1 + Math.floor(rand() * 8));
        if (names.has(rawName.toString('latin1'))) continue;
        names.add(rawName.toString('latin1'));
        const symlink = rand() < 0.5;
        nodes.push({
          rawName,
          name: rawName.toString('utf8'),
          type: symlink ? 'symlink' : 'file',
          mode: symlink ? 0o777 | 0x08000000 : 0o644,
          mtime: '2026-11-28T01:50:27.176901325Z',
          atime: '2026-11-28T01:50:27.176901325Z',
          ctime: '2026-11-28T01:50:27.176901325+05:30',
          uid: Math.floor(rand() * 70000),
          gid: 0,
          user: goStringFromBytes(randomBytes(rand, 3)),
          links: 1,
          ...(symlink ? { linktarget: goStringFromBytes(randomBytes(rand, 6)), content: null } : { size: 3, content: ['ab'.repeat(32)] }),
        });
      }
      const bytes = encodeTree(sortNodes(nodes));
      if (decodeTreeFast(bytes)) fast++;
      const decoded = decodeTree(bytes);
      expect(decoded).toEqual(decodeTreeExact(bytes));
      expect(encodeTree(decoded).equals(bytes)).toBe(true);
    }
    // Both paths were exercised.
    expect(fast).toBeGreaterThan(20);
    expect(fast).toBeLessThan(300);
  });
});

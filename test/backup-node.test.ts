// The archiver's fast paths must agree with the reference code they shortcut: nodes built from a
// synchronous lstat (archiver/node-stat.ts) versus src/fs/node.ts, and parent trees read with
// JSON.parse (archiver/parent.ts) versus src/repo/tree.ts's exact decoder.
import { lstatSync } from 'node:fs';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeFromLstat, OwnerNames } from '../src/archiver/node-stat.js';
import { IntegrityError } from '../src/errors.js';
import { nodeFromPath } from '../src/fs/node.js';
import type { Node } from '../src/repo/node.js';
import { decodeTree, decodeTreeExact, decodeTreeFast, encodeTree, sortNodes } from '../src/repo/tree.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';

let dir: string;
let server: Server;
const entries: string[] = [];

beforeAll(async () => {
  dir = await makeTempDir('backup-node');
  await mkdir(path.join(dir, 'sub'));
  await writeFile(path.join(dir, 'file'), 'content');
  await writeFile(path.join(dir, 'empty'), '');
  await link(path.join(dir, 'file'), path.join(dir, 'hard'));
  await symlink('file', path.join(dir, 'link'));
  await symlink('dangling/\u00e9<&>', path.join(dir, 'odd-link'));
  spawnSync('mkfifo', [path.join(dir, 'fifo')]);
  server = createServer();
  await new Promise<void>((resolve) => server.listen(path.join(dir, 'sock'), resolve));
  entries.push(...['sub', 'file', 'empty', 'hard', 'link', 'odd-link', 'fifo', 'sock'].map((n) => path.join(dir, n)), '/dev/null');
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await removeDir(dir);
});

describe('nodeFromLstat', () => {
  it.each([false, true])('equals nodeFromPath for every kind of entry (withAtime %s)', async (withAtime) => {
    const owners = new OwnerNames();
    for (const p of entries) {
      const st = lstatSync(p, { bigint: true });
      await owners.load([st]);
      const name = Buffer.from(path.basename(p));
      expect(nodeFromLstat(Buffer.from(p), name, st, owners, withAtime), p).toEqual(await nodeFromPath(p, name, { withAtime }));
    }
  });
});

describe('decodeTree (JSON.parse fast path, then the exact decoder)', () => {
  async function realTree(): Promise<Buffer> {
    const nodes: Node[] = [];
    for (const p of entries) nodes.push(await nodeFromPath(p, Buffer.from(path.basename(p))));
    nodes.push({ ...nodes[1]!, rawName: Buffer.from([0x62, 0xff, 0x09, 0x22]), name: 'b', content: ['a'.repeat(64), 'b'.repeat(64)], size: 12 });
    nodes.push({ ...nodes[0]!, rawName: Buffer.from('dir'), name: 'dir', subtree: 'c'.repeat(64) });
    return encodeTree(sortNodes(nodes));
  }

  it('reads trees as restic writes them on the fast path, exactly like the exact decoder', async () => {
    const tree = await realTree();
    expect(decodeTreeFast(tree)).toBeDefined();
    expect(decodeTree(tree)).toEqual(decodeTreeExact(tree));
  });

  const cases: [string, string][] = [
    ['empty', '{"nodes":[]}\n'],
    ['null nodes', '{"nodes":null}'],
    ['no nodes field', '{}'],
    ['inode above 2^53', '{"nodes":[{"name":"x","type":"file","mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","uid":0,"gid":0,"inode":18446744073709551615,"content":[]}]}'],
    ['upper-case id', `{"nodes":[{"name":"x","type":"file","mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","uid":0,"gid":0,"content":["${'A'.repeat(64)}"]}]}`],
    ['unknown field', '{"nodes":[{"name":"x","type":"dir","mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","uid":0,"gid":0,"generic_attributes":{"a":1},"content":null}]}'],
    ['missing times and ids', '{"nodes":[{"name":"x","type":"symlink","linktarget":"y"}]}'],
    ['extended attributes', '{"nodes":[{"name":"x","type":"file","mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","uid":0,"gid":0,"extended_attributes":[{"name":"user.a","value":"YWI="}],"content":[]}]}'],
  ];
  it.each(cases)('%s: same result as the exact decoder', (_name, json) => {
    const data = Buffer.from(json);
    expect(decodeTree(data)).toEqual(decodeTreeExact(data));
  });

  it.each(['{"nodes":[', '[1]', '{"nodes":[{"name":"x","type":"nope"}]}', '{"nodes":[{"name":"x","type":"file","mtime":"yesterday"}]}'])('malformed %s: IntegrityError', (json) => {
    expect(() => decodeTree(Buffer.from(json))).toThrow(IntegrityError);
  });
});

// Same bytes, same blobs: our backup of a tree restic already backed up adds no data blob and
// produces restic's exact tree (byte-identical tree JSON, hence the same tree ids).
import { lstat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTempDir, makeTree, removeDir, resticBlobs, resticSnapshots, type SnapshotJson } from './helpers/fixtures.js';
import { expectOk, ours, restic } from './helpers/run.js';

let work: string;
let src: string;
let repo: string;
let passwordFile: string;

beforeAll(async () => {
  work = await makeTempDir('dedup');
  src = path.join(work, 'src');
  repo = path.join(work, 'repo');
  passwordFile = path.join(work, 'password');
  await writeFile(passwordFile, 'dedup password\n');
  await makeTree(src);
  expectOk('restic init', await restic(['-r', repo, '--password-file', passwordFile, 'init', '--repository-version', '2']));
});

afterAll(async () => {
  await removeDir(work);
});

const g = () => ['-r', repo, '--password-file', passwordFile];

/** Metadata of src's ancestors that ends up in the snapshot's top trees (restic stores no atime by default). */
async function ancestorStamp(): Promise<string> {
  const parts: string[] = [];
  for (let dir = path.dirname(src); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const st = await lstat(dir, { bigint: true });
    parts.push(`${dir} ${st.mode} ${st.mtimeNs} ${st.ctimeNs} ${st.uid} ${st.gid} ${st.nlink}`);
  }
  return parts.join('\n');
}

/** Follows `names` down from tree `treeId` with `restic cat blob`, returning the subtree id. */
async function subtreeOf(treeId: string, names: string[]): Promise<string> {
  let id = treeId;
  for (const name of names) {
    const tree = JSON.parse(expectOk('restic cat blob', await restic([...g(), 'cat', 'blob', id])).stdout) as {
      nodes: { name: string; subtree?: string }[];
    };
    const node = tree.nodes.find((n) => n.name === name);
    if (!node?.subtree) throw new Error(`no directory ${name} in tree ${id}`);
    id = node.subtree;
  }
  return id;
}

interface Pair { theirs: SnapshotJson; mine: SnapshotJson; newData: string[]; newTrees: string[] }

/**
 * restic backs up `target` (from `cwd`), then we do; returns both snapshots and the blobs ours added.
 * restic gets --force and we a different --host, so neither can take file content from a parent.
 */
async function backupPair(target: string, cwd: string): Promise<Pair> {
  expectOk('restic backup', await restic([...g(), 'backup', '--force', target], { cwd }));
  const dataBefore = await resticBlobs(repo, passwordFile, 'data');
  const treesBefore = await resticBlobs(repo, passwordFile, 'tree');
  const theirs = (await resticSnapshots(repo, passwordFile)).at(-1)!;
  expectOk('our backup', await ours([...g(), 'backup', '--host', 'restic-ts-dedup', target], { cwd }));
  const mine = (await resticSnapshots(repo, passwordFile)).at(-1)!;
  expect(mine.id).not.toBe(theirs.id);
  expect(mine.paths).toEqual(theirs.paths);
  expect(mine.paths).toEqual([src]);
  const newData = [...(await resticBlobs(repo, passwordFile, 'data'))].filter((id) => !dataBefore.has(id));
  const newTrees = [...(await resticBlobs(repo, passwordFile, 'tree'))].filter((id) => !treesBefore.has(id));
  return { theirs, mine, newData, newTrees };
}

it('relative path (same absolute path): no new blob at all, and restic\'s root tree id', async () => {
  // A relative target makes both tools root the snapshot at "src", so no volatile ancestor is stored.
  const { theirs, mine, newData, newTrees } = await backupPair('src', work);
  expect(newData, `our backup added ${newData.length} data blob(s)`).toEqual([]);
  expect(newTrees, `our backup added ${newTrees.length} tree blob(s)`).toEqual([]);
  expect(mine.tree).toBe(theirs.tree);
});

it('absolute path: no new data blob, restic\'s subtree id for the tree, its root tree id when /tmp held still', async () => {
  const before = await ancestorStamp();
  const { theirs, mine, newData } = await backupPair(src, '/');
  const stable = (await ancestorStamp()) === before;
  expect(newData, `our backup added ${newData.length} data blob(s)`).toEqual([]);
  const components = src.split('/').filter(Boolean);
  expect(await subtreeOf(mine.tree, components)).toBe(await subtreeOf(theirs.tree, components));
  // Other processes create entries in os.tmpdir() at any time, which changes the stored ancestors.
  if (stable) expect(mine.tree).toBe(theirs.tree);

  const check = await restic([...g(), 'check']);
  expect(check.code, check.stdout + check.stderr).toBe(0);
});

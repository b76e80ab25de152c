// Generated fixtures: temp dirs, the fixture tree, and restic-made repositories.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectOk, restic, run } from './run.js';

export const FIXTURES = fileURLToPath(new URL('../../test-fixtures/', import.meta.url));

/** A fresh directory under os.tmpdir(); remove it with removeDir. */
export function makeTempDir(label: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `restic-ts-${label}-`));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Writes the deterministic fixture tree (test-fixtures/make-tree.mjs) into `dir`, which must not exist. */
export async function makeTree(dir: string): Promise<void> {
  expectOk('make-tree.mjs', await run(process.execPath, [path.join(FIXTURES, 'make-tree.mjs'), dir], { timeoutMs: 120_000 }));
}

export const RESTIC_REPO_NAMES = ['v2-auto', 'v2-off', 'v2-max', 'v1'] as const;
export type ResticRepoName = (typeof RESTIC_REPO_NAMES)[number];

export interface ResticRepos {
  dir: string;
  passwordFile: string;
  /** The backed-up path; holds the tree of the second (latest) snapshot. */
  src: string;
  /** Copy of `src` as it was for the first snapshot. */
  state1: string;
  repo(name: ResticRepoName): string;
}

let cached: Promise<ResticRepos> | undefined;

/**
 * The repos of test-fixtures/make-restic-repos.sh, built once per test process (they take ~20 s).
 * Call removeResticRepos() in afterAll.
 */
export function resticRepos(): Promise<ResticRepos> {
  cached ??= (async () => {
    const dir = await makeTempDir('restic-repos');
    try {
      expectOk('make-restic-repos.sh', await run('bash', [path.join(FIXTURES, 'make-restic-repos.sh'), dir], { timeoutMs: 240_000 }));
    } catch (e) {
      await removeDir(dir);
      throw e;
    }
    return {
      dir,
      passwordFile: path.join(dir, 'password'),
      src: path.join(dir, 'src'),
      state1: path.join(dir, 'state1'),
      repo: (name: ResticRepoName) => path.join(dir, `repo-${name}`),
    };
  })();
  return cached;
}

export async function removeResticRepos(): Promise<void> {
  const repos = cached;
  cached = undefined;
  if (repos) await removeDir((await repos.catch(() => undefined))?.dir);
}

/** A restic snapshot as `restic snapshots --json` prints it (fields the tests use). */
export interface SnapshotJson {
  id: string;
  short_id: string;
  time: string;
  tree: string;
  paths: string[];
  hostname: string;
  username: string;
  parent?: string;
  tags?: string[];
}

export async function resticSnapshots(repo: string, passwordFile: string): Promise<SnapshotJson[]> {
  const r = expectOk('restic snapshots', await restic(['-r', repo, '--password-file', passwordFile, 'snapshots', '--json']));
  return JSON.parse(r.stdout) as SnapshotJson[];
}

/** Data or tree blob ids of a repo, via `restic list blobs` (lines "data <id>" / "tree <id>"). */
export async function resticBlobs(repo: string, passwordFile: string, type: 'data' | 'tree'): Promise<Set<string>> {
  const r = expectOk('restic list blobs', await restic(['-r', repo, '--password-file', passwordFile, 'list', 'blobs']));
  const ids = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const [t, id] = line.trim().split(/\s+/);
    if (t === type && id) ids.add(id);
  }
  return ids;
}

import { NotFoundError, UsageError } from '../errors.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import type { SnapshotFilter } from '../repo/snapshot-filter.js';
import { loadTree, walkTree, type WalkEntry } from '../walker/walker.js';

export interface LsOptions {
  /** Snapshot id, unique prefix or "latest". */
  snapshot: string;
  /** Narrows which snapshot "latest" means (restic's --host, --tag, --path). */
  filter?: SnapshotFilter;
  /** Absolute paths inside the snapshot to list (each with its direct content); everything when empty. */
  dirs?: readonly string[];
  /** List the content of `dirs` recursively. */
  recursive?: boolean;
}

export interface LsResult {
  snapshot: Snapshot;
  /** The listed nodes in restic's order (tree order, a directory before its content). */
  entries: AsyncGenerator<WalkEntry>;
}

/** restic's HasPathPrefix for clean absolute paths (compared as raw bytes in latin1 form). */
function hasPathPrefix(base: string, p: string): boolean {
  return base === p || base === '/' || p.startsWith(base + '/');
}

/** Go's path.Clean for an absolute path, as a latin1 string of its UTF-8 bytes. */
function cleanAbs(p: string): string {
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return Buffer.from('/' + parts.join('/')).toString('latin1');
}

/**
 * `restic ls`: the snapshot and an async iterator over its nodes. With `dirs`, lists each of them and
 * its direct content (recursively with `recursive`), walking only the trees leading there. A dir that
 * is not in the snapshot is an error (restic prints nothing for it).
 */
export async function ls(repo: Repository, options: LsOptions): Promise<LsResult> {
  const dirs = (options.dirs ?? []).map((d) => {
    if (!d.startsWith('/')) throw new UsageError('All path filters must be absolute, starting with a forward slash \'/\'');
    return cleanAbs(d);
  });
  await repo.loadIndex();
  const snapshot = await repo.findSnapshot(options.snapshot, options.filter);
  for (const d of dirs) await checkPathExists(repo, snapshot, d);
  const within = (p: string) => dirs.length === 0 || dirs.some((d) => hasPathPrefix(d, p));
  const approaching = (p: string) => dirs.length === 0 || dirs.some((d) => hasPathPrefix(p, d));
  async function* entries(): AsyncGenerator<WalkEntry> {
    const descend = (e: WalkEntry) => {
      const p = e.rawPath.toString('latin1');
      return (within(p) && options.recursive === true) || approaching(p);
    };
    for await (const e of walkTree(repo, snapshot.tree, { descend })) {
      if (within(e.rawPath.toString('latin1'))) yield e;
    }
  }
  return { snapshot, entries: entries() };
}

/** Throws NotFoundError unless the clean absolute path `p` (latin1 form of its bytes) names a node. */
async function checkPathExists(repo: Repository, snapshot: Snapshot, p: string): Promise<void> {
  let tree: string | undefined = snapshot.tree;
  let walked = '';
  for (const part of p.split('/').filter((x) => x !== '')) {
    const raw = Buffer.from(part, 'latin1');
    walked += '/' + part;
    const node: Node | undefined = tree === undefined ? undefined : (await loadTree(repo, tree)).find((n) => n.rawName.equals(raw));
    if (!node) throw new NotFoundError(`path ${Buffer.from(walked, 'latin1').toString()} not found in snapshot ${snapshot.id.slice(0, 8)}`);
    tree = node.type === 'dir' ? node.subtree : undefined;
  }
}

import { NotFoundError } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { resolveSubtree } from '../restorer/restorer.js';
import { walkTree, type WalkEntry } from '../walker/walker.js';

export interface LsOptions {
  /** Snapshot id, unique prefix or "latest". */
  snapshot: string;
  /** Directory inside the snapshot to list; the whole snapshot when omitted. */
  dir?: string;
  /** List below `dir` recursively (always recursive without `dir`, as restic). */
  recursive?: boolean;
}

/** `restic ls`: the snapshot, then its entries as an async iterator. */
export async function ls(repo: Repository, options: LsOptions): Promise<{ snapshot: Snapshot; entries: AsyncGenerator<WalkEntry> }> {
  await repo.loadIndex();
  const snapshot = await repo.findSnapshot(options.snapshot);
  if (!options.dir || options.dir === '/') return { snapshot, entries: walkTree(repo, snapshot.tree) };
  const dir = options.dir.replace(/\/+$/, '');
  const tree = await resolveSubtree(repo, snapshot.tree, dir).catch((err: unknown) => {
    if (err instanceof NotFoundError) throw new NotFoundError(`${dir}: no such directory in snapshot ${snapshot.id.slice(0, 8)}`);
    throw err;
  });
  const prefix = dir.startsWith('/') ? dir : `/${dir}`;
  return { snapshot, entries: walkTree(repo, tree, prefix, options.recursive ?? false) };
}

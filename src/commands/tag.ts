import { ResticError, UsageError } from '../errors.js';
import { withLock } from '../repo/locking.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { flattenTags } from '../repo/snapshot-filter.js';
import { selectSnapshots, type SelectOptions } from './snapshots.js';

export interface TagOptions extends SelectOptions {
  /** Replace all tags with these. Empty strings are dropped, so `['']` changes nothing (as restic 0.14). */
  set?: readonly string[];
  /** Tags to add (each once). */
  add?: readonly string[];
  /** Tags to remove. */
  remove?: readonly string[];
}

export interface TagResult {
  /** Each rewritten snapshot: the removed one and its replacement. */
  changed: { from: Snapshot; to: Snapshot }[];
  /** Selection warnings and snapshots that could not be rewritten (those are skipped, as restic does). */
  warnings: string[];
  /** Snapshot ids that matched nothing. */
  unresolved: string[];
}

/**
 * `restic tag`: changes the tags of the selected snapshots under an exclusive lock. A changed snapshot is
 * saved as a new file whose `original` names the first snapshot of the chain, then the old file is removed.
 */
export async function tag(repo: Repository, options: TagOptions): Promise<TagResult> {
  checkTagOptions(options);
  const set = flattenTags(options.set ?? []);
  const add = flattenTags(options.add ?? []);
  const remove = flattenTags(options.remove ?? []);
  return withLock(repo, true, async () => {
    const selection = await selectSnapshots(repo, options);
    const result: TagResult = { changed: [], warnings: selection.warnings, unresolved: selection.unresolved };
    for (const from of selection.snapshots) {
      const tags = set.length ? [...set] : changeTags(from.tags ?? [], add, remove);
      if (!tags) continue;
      const { id, ...rest } = from;
      try {
        const to = await repo.saveSnapshot({ ...rest, tags, original: from.original ?? id });
        await repo.backend.remove('snapshots', id);
        result.changed.push({ from, to });
      } catch (err) {
        if (!(err instanceof ResticError)) throw err;
        result.warnings.push(`unable to modify the tags for snapshot ID "${id}", ignoring: ${err.message}`);
      }
    }
    return result;
  });
}

/** Throws UsageError unless exactly one kind of change (set, or add/remove) is asked for. */
export function checkTagOptions(options: Pick<TagOptions, 'set' | 'add' | 'remove'>): void {
  const given = (x?: readonly string[]) => x !== undefined && x.length > 0;
  if (!given(options.set) && !given(options.add) && !given(options.remove)) throw new UsageError('nothing to do!');
  if (given(options.set) && (given(options.add) || given(options.remove))) {
    throw new UsageError('--set and --add/--remove cannot be given at the same time');
  }
}

/** The tags after adding and removing as restic does (removal swaps in the last tag), or undefined if unchanged. */
function changeTags(current: readonly string[], add: readonly string[], remove: readonly string[]): string[] | undefined {
  const tags = [...current];
  let changed = false;
  for (const t of add) {
    if (!tags.includes(t)) {
      tags.push(t);
      changed = true;
    }
  }
  for (const t of remove) {
    const i = tags.indexOf(t);
    if (i < 0) continue;
    tags[i] = tags[tags.length - 1]!;
    tags.pop();
    changed = true;
  }
  return changed ? tags : undefined;
}

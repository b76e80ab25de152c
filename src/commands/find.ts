import { compilePatterns } from '../filter/index.js';
import type { Repository } from '../repo/repository.js';
import { snapshotsByRefs } from './snapshots.js';
import type { Snapshot } from '../repo/snapshot.js';
import type { SnapshotFilter } from '../repo/snapshot-filter.js';
import { walkTree, type WalkEntry } from '../walker/walker.js';

export interface FindOptions {
  /**
   * restic patterns matched against each node's absolute path inside the snapshot: "*" within a
   * name, "**" across directories; a pattern without "/" at the start matches at any depth, and a
   * matching directory's content matches too. An empty pattern matches everything.
   */
  patterns: readonly string[];
  /** Compare lower-cased patterns with lower-cased paths (restic's --ignore-case). */
  ignoreCase?: boolean;
  /** Snapshot ids, unique prefixes or "latest" to search; all snapshots matching `filter` when empty. */
  snapshots?: readonly string[];
  /** restic's --host, --tag, --path: which snapshots to search (or which one "latest" means). */
  filter?: SnapshotFilter;
}

export interface FindMatch extends WalkEntry {
  snapshot: Snapshot;
}

export interface FindResult {
  /** The searched snapshots, oldest first. */
  snapshots: Snapshot[];
  /** Matches, snapshot by snapshot, each in tree order. */
  matches: AsyncGenerator<FindMatch>;
}

/** `restic find`: nodes whose path matches one of the patterns, in every selected snapshot. */
export async function find(repo: Repository, options: FindOptions): Promise<FindResult> {
  const matchAll = options.patterns.includes('');
  // restic's find runs filter.Match per pattern, which reads a leading "!" as part of the pattern syntax
  // but does not negate: the rest of the pattern is matched.
  const matcher = compilePatterns(
    options.patterns.map((p) => (p.startsWith('!') ? p.slice(1) : p)),
    { caseInsensitive: options.ignoreCase === true },
  );
  await repo.loadIndex();
  const snapshots = await snapshotsByRefs(repo, options.snapshots, options.filter);
  async function* matches(): AsyncGenerator<FindMatch> {
    for (const snapshot of snapshots) {
      const found = new Map<WalkEntry, boolean>();
      const check = (e: WalkEntry) => {
        const r = matchAll ? { matched: true, childMayMatch: true } : matcher.match(e.rawPath);
        found.set(e, r.matched);
        return r;
      };
      // A directory is entered when it matches or something below it may.
      const descend = (e: WalkEntry) => {
        const r = check(e);
        return r.matched || r.childMayMatch;
      };
      for await (const e of walkTree(repo, snapshot.tree, { descend })) {
        const matched = found.get(e) ?? check(e).matched;
        found.delete(e);
        if (matched) yield { ...e, snapshot };
      }
    }
  }
  return { snapshots, matches: matches() };
}

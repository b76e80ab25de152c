import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import type { SnapshotFilter } from '../repo/snapshot-filter.js';
import { withLock } from '../repo/locking.js';
import { restoreTree, type RestoreOptions, type RestoreStats, type SelectFn } from '../restorer/restorer.js';
import { selectByPatterns, type RestorePatterns } from '../restorer/select.js';

export interface RestoreCommandOptions extends RestorePatterns {
  /** Snapshot id, unique prefix or "latest", optionally followed by ":subfolder". */
  snapshot: string;
  /** Narrows which snapshot "latest" means (restic's --host, --tag, --path). */
  filter?: SnapshotFilter;
  target: string;
  /** A custom selection instead of the patterns. */
  select?: SelectFn;
  sparse?: boolean;
  verify?: boolean;
  dryRun?: boolean;
  packConcurrency?: number;
  onItem?: RestoreOptions['onItem'];
  onWarning?: RestoreOptions['onWarning'];
  onVerifyStart?: RestoreOptions['onVerifyStart'];
  /** Called once the snapshot is known, before anything is restored. */
  onStart?: (snapshot: Snapshot) => void;
}

export interface RestoreResult {
  snapshot: Snapshot;
  stats: RestoreStats;
}

/** `restic restore`: a snapshot (or `snapshot:subfolder`) into a target directory. */
export function restore(repo: Repository, options: RestoreCommandOptions): Promise<RestoreResult> {
  // Patterns are checked before the repository is touched.
  const select = options.select ?? selectByPatterns(options);
  return withLock(repo, false, async () => {
    const { ref, subfolder } = splitSnapshotRef(options.snapshot);
    const snapshot = await repo.findSnapshot(ref, options.filter);
    options.onStart?.(snapshot);
    const stats = await restoreTree(repo, snapshot.tree, {
      target: options.target,
      subfolder,
      select,
      sparse: options.sparse,
      verify: options.verify,
      dryRun: options.dryRun,
      packConcurrency: options.packConcurrency,
      onItem: options.onItem,
      onWarning: options.onWarning,
      onVerifyStart: options.onVerifyStart,
    });
    return { snapshot, stats };
  });
}

/** Splits restic's `snapshot:path` syntax. */
export function splitSnapshotRef(arg: string): { ref: string; subfolder?: string } {
  const colon = arg.indexOf(':');
  if (colon < 0) return { ref: arg };
  return { ref: arg.slice(0, colon), subfolder: arg.slice(colon + 1) };
}

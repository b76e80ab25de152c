import type { Repository } from '../repo/repository.js';
import { restoreSnapshot, type RestoreStats } from '../restorer/restorer.js';
import type { Snapshot } from '../repo/snapshot.js';
import { withLock } from '../repo/locking.js';

export interface RestoreCommandOptions {
  /** Snapshot id, unique prefix or "latest", optionally followed by ":subfolder". */
  snapshot: string;
  target: string;
  fileConcurrency?: number;
}

export interface RestoreResult {
  snapshot: Snapshot;
  stats: RestoreStats;
}

/** `restic restore`. */
export function restore(repo: Repository, options: RestoreCommandOptions): Promise<RestoreResult> {
  return withLock(repo, false, async () => {
    const { ref, subfolder } = splitSnapshotRef(options.snapshot);
    const snapshot = await repo.findSnapshot(ref);
    const stats = await restoreSnapshot(repo, snapshot, { target: options.target, subfolder, fileConcurrency: options.fileConcurrency });
    return { snapshot, stats };
  });
}

/** Splits restic's `snapshot:path` syntax. */
export function splitSnapshotRef(arg: string): { ref: string; subfolder?: string } {
  const colon = arg.indexOf(':');
  if (colon < 0) return { ref: arg };
  return { ref: arg.slice(0, colon), subfolder: arg.slice(colon + 1) };
}

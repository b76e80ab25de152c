import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';

export interface SnapshotFilter {
  hosts?: readonly string[];
  tags?: readonly string[];
  paths?: readonly string[];
}

/** `restic snapshots`: all snapshots matching the filter, oldest first. */
export async function listSnapshots(repo: Repository, filter: SnapshotFilter = {}): Promise<Snapshot[]> {
  return (await repo.snapshots()).filter((s) => matchesFilter(s, filter));
}

export function matchesFilter(s: Snapshot, filter: SnapshotFilter): boolean {
  if (filter.hosts?.length && !filter.hosts.includes(s.hostname ?? '')) return false;
  if (filter.tags?.length && !filter.tags.some((t) => s.tags?.includes(t))) return false;
  if (filter.paths?.length && !filter.paths.every((p) => s.paths.includes(p))) return false;
  return true;
}

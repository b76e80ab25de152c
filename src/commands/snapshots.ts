import * as path from 'node:path';
import { ResticError } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import {
  groupSnapshots,
  isGrouped,
  latestSnapshots,
  parseGroupBy,
  sortSnapshots,
  type GroupBy,
  type SnapshotFilter,
  type SnapshotGroup,
} from '../repo/snapshot-filter.js';

export { matchesFilter, type SnapshotFilter } from '../repo/snapshot-filter.js';

/** All snapshots matching the filter, oldest first. */
export async function listSnapshots(repo: Repository, filter: SnapshotFilter = {}): Promise<Snapshot[]> {
  return repo.snapshots(filter).toArray();
}

export interface SelectOptions {
  filter?: SnapshotFilter;
  /** Snapshot ids, unique prefixes or "latest"; when given, the filter only narrows "latest". */
  ids?: readonly string[];
}

export interface Selection {
  /** Oldest first, each snapshot once. */
  snapshots: Snapshot[];
  /** Lines restic prints as warnings (ids it ignores, filters it ignores). */
  warnings: string[];
  /** The ids that matched no snapshot. */
  unresolved: string[];
}

/**
 * The snapshots a multi-snapshot command works on, as restic chooses them: the given ids (unknown ones
 * reported, not fatal), or every snapshot matching the filter.
 */
export async function selectSnapshots(repo: Repository, options: SelectOptions = {}): Promise<Selection> {
  const filter = options.filter ?? {};
  const ids = options.ids ?? [];
  if (ids.length === 0) return { snapshots: await repo.snapshots(filter).toArray(), warnings: [], unresolved: [] };
  const warnings: string[] = [];
  const unresolved: string[] = [];
  const found = new Map<string, Snapshot>();
  const filtered = Boolean(filter.host?.length || filter.tags?.length || filter.paths?.length);
  // restic makes --path absolute for "latest" only.
  const latestFilter = { ...filter, paths: filter.paths?.map((p) => path.resolve(p)) };
  for (const ref of ids) {
    try {
      const s = await repo.findSnapshot(ref, latestFilter);
      found.set(s.id, s);
    } catch (err) {
      if (!(err instanceof ResticError)) throw err;
      unresolved.push(ref);
      warnings.push(ref === 'latest' ? `Ignoring "latest", no snapshot matched given filter ${describeFilter(filter)}` : `Ignoring ${JSON.stringify(ref)}: ${err.message}`);
    }
  }
  if (filtered && !ids.includes('latest')) warnings.push('Ignoring filters as there are explicit snapshot ids given');
  return { snapshots: sortSnapshots(found.values()), warnings, unresolved };
}

/** The filter as restic prints it (Go's %v of its slices). */
function describeFilter(f: SnapshotFilter): string {
  const hosts = typeof f.host === 'string' ? [f.host] : (f.host ?? []);
  const tags = (f.tags ?? []).map((l) => `[${(typeof l === 'string' ? [l] : l).join(', ')}]`);
  return `(Paths:[${(f.paths ?? []).join(' ')}] Tags:[${tags.join(' ')}] Hosts:[${hosts.join(' ')}])`;
}

export interface SnapshotsOptions extends SelectOptions {
  /** Keep only the newest N per host and set of paths, within each group. */
  latest?: number;
  /** Group by host, paths and/or tags: an object or restic's "host,paths,tags" syntax. */
  groupBy?: GroupBy | string;
}

export interface SnapshotsResult extends Selection {
  /** Whether grouping was asked for; when not, `groups` holds at most one group with an empty key. */
  grouped: boolean;
  /** Each group oldest first. */
  groups: SnapshotGroup[];
}

/** `restic snapshots`: the selected snapshots in groups, `latest` applied per group. */
export async function snapshotGroups(repo: Repository, options: SnapshotsOptions = {}): Promise<SnapshotsResult> {
  const by = typeof options.groupBy === 'string' ? parseGroupBy(options.groupBy) : (options.groupBy ?? {});
  const selection = await selectSnapshots(repo, options);
  const groups = groupSnapshots(selection.snapshots, by).map((g) => ({
    key: g.key,
    snapshots: options.latest ? sortSnapshots(latestSnapshots(g.snapshots, options.latest)) : g.snapshots,
  }));
  return { ...selection, grouped: isGrouped(by), groups };
}

/**
 * The snapshots `refs` name (ids, prefixes, "latest" narrowed by `filter`), each once in the order
 * given; every snapshot matching `filter` when no refs are given.
 */
export async function snapshotsByRefs(repo: Repository, refs: readonly string[] | undefined, filter: SnapshotFilter = {}): Promise<Snapshot[]> {
  if (!refs?.length) return repo.snapshots(filter);
  const found = new Map<string, Snapshot>();
  for (const ref of refs) {
    const s = await repo.findSnapshot(ref, filter);
    if (!found.has(s.id)) found.set(s.id, s);
  }
  return [...found.values()];
}

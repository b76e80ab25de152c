// Selecting and grouping snapshots the way restic 0.14 does (internal/restic/snapshot*.go semantics).
import { UsageError } from '../errors.js';
import { parseGoTime } from './gotime.js';
import type { Snapshot } from './snapshot.js';

/** Tags a snapshot must all carry; `""` alone matches a snapshot without tags (restic's TagList). */
export type TagList = readonly string[];

export interface SnapshotFilter {
  /** Keep snapshots from any of these hosts. */
  host?: string | readonly string[];
  /**
   * Keep snapshots that satisfy at least one entry: a single tag, or a list of tags that must all be present
   * (`--tag a,b --tag c` is `[['a', 'b'], 'c']`).
   */
  tags?: readonly (string | TagList)[];
  /** Keep snapshots that contain every one of these paths (compared verbatim). */
  paths?: readonly string[];
}

/** True when the snapshot has every tag of `list`. */
export function hasTags(s: Snapshot, list: TagList): boolean {
  const tags = s.tags ?? [];
  for (const t of list) {
    if (t === '' && tags.length === 0) return true;
    if (!tags.includes(t)) return false;
  }
  return true;
}

export function matchesFilter(s: Snapshot, filter: SnapshotFilter): boolean {
  const hosts = typeof filter.host === 'string' ? [filter.host] : (filter.host ?? []);
  if (hosts.length && !hosts.includes(s.hostname ?? '')) return false;
  const tagLists = filter.tags ?? [];
  if (tagLists.length && !tagLists.some((l) => hasTags(s, typeof l === 'string' ? [l] : l))) return false;
  return (filter.paths ?? []).every((p) => s.paths.includes(p));
}

/** restic's `--tag a,b` syntax: comma-separated, whitespace around each tag dropped. */
export function parseTagList(s: string): string[] {
  return s.split(',').map((t) => t.trim());
}

/** Every non-empty tag of several lists, in order (restic's TagLists.Flatten). */
export function flattenTags(lists: readonly (string | TagList)[]): string[] {
  return lists.flatMap((l) => (typeof l === 'string' ? [l] : l)).filter((t) => t !== '');
}

/**
 * Snapshots in chronological order (time zones may differ), ties broken by id so the order is stable.
 * Each time is parsed once, not once per comparison.
 */
export function sortSnapshots<T extends Snapshot>(snapshots: Iterable<T>): T[] {
  const keyed = Array.from(snapshots, (s) => ({ s, time: parseGoTime(s.time) }));
  keyed.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.s.id < b.s.id ? -1 : a.s.id > b.s.id ? 1 : 0));
  return keyed.map((k) => k.s);
}

/** Go's sort.Strings order: byte-wise on UTF-8. */
export function compareGoStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * The `limit` newest snapshots per host and set of paths, newest first (restic's `--latest N`).
 */
export function latestSnapshots(snapshots: readonly Snapshot[], limit: number): Snapshot[] {
  const seen = new Map<string, number>();
  const out: Snapshot[] = [];
  for (const s of sortSnapshots(snapshots).reverse()) {
    const key = JSON.stringify([s.hostname ?? '', [...s.paths].sort(compareGoStrings)]);
    const n = seen.get(key) ?? 0;
    if (n < limit) {
      seen.set(key, n + 1);
      out.push(s);
    }
  }
  return out;
}

export interface GroupBy {
  host?: boolean;
  paths?: boolean;
  tags?: boolean;
}

/** Parses restic's `--group-by` value: a comma-separated subset of host, paths, tags (singular accepted). */
export function parseGroupBy(spec: string): GroupBy {
  const by: GroupBy = {};
  for (const option of spec.split(',')) {
    if (option === 'host' || option === 'hosts') by.host = true;
    else if (option === 'path' || option === 'paths') by.paths = true;
    else if (option === 'tag' || option === 'tags') by.tags = true;
    else if (option !== '') throw new UsageError(`unknown grouping option: '${option}'`);
  }
  return by;
}

export function isGrouped(by: GroupBy): boolean {
  return by.host === true || by.paths === true || by.tags === true;
}

/** What a group's snapshots share; fields not grouped by are "" / null, as in restic's JSON. */
export interface SnapshotGroupKey {
  hostname: string;
  /** Sorted. */
  paths: string[] | null;
  /** Sorted. */
  tags: string[] | null;
}

export interface SnapshotGroup {
  key: SnapshotGroupKey;
  snapshots: Snapshot[];
}

/**
 * Splits snapshots into groups sharing host / paths / tags. Without any grouping field the result is a
 * single group holding everything (none when `snapshots` is empty). Groups are ordered by key; each group
 * keeps the input order.
 */
export function groupSnapshots(snapshots: readonly Snapshot[], by: GroupBy): SnapshotGroup[] {
  const groups = new Map<string, SnapshotGroup>();
  for (const s of snapshots) {
    const key: SnapshotGroupKey = {
      hostname: by.host ? (s.hostname ?? '') : '',
      paths: by.paths && s.paths.length ? [...s.paths].sort(compareGoStrings) : null,
      tags: by.tags && s.tags?.length ? [...s.tags].sort(compareGoStrings) : null,
    };
    const k = JSON.stringify(key);
    const group = groups.get(k);
    if (group) group.snapshots.push(s);
    else groups.set(k, { key, snapshots: [s] });
  }
  return [...groups.values()].sort((a, b) => compareGroupKeys(a.key, b.key));
}

function compareGoStringLists(a: readonly string[] | null, b: readonly string[] | null): number {
  const x = a ?? [];
  const y = b ?? [];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = compareGoStrings(x[i]!, y[i]!);
    if (c) return c;
  }
  return x.length - y.length;
}

/** Host, then paths, then tags (restic prints groups in random order; we keep them predictable). */
function compareGroupKeys(a: SnapshotGroupKey, b: SnapshotGroupKey): number {
  return compareGoStrings(a.hostname, b.hostname) || compareGoStringLists(a.paths, b.paths) || compareGoStringLists(a.tags, b.tags);
}

/**
 * The result of `repo.snapshots(filter)`. Iterate it to stream matching snapshots as they load (in the
 * backend's listing order), or await it for all of them, oldest first.
 */
export class SnapshotQuery implements AsyncIterable<Snapshot>, PromiseLike<Snapshot[]> {
  constructor(
    private readonly load: () => AsyncIterable<Snapshot>,
    private readonly filter: SnapshotFilter,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Snapshot> {
    for await (const s of this.load()) if (matchesFilter(s, this.filter)) yield s;
  }

  /** All matching snapshots, oldest first. */
  async toArray(): Promise<Snapshot[]> {
    const all: Snapshot[] = [];
    for await (const s of this) all.push(s);
    return sortSnapshots(all);
  }

  then<R1 = Snapshot[], R2 = never>(
    onfulfilled?: ((value: Snapshot[]) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.toArray().then(onfulfilled, onrejected);
  }
}

import { UsageError } from '../../errors.js';
import { list, openRepo, out, type Command, type Values } from '../command.js';
import { snapshotGroups } from '../../commands/snapshots.js';
import { goJsonString } from '../../repo/gostring.js';
import { compareGoStrings, parseTagList, type SnapshotFilter, type SnapshotGroup, type SnapshotGroupKey } from '../../repo/snapshot-filter.js';
import type { Snapshot } from '../../repo/snapshot.js';
import { formatLocalTime } from '../format.js';

/** Flags of restic's snapshot filter (snapshots, tag, copy). */
export const FILTER_OPTIONS = {
  host: { type: 'string', short: 'H', multiple: true },
  tag: { type: 'string', multiple: true },
  path: { type: 'string', multiple: true },
} as const;

export function filterFromFlags(v: Values): SnapshotFilter {
  return { host: list(v, 'host'), tags: list(v, 'tag').map(parseTagList), paths: list(v, 'path') };
}

/** Prints restic's warnings; returns the exit code: 1 when an id matched nothing. */
export function reportSelection(sel: { warnings: string[]; unresolved: string[] }): number {
  for (const w of sel.warnings) process.stderr.write(`${w}\n`);
  return sel.unresolved.length ? 1 : 0;
}

export const snapshotsCommand: Command = {
  usage: '[--host H] [--tag T[,T...]] [--path P] [--latest N] [--group-by host,paths,tags] [--compact] [--json] [ID...]',
  options: {
    ...FILTER_OPTIONS,
    compact: { type: 'boolean', short: 'c' },
    latest: { type: 'string' },
    'group-by': { type: 'string', short: 'g' },
  },
  async run(g, v, args) {
    let latest: number | undefined;
    if (v.latest !== undefined) {
      latest = Number(v.latest);
      if (!/^\d+$/.test(String(v.latest))) throw new UsageError(`invalid --latest "${String(v.latest)}": use a number`);
    }
    const repo = await openRepo(g);
    const result = await snapshotGroups(repo, { filter: filterFromFlags(v), ids: args, latest, groupBy: (v['group-by'] as string | undefined) ?? '' });
    // restic sorts every snapshot's paths in place while grouping, and its tags when grouping by tags.
    const groups = result.groups.map((grp) => ({
      key: grp.key,
      snapshots: grp.snapshots.map((s) => ({ ...s, paths: [...s.paths].sort(compareGoStrings), tags: grp.key.tags ?? s.tags })),
    }));
    if (g.json) await out(result.grouped ? groupsJSON(groups) : `[${groups.flatMap((x) => x.snapshots).map(snapshotJSON).join(',')}]\n`);
    else {
      for (const grp of groups) {
        if (result.grouped) await out(groupHeader(grp.key));
        await out(snapshotTable(grp.snapshots, v.compact === true));
      }
    }
    return reportSelection(result);
  },
};

/** A snapshot as restic's `snapshots --json` prints it: Go's encoding, struct field order, id and short_id last. */
export function snapshotJSON(s: Snapshot): string {
  const str = (x: string) => goJsonString(x);
  const strs = (xs: readonly string[]) => `[${xs.map(str).join(',')}]`;
  const fields = [`"time":${str(goTimeJSON(s.time))}`];
  if (s.parent) fields.push(`"parent":${str(s.parent)}`);
  fields.push(`"tree":${str(s.tree)}`, `"paths":${strs(s.paths)}`);
  if (s.hostname) fields.push(`"hostname":${str(s.hostname)}`);
  if (s.username) fields.push(`"username":${str(s.username)}`);
  if (s.uid) fields.push(`"uid":${s.uid}`);
  if (s.gid) fields.push(`"gid":${s.gid}`);
  if (s.excludes?.length) fields.push(`"excludes":${strs(s.excludes)}`);
  if (s.tags?.length) fields.push(`"tags":${strs(s.tags)}`);
  if (s.original) fields.push(`"original":${str(s.original)}`);
  if (s.programVersion) fields.push(`"program_version":${str(s.programVersion)}`);
  if (s.summary) fields.push(`"summary":${JSON.stringify(s.summary)}`);
  fields.push(`"id":${str(s.id)}`, `"short_id":${str(s.id.slice(0, 8))}`);
  return `{${fields.join(',')}}`;
}

/** Go re-encodes a parsed time: fraction without trailing zeros, a zero offset as "Z". */
function goTimeJSON(t: string): string {
  return t.replace(/\.(\d*?)0+(?=[Z+-])/, (_m, digits: string) => (digits ? `.${digits}` : '')).replace(/[+-]00:00$/, 'Z');
}

function groupKeyJSON(k: SnapshotGroupKey): string {
  const strs = (xs: string[] | null) => (xs ? `[${xs.map((x) => goJsonString(x)).join(',')}]` : 'null');
  return `{"hostname":${goJsonString(k.hostname)},"paths":${strs(k.paths)},"tags":${strs(k.tags)}}`;
}

function groupsJSON(groups: readonly SnapshotGroup[]): string {
  return `[${groups.map((g) => `{"group_key":${groupKeyJSON(g.key)},"snapshots":[${g.snapshots.map(snapshotJSON).join(',')}]}`).join(',')}]\n`;
}

/** restic's line above each group; nothing for a group whose key is empty. */
export function groupHeader(k: SnapshotGroupKey): string {
  const parts: string[] = [];
  if (k.hostname) parts.push(`host [${k.hostname}]`);
  if (k.tags) parts.push(`tags [${k.tags.join(', ')}]`);
  if (k.paths) parts.push(`paths [${k.paths.join(', ')}]`);
  return parts.length ? `snapshots for (${parts.join(', ')}):\n` : '';
}

/**
 * restic 0.14's snapshot table: columns padded to the widest cell in bytes (Go's len), cells of several
 * lines, a blank line between snapshots when one of them has several paths, oldest first.
 */
export function snapshotTable(snapshots: readonly Snapshot[], compact: boolean): string {
  const headers = compact ? ['ID', 'Time', 'Host', 'Tags  '] : ['ID', 'Time', 'Host      ', 'Tags      ', 'Paths'];
  const rows = snapshots.map((s) => {
    const cells = [s.id.slice(0, 8), formatLocalTime(s.time), s.hostname ?? '', (s.tags ?? []).join(compact ? '\n' : ',')];
    if (!compact) cells.push(s.paths.join('\n'));
    return cells;
  });
  const width = (s: string) => Buffer.byteLength(s);
  const widths = headers.map((h, i) => Math.max(width(h), ...rows.flatMap((r) => r[i]!.split('\n').map(width))));
  const printRow = (cells: string[]): string[] => {
    const split = cells.map((c) => c.split('\n'));
    const height = Math.max(...split.map((l) => l.length));
    const lines: string[] = [];
    for (let i = 0; i < height; i++) {
      const line = split.map((l, col) => {
        const v = l[i] ?? '';
        return v + ' '.repeat(Math.max(0, widths[col]! - width(v)));
      });
      lines.push(line.join('  ').replace(/ +$/, ''));
    }
    return lines;
  };
  const rule = '-'.repeat(widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1));
  const blankBetween = !compact && snapshots.some((s) => s.paths.length > 1);
  const out = [...printRow(headers), rule];
  rows.forEach((r, i) => {
    const lines = printRow(r);
    if (blankBetween && i > 0) lines[0] = `\n${lines[0]}`;
    out.push(...lines);
  });
  out.push(rule, `${snapshots.length} snapshots`);
  return out.join('\n') + '\n';
}

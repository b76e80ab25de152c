// How restic 0.14 lays out backup targets in a snapshot (internal/archiver/tree.go semantics): each
// target sits at its cleaned absolute path, relative ones at their relative path without leading
// "..", "." and the like are replaced by their entries, top-level names of targets from different
// roots get "-1", "-2" suffixes, and a target inside another target merges into it.
import { readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ResticError } from '../errors.js';
import { goClean } from '../filter/gomatch.js';
import { pathError } from './item-error.js';

export interface TargetTree {
  /** Children by name in the snapshot. */
  nodes: Map<string, TargetTree>;
  /** Leaf: this path (as given, cleaned) is backed up here with everything below it. */
  path?: string;
  /** Intermediate directory: its metadata is read from this path. */
  fileInfoPath?: string;
  /** Directory the first path component lives in ("/", ".", "..", "../.."). */
  root?: string;
}

/** Go's filepath.Join: the non-empty elements joined with "/" and cleaned. */
export function goJoin(...elems: string[]): string {
  const parts = elems.filter((e) => e !== '');
  return parts.length ? goClean(parts.join('/')) : '';
}

/** Components of a cleaned path; relative paths are first placed under "/" (so ".." drops out). */
function pathComponents(p: string, includeRelative: boolean): string[] {
  const clean = goClean(!p.startsWith('/') && !includeRelative ? '/' + p : p);
  return clean.split('/').filter((c) => c !== '' && c !== '.');
}

function rootDirectory(target: string): string {
  if (target.startsWith('/')) return '/';
  let rel = '.';
  for (const c of pathComponents(goClean(target), true)) if (c === '..') rel = goJoin(rel, c);
  return rel;
}

/** Go's sort.Strings order (bytes of the UTF-8 encoding). */
export function compareNames(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function sortedNames(tree: TargetTree): string[] {
  return [...tree.nodes.keys()].sort(compareNames);
}

async function readNames(dir: string, cwd: string): Promise<string[]> {
  try {
    return await readdir(resolve(cwd, dir));
  } catch (err) {
    throw new ResticError(pathError('open', dir, err, 'Open').message);
  }
}

/** Cleans targets and replaces those without a name of their own (".", "..", "/") by their entries. */
export async function resolveRelativeTargets(targets: readonly string[], cwd: string): Promise<string[]> {
  const result: string[] = [];
  for (const given of targets) {
    const target = goClean(given);
    if (pathComponents(target, false).length > 0) {
      result.push(target);
      continue;
    }
    for (const name of (await readNames(target, cwd)).sort(compareNames)) result.push(goJoin(target, name));
  }
  return result;
}

function addBelow(tree: TargetTree, target: string, root: string, pc: string[]): void {
  const name = pc[0]!;
  const existing = tree.nodes.get(name);
  if (pc.length === 1) {
    if (!existing) tree.nodes.set(name, { nodes: new Map(), path: target });
    else if (existing.path !== undefined) throw new ResticError(`path is already set for target ${target}`);
    else existing.path = target;
    return;
  }
  const sub = existing ?? { nodes: new Map<string, TargetTree>() };
  const subroot = goJoin(root, name);
  sub.fileInfoPath = subroot;
  addBelow(sub, target, subroot, pc.slice(1));
  tree.nodes.set(name, sub);
}

function addTarget(top: TargetTree, path: string): void {
  const pc = pathComponents(path, false);
  if (pc.length === 0) throw new ResticError(`invalid path ${path} (no path components)`);
  const origName = pc[0]!;
  const root = rootDirectory(path);
  let name = origName;
  let tree: TargetTree = { nodes: new Map(), root };
  for (let i = 1; ; i++) {
    const other = top.nodes.get(name);
    if (!other) break;
    if (other.root === root) {
      tree = other;
      break;
    }
    name = `${origName}-${i}`;
  }
  if (pc.length > 1) {
    const subroot = goJoin(root, origName);
    addBelow(tree, path, subroot, pc.slice(1));
    tree.fileInfoPath = subroot;
  } else tree.path = path;
  top.nodes.set(name, tree);
}

/** A target that contains other targets becomes an intermediate directory listing all its entries. */
async function unroll(tree: TargetTree, cwd: string): Promise<void> {
  if (tree.path !== undefined && tree.nodes.size > 0) {
    for (const entry of await readNames(tree.path, cwd)) {
      const full = goJoin(tree.path, entry);
      const node = tree.nodes.get(entry);
      if (!node) tree.nodes.set(entry, { nodes: new Map(), path: full });
      else if (node.path === undefined) node.path = full;
      else if (node.path !== full) throw new ResticError(`tree unrollTree: collision on path ${full}`);
    }
    delete tree.path;
  }
  for (const sub of tree.nodes.values()) await unroll(sub, cwd);
}

/** The snapshot's top directory for `targets` (already passed through resolveRelativeTargets). */
export async function buildTargetTree(targets: readonly string[], cwd: string): Promise<TargetTree> {
  const top: TargetTree = { nodes: new Map() };
  const seen = new Set<string>();
  for (const t of targets) {
    const target = goClean(t);
    if (seen.has(target)) continue;
    seen.add(target);
    addTarget(top, target);
  }
  await unroll(top, cwd);
  return top;
}

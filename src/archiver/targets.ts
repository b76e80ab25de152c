import { isAbsolute, normalize, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';

/**
 * The virtual top of a snapshot: backup targets placed at their path, with the directories that lead
 * to them. restic keeps absolute targets at their absolute path and relative ones at their cleaned
 * relative path (leading `..` dropped); `.` puts the directory's own entries at the top.
 */
export interface TargetDir {
  /** Real directory whose metadata the intermediate node carries (undefined for the top). */
  fsPath?: string;
  children: Map<string, TargetDir | TargetLeaf>;
  /** A directory (target ".") whose entries are backed up directly inside this one. */
  contentsOf?: string;
}

export interface TargetLeaf {
  /** A path given by the user, backed up with everything below it. */
  target: string;
}

export function isLeaf(entry: TargetDir | TargetLeaf): entry is TargetLeaf {
  return 'target' in entry;
}

export function buildTargetTree(paths: readonly string[], cwd = process.cwd()): { top: TargetDir; absolutePaths: string[] } {
  if (paths.length === 0) throw new UsageError('nothing to back up: no paths given');
  const top: TargetDir = { children: new Map() };
  const absolutePaths: string[] = [];
  for (const given of paths) {
    const absolute = resolve(cwd, given);
    absolutePaths.push(absolute);
    const clean = normalize(given);
    const parts = clean.split(sep).filter((p) => p !== '' && p !== '.');
    while (parts[0] === '..') parts.shift();
    if (parts.length === 0) {
      if (isAbsolute(clean)) throw new UsageError('backing up "/" as a whole is not supported; name its entries');
      // "." or "..": the directory's entries become the top of the snapshot.
      top.contentsOf = absolute;
      continue;
    }
    // Real directories that lead to the target, from the outermost one.
    let dir = top;
    let covered = false;
    const prefix = isAbsolute(clean) ? '/' : resolve(absolute, ...parts.map(() => '..'));
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i]!;
      let next = dir.children.get(name);
      if (next && isLeaf(next)) {
        covered = true; // an enclosing target already includes this path
        break;
      }
      if (!next) {
        next = { fsPath: resolve(prefix, ...parts.slice(0, i + 1)), children: new Map() };
        dir.children.set(name, next);
      }
      dir = next;
    }
    if (covered) continue;
    const leafName = parts[parts.length - 1]!;
    if (dir.children.has(leafName) && isLeaf(dir.children.get(leafName)!)) {
      throw new UsageError(`path ${given} is given twice`);
    }
    dir.children.set(leafName, { target: absolute });
  }
  return { top, absolutePaths };
}

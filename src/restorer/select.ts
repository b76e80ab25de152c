import { UsageError } from '../errors.js';
import { compilePatterns } from '../filter/index.js';
import type { SelectFn } from './restorer.js';

/** restic restore's pattern options. Includes and excludes cannot be combined. */
export interface RestorePatterns {
  include?: readonly string[];
  exclude?: readonly string[];
  /** Like include/exclude, ignoring the case of names. */
  iinclude?: readonly string[];
  iexclude?: readonly string[];
}

/**
 * restic 0.14's restore filters. Paths are matched as "/dir/file" relative to the restored tree.
 * Excludes: a matching node and everything below it are skipped. Includes: matching nodes are
 * restored (a matching directory with all its content) and directories are entered while a pattern
 * could match below them; directories on the way to a restored node are created too.
 * Returns undefined when there are no patterns (restore everything).
 */
export function selectByPatterns(p: RestorePatterns): SelectFn | undefined {
  const has = (l?: readonly string[]) => (l ?? []).some((s) => s !== '');
  const hasExcludes = has(p.exclude) || has(p.iexclude);
  const hasIncludes = has(p.include) || has(p.iinclude);
  if (hasExcludes && hasIncludes) throw new UsageError('exclude and include patterns are mutually exclusive');
  if (hasExcludes) {
    const ex = compilePatterns(p.exclude ?? []);
    const iex = compilePatterns(p.iexclude ?? [], { caseInsensitive: true });
    return (_location, node, raw) => {
      const selected = !ex.matches(raw) && !iex.matches(raw);
      return { selected, childMayBeSelected: selected && node.type === 'dir' };
    };
  }
  if (hasIncludes) {
    const inc = compilePatterns(p.include ?? []);
    const iinc = compilePatterns(p.iinclude ?? [], { caseInsensitive: true });
    return (_location, node, raw) => {
      const a = inc.match(raw);
      const b = iinc.match(raw);
      return { selected: a.matched || b.matched, childMayBeSelected: (a.childMayMatch || b.childMayMatch) && node.type === 'dir' };
    };
  }
  return undefined;
}

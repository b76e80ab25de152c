// restic 0.14's include/exclude patterns (internal/filter): a pattern is split at "/" into parts
// matched against path components with Go's filepath.Match; "**" spans any number of components; a
// leading "/" anchors at the root; otherwise the parts may match at any depth; "!" negates.
import { UsageError } from '../errors.js';
import { BadPatternError, bytesToMatchString, goClean, goMatch } from './gomatch.js';

interface Part {
  /** "/" for the root of an absolute pattern, "" for "**". */
  pattern: string;
  /** No wildcard or escape: compared as a plain string. */
  simple: boolean;
}

interface Pattern {
  original: string;
  parts: Part[];
  negated: boolean;
}

const STAR: Part = { pattern: '*', simple: false };

/** Splits a path into components; an absolute path's first component is "/". */
function splitPath(p: string): string[] {
  const parts = p.split('/');
  if (parts[0] === '') parts[0] = '/';
  return parts;
}

function parsePattern(text: string): Pattern {
  const negated = text.startsWith('!');
  const parts = splitPath(goClean(negated ? text.slice(1) : text)).map((part): Part => ({
    // "**" becomes "" so that finding it is a length check, as in restic.
    pattern: part === '**' ? '' : part,
    simple: !/[\\[\]*?]/.test(part),
  }));
  return { original: text, parts, negated };
}

function doubleWildcard(parts: readonly Part[]): number {
  return parts.findIndex((p) => p.pattern === '');
}

function matchParts(parts: readonly Part[], strs: readonly string[]): boolean {
  const pos = doubleWildcard(parts);
  if (pos >= 0) {
    // Expand "**" into 0, 1, 2, … single-component wildcards.
    const prefix = parts.slice(0, pos);
    const suffix = parts.slice(pos + 1);
    for (let i = 0; i <= strs.length - parts.length + 1; i++) {
      if (matchParts([...prefix, ...new Array<Part>(i).fill(STAR), ...suffix], strs)) return true;
    }
    return false;
  }
  if (parts.length === 0) return strs.length === 0;
  if (parts.length > strs.length) return false;
  let minOffset = 0;
  let maxOffset = strs.length - parts.length;
  if (parts[0]!.pattern === '/') maxOffset = 0;
  else if (strs[0] === '/') minOffset = 1; // a relative pattern never matches the root marker
  outer: for (let offset = maxOffset; offset >= minOffset; offset--) {
    for (let i = parts.length - 1; i >= 0; i--) {
      const part = parts[i]!;
      const s = strs[offset + i]!;
      if (!(part.simple ? part.pattern === s : goMatch(part.pattern, s))) continue outer;
    }
    return true;
  }
  return false;
}

/** Whether something below `strs` could match: relative patterns always may, absolute ones by prefix. */
function childMatch(pattern: Pattern, strs: readonly string[]): boolean {
  if (pattern.parts[0]!.pattern !== '/') return true;
  const pos = doubleWildcard(pattern.parts);
  const cut = pos >= 0 && strs.length >= pos ? strs.slice(0, pos) : strs;
  return matchParts(pattern.parts.slice(0, Math.min(cut.length, pattern.parts.length)), cut);
}

export interface MatchResult {
  matched: boolean;
  /** Whether an entry below this path could match (meaningful for directories; includes). */
  childMayMatch: boolean;
}

/** A compiled list of restic patterns; later patterns win, so "!x" re-includes what an earlier one matched. */
export interface Matcher {
  /** The patterns as given (empty ones dropped). */
  readonly patterns: readonly string[];
  /** True when there are no patterns: then nothing matches. */
  readonly empty: boolean;
  /** restic's filter.List: does `path` match? Paths are "/"-separated, absolute ones start with "/". */
  matches(path: string | Uint8Array): boolean;
  /** restic's filter.ListWithChild, second result: could anything below directory `path` match? */
  childMayMatch(path: string | Uint8Array): boolean;
  /** Both answers with one pass over the patterns. */
  match(path: string | Uint8Array): MatchResult;
}

export interface CompileOptions {
  /** Lower-case patterns and paths before matching (restic's --iexclude / --iinclude). */
  caseInsensitive?: boolean;
}

/** Patterns among `patterns` that Go's filepath.Match rejects (restic's ValidatePatterns). */
export function invalidPatterns(patterns: readonly string[]): string[] {
  const bad: string[] = [];
  for (const text of patterns) {
    if (text === '') continue;
    for (const part of parsePattern(text).parts) {
      try {
        goMatch(part.pattern, part.pattern);
      } catch (err) {
        if (!(err instanceof BadPatternError)) throw err;
        bad.push(text);
        break;
      }
    }
  }
  return bad;
}

/**
 * Compiles restic patterns (as given to --exclude, --include, or read from an exclude file).
 * Empty patterns are ignored; a malformed one (e.g. "[a") throws UsageError naming it.
 */
export function compilePatterns(patterns: readonly string[], opts: CompileOptions = {}): Matcher {
  const fold = opts.caseInsensitive === true;
  const given = patterns.filter((p) => p !== '');
  const bad = invalidPatterns(given);
  if (bad.length) throw new UsageError(`invalid pattern(s): ${bad.join(', ')}`);
  const compiled = given.map((p) => parsePattern(fold ? p.toLowerCase() : p));
  const hasNegated = compiled.some((p) => p.negated);

  const list = (path: string | Uint8Array, withChild: boolean): MatchResult => {
    let text = typeof path === 'string' ? path : bytesToMatchString(path);
    if (compiled.length === 0 || text === '') return { matched: false, childMayMatch: false };
    if (fold) text = text.toLowerCase();
    const strs = splitPath(text);
    let matched = false;
    let child = false;
    for (const pat of compiled) {
      const m = matchParts(pat.parts, strs);
      if (pat.negated) {
        matched &&= !m;
        child &&= !m;
        continue;
      }
      matched ||= m;
      child ||= withChild ? childMatch(pat, strs) : true;
      // Without negations the answer cannot change any more.
      if (matched && child && !hasNegated) break;
    }
    return { matched, childMayMatch: child };
  };

  return {
    patterns: given,
    empty: compiled.length === 0,
    matches: (path) => list(path, false).matched,
    childMayMatch: (path) => list(path, true).childMayMatch,
    match: (path) => list(path, true),
  };
}

/** restic's filter.Match for one pattern (used by `find`); the empty pattern matches everything. */
export function matchPattern(pattern: string, path: string | Uint8Array): boolean {
  if (pattern === '') return true;
  const text = typeof path === 'string' ? path : bytesToMatchString(path);
  if (text === '') return false;
  try {
    return matchParts(parsePattern(pattern).parts, splitPath(text));
  } catch (err) {
    if (err instanceof BadPatternError) throw new UsageError(`invalid pattern: ${pattern}`);
    throw err;
  }
}

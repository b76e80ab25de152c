// restic 0.14's target collection: --files-from (glob patterns, "#" comments), --files-from-verbatim
// (one path per line), --files-from-raw (NUL-terminated), then the arguments; missing targets are
// reported and dropped.
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { BadPatternError, goMatch } from '../filter/gomatch.js';
import { decodeTextFile, goTrimSpace, splitLines } from '../filter/pattern-file.js';
import { isErrnoError } from './item-error.js';
import { compareNames, goJoin } from './targets.js';

export interface FilesFromOptions {
  filesFrom?: readonly string[];
  filesFromVerbatim?: readonly string[];
  filesFromRaw?: readonly string[];
}

interface Context {
  cwd: string;
  /** Where "-" reads from. */
  stdin: () => Promise<Buffer>;
  warn: (message: string) => void;
}

async function readSource(file: string, ctx: Context): Promise<Buffer> {
  return file === '-' ? ctx.stdin() : readFile(resolve(ctx.cwd, file));
}

const hasMeta = (p: string) => /[*?[\\]/.test(p);

async function exists(p: string, follow: boolean): Promise<{ isDir: boolean } | undefined> {
  try {
    const st = follow ? await stat(p) : await lstat(p);
    return { isDir: st.isDirectory() };
  } catch {
    return undefined;
  }
}

function match(pattern: string, name: string): boolean {
  try {
    return goMatch(pattern, name);
  } catch (err) {
    if (err instanceof BadPatternError) throw new UsageError(`pattern: ${pattern}: syntax error in pattern`);
    throw err;
  }
}

/** Go's filepath.Glob; relative patterns are resolved against `cwd` but returned relative. */
export async function goGlob(pattern: string, cwd: string): Promise<string[]> {
  match(pattern, '');
  if (!hasMeta(pattern)) return (await exists(resolve(cwd, pattern), false)) ? [pattern] : [];
  const slash = pattern.lastIndexOf('/');
  let dir = pattern.slice(0, slash + 1);
  const file = pattern.slice(slash + 1);
  dir = dir === '' ? '.' : dir === '/' ? dir : dir.slice(0, -1);
  const dirs = hasMeta(dir) ? (dir === pattern ? [] : await goGlob(dir, cwd)) : [dir];
  const out: string[] = [];
  for (const d of dirs) {
    if (!(await exists(resolve(cwd, d), true))?.isDir) continue;
    let names: string[];
    try {
      names = await readdir(resolve(cwd, d));
    } catch {
      continue;
    }
    for (const n of names.sort(compareNames)) if (match(file, n)) out.push(goJoin(d, n));
  }
  return out;
}

/** Names of a --files-from-raw listing: each ends with a NUL byte. */
export function splitRaw(data: Buffer): string[] {
  const names: string[] = [];
  let start = 0;
  while (start < data.length) {
    const end = data.indexOf(0, start);
    if (end < 0) throw new UsageError('--files-from-raw: trailing zero byte missing');
    if (end === start) throw new UsageError('--files-from-raw: empty filename in listing');
    names.push(data.toString('utf8', start, end));
    start = end + 1;
  }
  return names;
}

/** The backup targets from listing files and arguments, with missing ones dropped (and reported). */
export async function collectTargets(opts: FilesFromOptions, args: readonly string[], ctx: Context): Promise<string[]> {
  const targets: string[] = [];
  for (const file of opts.filesFrom ?? []) {
    for (const raw of splitLines(decodeTextFile(await readSource(file, ctx)))) {
      const line = goTrimSpace(raw);
      if (line === '' || line.startsWith('#')) continue;
      const expanded = await goGlob(line, ctx.cwd);
      if (expanded.length === 0) ctx.warn(`pattern ${JSON.stringify(line)} does not match any files, skipping\n`);
      targets.push(...expanded);
    }
  }
  for (const file of opts.filesFromVerbatim ?? []) {
    for (const line of splitLines(decodeTextFile(await readSource(file, ctx)))) if (line !== '') targets.push(line);
  }
  for (const file of opts.filesFromRaw ?? []) targets.push(...splitRaw(await readSource(file, ctx)));
  targets.push(...args);
  if (targets.length === 0) throw new UsageError('nothing to backup, please specify target files/dirs');
  const existing: string[] = [];
  for (const t of targets) {
    try {
      await lstat(resolve(ctx.cwd, t));
    } catch (err) {
      if (isErrnoError(err) && err.code === 'ENOENT') {
        ctx.warn(`${t} does not exist, skipping\n`);
        continue;
      }
    }
    existing.push(t);
  }
  if (existing.length === 0) throw new UsageError('all target directories/files do not exist');
  return existing;
}

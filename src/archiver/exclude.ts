// restic 0.14's backup exclusion rules (cmd/restic/exclude.go semantics): patterns on the absolute
// path, tag files that exclude the rest of their directory, other file systems, large files.
import { lstatSync } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { compilePatterns, type Matcher } from '../filter/filter.js';
import { goClean } from '../filter/gomatch.js';
import { readPatternFiles } from '../filter/pattern-file.js';
import { isErrnoError, pathError } from './item-error.js';
import { joinPath, parentDir } from './paths.js';

/** restic's --exclude-caches is --exclude-if-present with this tag file and header. */
export const CACHEDIR_TAG = 'CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55';

export interface ExcludeOptions {
  /** Patterns (--exclude); only these are recorded in the snapshot, as restic does. */
  excludes?: readonly string[];
  /** Case-insensitive patterns (--iexclude). */
  iexcludes?: readonly string[];
  /** Files of patterns (--exclude-file, --iexclude-file): "#" comments, $VAR expanded. */
  excludeFiles?: readonly string[];
  iexcludeFiles?: readonly string[];
  /** Skip the contents of directories tagged with a valid CACHEDIR.TAG. */
  excludeCaches?: boolean;
  /** "name[:header]": skip the contents of directories holding such a file (except the file). */
  excludeIfPresent?: readonly string[];
  /** Skip files larger than this (bytes, or restic's "10M" syntax). */
  excludeLargerThan?: number | string;
  /** Do not cross file system boundaries below the targets (mount points are kept, empty). */
  oneFileSystem?: boolean;
}

/** What the size and device rules need from lstat. */
export interface EntryInfo {
  isDir: boolean;
  size: number;
  dev: number;
}

interface TagSpec {
  name: string;
  header: Buffer;
}

/** restic's parseSizeStr: an integer with an optional b/k/m/g/t suffix (binary units). */
export function parseSize(text: string): number {
  if (text === '') throw new UsageError('expected size, got empty string');
  const units: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  const unit = units[text[text.length - 1]!.toLowerCase()];
  const digits = unit === undefined ? text : text.slice(0, -1);
  if (!/^[+-]?\d+$/.test(digits)) throw new UsageError(`invalid size "${text}"`);
  return Number(digits) * (unit ?? 1);
}

function parseTagSpec(spec: string): TagSpec {
  if (spec === '') throw new UsageError('name for exclusion tagfile is empty');
  const colon = spec.indexOf(':');
  if (colon === 0) throw new UsageError('no name for exclusion tagfile provided');
  if (colon < 0) return { name: spec, header: Buffer.alloc(0) };
  return { name: spec.slice(0, colon), header: Buffer.from(spec.slice(colon + 1)) };
}

/** Go's %q for messages. */
function quote(p: Buffer | string): string {
  return JSON.stringify(p.toString());
}

/** The selection rules of one backup; the archiver and the scanner both ask it. */
export class Excluder {
  private readonly matchers: Matcher[] = [];
  private readonly tags: TagSpec[];
  private readonly tagCache = new Map<string, Promise<string[]>>();
  private maxSize?: number;
  private devices?: Map<string, number>;

  private constructor(
    tags: TagSpec[],
    private readonly warn: (message: string) => void,
  ) {
    this.tags = tags;
  }

  /**
   * Builds the rules; `targets` are the backup paths as given (for --one-file-system), `cwd` resolves
   * relative ones. Invalid patterns or sizes throw UsageError.
   */
  static async create(
    opts: ExcludeOptions,
    targets: readonly string[],
    { cwd = process.cwd(), env = process.env, warn = () => undefined, stdin = false }: { cwd?: string; env?: NodeJS.ProcessEnv; warn?: (message: string) => void; stdin?: boolean } = {},
  ): Promise<Excluder> {
    const specs = [...(opts.excludeIfPresent ?? [])];
    if (opts.excludeCaches) specs.push(CACHEDIR_TAG);
    const ex = new Excluder(specs.map(parseTagSpec), warn);
    const read = async (files: readonly string[] | undefined) => (files?.length ? readPatternFiles(files.map((f) => resolve(cwd, f)), env) : []);
    const insensitive = [...(opts.iexcludes ?? []), ...(await read(opts.iexcludeFiles))];
    const sensitive = [...(opts.excludes ?? []), ...(await read(opts.excludeFiles))];
    if (insensitive.length) ex.matchers.push(compilePatterns(insensitive, { caseInsensitive: true }));
    if (sensitive.length) ex.matchers.push(compilePatterns(sensitive));
    if (stdin) return ex; // restic applies the size and device rules to real files only
    if (opts.excludeLargerThan !== undefined && opts.excludeLargerThan !== '') {
      ex.maxSize = typeof opts.excludeLargerThan === 'number' ? opts.excludeLargerThan : parseSize(opts.excludeLargerThan);
    }
    if (opts.oneFileSystem) {
      ex.devices = new Map();
      for (const t of targets) {
        const abs = goClean(resolve(cwd, t));
        ex.devices.set(Buffer.from(abs).toString('latin1'), (await lstat(abs)).dev);
      }
      if (ex.devices.size === 0) throw new UsageError('zero allowed devices');
    }
    return ex;
  }

  /** True when some rule needs the directory's tag files. */
  get checksTagFiles(): boolean {
    return this.tags.length > 0;
  }

  /**
   * Tag names whose rule excludes the entries of directory `dir` (all but the tag file itself);
   * evaluated once per directory.
   */
  dirTags(dir: Buffer): Promise<string[]> {
    if (this.tags.length === 0) return Promise.resolve([]);
    const key = dir.toString('latin1');
    let verdict = this.tagCache.get(key);
    if (!verdict) {
      verdict = (async () => {
        const hits: string[] = [];
        for (const tag of this.tags) if (await this.dirHasTag(dir, tag)) hits.push(tag.name);
        return hits;
      })();
      this.tagCache.set(key, verdict);
    }
    return verdict;
  }

  private async dirHasTag(dir: Buffer, tag: TagSpec): Promise<boolean> {
    const file = joinPath(dir, Buffer.from(tag.name));
    try {
      await lstat(file);
    } catch (err) {
      if (isErrnoError(err) && err.code === 'ENOENT') return false;
      this.warn(`could not access exclusion tagfile: ${pathError('lstat', file.toString(), err).message}\n`);
      return false;
    }
    if (tag.header.length === 0) return true;
    let got: Buffer;
    try {
      const fh = await open(file, 'r');
      try {
        const buf = Buffer.alloc(tag.header.length);
        let n = 0;
        while (n < buf.length) {
          const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
        got = buf.subarray(0, n);
      } finally {
        await fh.close();
      }
    } catch (err) {
      this.warn(`could not open exclusion tagfile: ${pathError('open', file.toString(), err).message}\n`);
      return false;
    }
    if (got.length === 0) {
      this.warn(`invalid (too short) signature in exclusion tagfile ${quote(file)}\n`);
      return false;
    }
    if (got.length < tag.header.length) {
      this.warn(`could not read signature from exclusion tagfile ${quote(file)}: unexpected EOF\n`);
      return false;
    }
    if (!got.equals(tag.header)) {
      this.warn(`invalid signature in exclusion tagfile ${quote(file)}\n`);
      return false;
    }
    return true;
  }

  /** Name rules for absolute `path` (base name `name`), given the tag verdict of its parent directory. */
  rejectByName(path: Buffer, name: Buffer, parentTags: readonly string[]): boolean {
    for (const tag of parentTags) if (!name.equals(Buffer.from(tag))) return true;
    for (const m of this.matchers) if (m.matches(path)) return true;
    return false;
  }

  /** Rules that need lstat: size limit and file system boundaries. */
  rejectByInfo(path: Buffer, info: EntryInfo): boolean {
    if (this.maxSize !== undefined && !info.isDir && info.size > this.maxSize) return true;
    if (!this.devices) return false;
    if (this.allowedDevice(path, info.dev)) return false;
    if (!info.isDir) return true;
    // A mount point is kept (empty) when its parent directory is on an allowed device.
    const parent = parentDir(path);
    try {
      return !this.allowedDevice(parent, lstatSync(parent).dev);
    } catch {
      return true;
    }
  }

  /** Whether `path` is on the device of the nearest target at or above it. */
  private allowedDevice(path: Buffer, dev: number): boolean {
    for (let dir = path; ; dir = parentDir(dir)) {
      const allowed = this.devices!.get(dir.toString('latin1'));
      if (allowed !== undefined) return allowed === dev;
      if (dir.length === 1) return false;
    }
  }

  /** True when the rules never need lstat data, so callers may skip asking. */
  get needsInfo(): boolean {
    return this.maxSize !== undefined || this.devices !== undefined;
  }
}

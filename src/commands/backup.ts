import { userInfo, hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { Archiver } from '../archiver/archiver.js';
import { dryRunBlobSaver, repositoryBlobSaver } from '../archiver/blob-saver.js';
import { Excluder, type ExcludeOptions } from '../archiver/exclude.js';
import { collectTargets, type FilesFromOptions } from '../archiver/files-from.js';
import { findParentSnapshot } from '../archiver/parent.js';
import { Progress, type ProgressListeners } from '../archiver/progress.js';
import { Scanner } from '../archiver/scanner.js';
import type { BackupStats } from '../archiver/stats.js';
import { buildTargetTree, resolveRelativeTargets } from '../archiver/targets.js';
import { sha256Hex } from '../crypto/index.js';
import { ResticError, UsageError } from '../errors.js';
import { goClean } from '../filter/gomatch.js';
import { nowNs } from '../repo/clock.js';
import { formatGoTime, parseGoTime } from '../repo/gotime.js';
import type { Repository } from '../repo/repository.js';
import { encodeSnapshot, type NewSnapshot, type Snapshot } from '../repo/snapshot.js';
import { withLock } from '../repo/locking.js';

export type { BackupStats };
export type { BackupStatus, BackupItemEvent, BackupErrorEvent, ScanTotals } from '../archiver/progress.js';

export interface BackupOptions extends ExcludeOptions, FilesFromOptions, ProgressListeners {
  /** Files and directories to back up; relative paths are resolved against `cwd`. */
  paths?: readonly string[];
  /** Directory relative paths start from (default: the process's current directory). */
  cwd?: string;
  /** Snapshot host name (default: this machine's); also selects the parent. */
  hostname?: string;
  tags?: readonly string[];
  /** Snapshot time as a Go RFC3339Nano string; defaults to now. */
  time?: string;
  /** Parent snapshot (id or unique prefix) instead of the latest one with the same host and paths. */
  parent?: string;
  /** Read every file, ignoring the parent snapshot. */
  force?: boolean;
  /** Change detection: ignore ctime / the inode number (the latter implies the former, as in restic). */
  ignoreCtime?: boolean;
  ignoreInode?: boolean;
  /** Store access times (otherwise atime = mtime). */
  withAtime?: boolean;
  /** Decide what would be stored, write nothing (no packs, index or snapshot). */
  dryRun?: boolean;
  /** Back up this stream as one file instead of `paths`. */
  stdin?: AsyncIterable<Uint8Array>;
  /** Its name in the snapshot (default "stdin"). */
  stdinFilename?: string;
  /** Files read at once (default 2). */
  fileConcurrency?: number;
  /** Environment for $VAR in exclude files. */
  env?: NodeJS.ProcessEnv;
  /** Non-fatal notices: missing targets, unreadable tag files ("\n"-terminated, like restic's). */
  onWarning?: (message: string) => void;
  /** Called when the parent snapshot has been chosen, before any file is read. */
  onParent?: (parent: Snapshot | undefined) => void;
  /** Counts file content bytes as they are read. */
  onRead?: (bytes: number) => void;
}

export interface BackupResult {
  /** The new snapshot; in a dry run the one that would have been saved (not stored, id made up). */
  snapshot: Snapshot;
  parent?: Snapshot;
  stats: BackupStats;
  /** Some files or directories could not be read: restic exits with code 3. */
  incomplete: boolean;
  dryRun: boolean;
  durationMs: number;
}

/** restic's default when no --stdin-filename is given. */
const STDIN_NAME = 'stdin';

/** `restic backup`: stores the given paths (or a stream) as a new snapshot. */
export async function backup(repo: Repository, options: BackupOptions): Promise<BackupResult> {
  const cwd = options.cwd ?? process.cwd();
  const warn = options.onWarning ?? (() => undefined);
  if (options.stdin && (options.paths?.length || options.filesFrom?.length || options.filesFromVerbatim?.length || options.filesFromRaw?.length)) {
    throw new UsageError('--stdin was specified and files/dirs were listed as arguments');
  }
  const targets = options.stdin
    ? [goClean('/' + (options.stdinFilename ?? STDIN_NAME))]
    : await collectTargets(options, options.paths ?? [], { cwd, warn, stdin: () => readAll(process.stdin) });
  const timeNs = options.time !== undefined ? parseGoTime(options.time) : nowNs();
  const time = options.time ?? formatGoTime(timeNs);
  const host = options.hostname ?? osHostname();

  return withLock(repo, false, async () => {
    // Both are mostly waiting for the backend: load the index while the parent is looked for.
    const indexLoading = repo.loadIndex();
    indexLoading.catch(() => undefined);
    const excluder = await Excluder.create(options, targets, { cwd, env: options.env, warn, stdin: options.stdin !== undefined });
    const parent =
      options.stdin || options.force
        ? undefined
        : await findParentSnapshot(repo, {
            explicit: options.parent,
            hostname: host,
            paths: targets.map((t) => goClean(resolve(cwd, t))),
            notAfterNs: timeNs,
          });
    options.onParent?.(parent);
    await indexLoading;

    const progress = new Progress(options);
    const blobs = options.dryRun ? dryRunBlobSaver(repo) : repositoryBlobSaver(repo);
    const archiver = new Archiver(repo, {
      cwd,
      excluder,
      blobs,
      progress,
      fileConcurrency: options.fileConcurrency,
      withAtime: options.withAtime,
      change: { ignoreCtime: options.ignoreCtime, ignoreInode: options.ignoreInode },
      onRead: (n) => {
        progress.summary.bytesRead += n;
        options.onRead?.(n);
      },
    });
    progress.start();
    let scanner: Scanner | undefined;
    try {
      let tree: string;
      if (options.stdin) {
        tree = await archiver.saveStdin(options.stdin, options.stdinFilename ?? STDIN_NAME, timeNs);
      } else {
        const atree = await buildTargetTree(await resolveRelativeTargets(targets, cwd), cwd);
        // The scanner only feeds progress totals: skip its extra lstat pass when nobody listens.
        let scanning: Promise<void> | undefined;
        if (options.onStatus || options.onScanFinished) {
          scanner = new Scanner(excluder, progress, cwd);
          scanning = scanner.scan(atree).catch(() => undefined);
        }
        tree = await archiver.saveTargets(atree, parent?.tree);
        scanner?.stop();
        await scanning;
      }
      await blobs.flush();
      const user = userInfo();
      const snapshot: NewSnapshot = {
        time,
        tree,
        paths: targets.map((t) => resolve(cwd, t)),
        hostname: host,
        username: user.username,
        uid: user.uid,
        gid: user.gid,
      };
      if (parent) snapshot.parent = parent.id;
      if (options.excludes?.length) snapshot.excludes = [...options.excludes];
      if (options.tags?.length) snapshot.tags = [...options.tags];
      const saved = options.dryRun ? { ...snapshot, id: sha256Hex(encodeSnapshot(snapshot)) } : await repo.saveSnapshot(snapshot);
      return {
        snapshot: saved,
        parent,
        stats: progress.summary,
        incomplete: progress.summary.errors > 0,
        dryRun: options.dryRun === true,
        // Whole nanoseconds, as Go's Duration.Seconds() reports them.
        durationMs: Math.round(progress.elapsedMs() * 1e6) / 1e6,
      };
    } catch (err) {
      // As restic: whatever stops the archiving is reported as such (the cause's class is kept).
      if (err instanceof ResticError && !(err instanceof UsageError)) err.message = `unable to save snapshot: ${err.message}`;
      throw err;
    } finally {
      scanner?.stop();
      progress.stop();
    }
  });
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const b of stream) parts.push(b);
  return Buffer.concat(parts);
}

import { list, openRepo, passwordSources, type Command, type GlobalOptions, type Values } from '../command.js';
import { givenWithoutPrompt } from '../password.js';
import { backup, type BackupOptions } from '../../commands/backup.js';
import { UsageError } from '../../errors.js';
import { formatGoTime } from '../../repo/gotime.js';
import { flattenTags, parseTagList } from '../../repo/snapshot-filter.js';
import { BackupPrinter } from '../../ui/backup.js';
import { StatusTerminal } from '../../ui/terminal.js';

/** restic's --time layout "2006-01-02 15:04:05", in the local time zone. */
function parseTimeFlag(text: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  const d = m ? new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : undefined;
  if (!m || !d || d.getMonth() !== +m[2]! - 1 || d.getDate() !== +m[3]! || d.getHours() !== +m[4]!) {
    throw new UsageError(`error in time option: cannot parse "${text}" as "2006-01-02 15:04:05"`);
  }
  return formatGoTime(BigInt(d.getTime()) * 1_000_000n);
}

/** restic's verbosity: 0 with --quiet, 1 by default, 2 with -v, 3 with -vv. */
function verbosity(g: GlobalOptions, v: Values): number {
  const verbose = Array.isArray(v.verbose) ? v.verbose.length : v.verbose ? 1 : 0;
  if (g.quiet && verbose > 0) throw new UsageError('--quiet and --verbose cannot be specified at the same time');
  return g.quiet ? 0 : verbose >= 2 ? 3 : verbose > 0 ? 2 : 1;
}

/** Status updates per second: RESTIC_PROGRESS_FPS (at most 60), else 10. */
function statusIntervalMs(): number {
  const fps = Number(process.env.RESTIC_PROGRESS_FPS);
  return fps > 0 ? 1000 / Math.min(fps, 60) : 100;
}

const str = (v: Values, key: string) => v[key] as string | undefined;

export const backupCommand: Command = {
  usage:
    '[flags] [FILE/DIR]...\n\n' +
    '  --parent ID, -f/--force, -e/--exclude P, --iexclude P, --exclude-file F, --iexclude-file F,\n' +
    '  --exclude-caches, --exclude-if-present NAME[:HEADER], --exclude-larger-than SIZE, -x/--one-file-system,\n' +
    '  --files-from F, --files-from-verbatim F, --files-from-raw F, --tag T[,T], -H/--host H, --time "Y-M-D h:m:s",\n' +
    '  --stdin, --stdin-filename NAME, --with-atime, --ignore-inode, --ignore-ctime, -n/--dry-run\n\n' +
    'Exit status: 0 success, 1 fatal error (no snapshot), 3 some source data could not be read (incomplete snapshot)',
  options: {
    parent: { type: 'string' },
    force: { type: 'boolean', short: 'f' },
    exclude: { type: 'string', short: 'e', multiple: true },
    iexclude: { type: 'string', multiple: true },
    'exclude-file': { type: 'string', multiple: true },
    'iexclude-file': { type: 'string', multiple: true },
    'one-file-system': { type: 'boolean', short: 'x' },
    'exclude-if-present': { type: 'string', multiple: true },
    'exclude-caches': { type: 'boolean' },
    'exclude-larger-than': { type: 'string' },
    stdin: { type: 'boolean' },
    'stdin-filename': { type: 'string' },
    tag: { type: 'string', multiple: true },
    host: { type: 'string', short: 'H' },
    hostname: { type: 'string' },
    'files-from': { type: 'string', multiple: true },
    'files-from-verbatim': { type: 'string', multiple: true },
    'files-from-raw': { type: 'string', multiple: true },
    time: { type: 'string' },
    'with-atime': { type: 'boolean' },
    'ignore-inode': { type: 'boolean' },
    'ignore-ctime': { type: 'boolean' },
    'dry-run': { type: 'boolean', short: 'n' },
  },
  async run(g, v, args) {
    const level = verbosity(g, v);
    const stdin = v.stdin === true;
    const filesFrom = list(v, 'files-from');
    const filesFromVerbatim = list(v, 'files-from-verbatim');
    const filesFromRaw = list(v, 'files-from-raw');
    if (stdin) {
      if (filesFrom.length) throw new UsageError('--stdin and --files-from cannot be used together');
      if (filesFromVerbatim.length) throw new UsageError('--stdin and --files-from-verbatim cannot be used together');
      if (filesFromRaw.length) throw new UsageError('--stdin and --files-from-raw cannot be used together');
      if (args.length) throw new UsageError('--stdin was specified and files/dirs were listed as arguments');
    }
    const passwordFromStdin = !givenWithoutPrompt(passwordSources(g));
    if (passwordFromStdin && (stdin || [...filesFrom, ...filesFromVerbatim, ...filesFromRaw].includes('-'))) {
      throw new UsageError('unable to read password from stdin when data is to be read from stdin, use --password-file or $RESTIC_PASSWORD');
    }
    const timeFlag = str(v, 'time');
    const time = timeFlag ? parseTimeFlag(timeFlag) : undefined;

    const term = new StatusTerminal();
    const printer = new BackupPrinter(term, { json: g.json, verbosity: level });
    const showStatus = level > 0 && (g.json || term.canUpdateStatus);
    const text = !g.json;

    if (text) printer.v('open repository');
    const repo = await openRepo(g);
    if (text) printer.v('lock repository');
    const options: BackupOptions = {
      paths: args,
      filesFrom,
      filesFromVerbatim,
      filesFromRaw,
      parent: str(v, 'parent'),
      force: v.force === true,
      excludes: list(v, 'exclude'),
      iexcludes: list(v, 'iexclude'),
      excludeFiles: list(v, 'exclude-file'),
      iexcludeFiles: list(v, 'iexclude-file'),
      excludeCaches: v['exclude-caches'] === true,
      excludeIfPresent: list(v, 'exclude-if-present'),
      excludeLargerThan: str(v, 'exclude-larger-than'),
      oneFileSystem: v['one-file-system'] === true,
      hostname: str(v, 'host') ?? str(v, 'hostname'),
      tags: flattenTags(list(v, 'tag').map(parseTagList)),
      time,
      withAtime: v['with-atime'] === true,
      ignoreInode: v['ignore-inode'] === true,
      ignoreCtime: v['ignore-ctime'] === true,
      dryRun: v['dry-run'] === true,
      stdin: stdin ? process.stdin : undefined,
      stdinFilename: str(v, 'stdin-filename'),
      onWarning: (message) => process.stderr.write(message),
      onParent: (parent) => {
        if (!text || stdin) return;
        printer.p(parent ? `using parent snapshot ${parent.id.slice(0, 8)}` : 'no parent snapshot found, will read all files');
        printer.v('load index files');
        printer.v(`start scan on [${args.join(' ')}]`);
        printer.v(`start backup on [${args.join(' ')}]`);
      },
      onStatus: showStatus ? (s) => printer.status(s) : undefined,
      statusIntervalMs: statusIntervalMs(),
      onError: (e) => printer.error(e),
      onItem: level >= 2 ? (e) => printer.item(e) : undefined,
      onScanFinished: level >= 2 ? (totals, ms) => printer.scanFinished(totals, ms) : undefined,
    };
    let result;
    try {
      result = await backup(repo, options);
    } finally {
      term.finish();
      // Ends the repository's encoder threads, which would otherwise keep the process alive.
      await repo.close();
    }
    printer.finish(result);
    if (result.incomplete) {
      process.stderr.write('Warning: at least one source file could not be read\n');
      return 3;
    }
    return 0;
  },
};

import { ResticError, UsageError } from '../../errors.js';
import { list, oneArg, openRepo, out, type Command } from '../command.js';
import { restore } from '../../commands/restore.js';
import { formatBytes, formatDurationMs, formatNode, Output, snapshotString } from '../format.js';
import { FILTER_OPTIONS, filterFromFlags } from './snapshots.js';

export const restoreCommand: Command = {
  usage:
    'SNAPSHOT[:SUBFOLDER] --target DIR [--include P]... [--exclude P]... [--iinclude P]... [--iexclude P]... [--verify] [--sparse] [--dry-run] [--host H] [--tag T] [--path P]',
  options: {
    ...FILTER_OPTIONS,
    target: { type: 'string', short: 't' },
    include: { type: 'string', short: 'i', multiple: true },
    exclude: { type: 'string', short: 'e', multiple: true },
    iinclude: { type: 'string', multiple: true },
    iexclude: { type: 'string', multiple: true },
    verify: { type: 'boolean' },
    sparse: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  },
  async run(g, v, args) {
    if (args.length === 0) throw new UsageError('no snapshot ID specified');
    const ref = oneArg(args, 'snapshot ID');
    const target = v.target as string | undefined;
    if (!target) throw new UsageError('please specify a directory to restore to (--target)');
    const dryRun = v['dry-run'] === true;
    const verbose = !g.quiet && !g.json;
    const repo = await openRepo(g);
    const o = new Output(out);
    const started = Date.now();
    let verifyStart = 0;
    const { stats } = await restore(repo, {
      snapshot: ref,
      filter: filterFromFlags(v),
      target,
      include: list(v, 'include'),
      exclude: list(v, 'exclude'),
      iinclude: list(v, 'iinclude'),
      iexclude: list(v, 'iexclude'),
      verify: v.verify === true,
      sparse: v.sparse === true,
      dryRun,
      onStart: (snapshot) => {
        if (verbose) process.stdout.write(`restoring ${snapshotString(snapshot)} to ${target}\n`);
      },
      // The list of what would be restored is what a dry run is for.
      onItem: dryRun && !g.json ? (_location, node, rawLocation) => void o.add(Buffer.concat([Buffer.from('would restore '), formatNode(rawLocation, node, false), Buffer.from('\n')])) : undefined,
      onWarning: (location, message) => process.stderr.write(`ignoring error for ${location}: ${message}\n`),
      onVerifyStart: () => {
        verifyStart = Date.now();
        if (verbose) process.stdout.write(`verifying files in ${target}\n`);
      },
    });
    await o.flush();
    if (stats.errors > 0) throw new ResticError(`There were ${stats.errors} errors`);
    const files = stats.files + stats.dirs + stats.others;
    if (g.json) {
      await out(
        `{"message_type":"summary","seconds_elapsed":${Math.round((Date.now() - started) / 1000)},"total_files":${files},"files_restored":${dryRun ? 0 : files},"total_bytes":${stats.bytes},"bytes_restored":${dryRun ? 0 : stats.bytes}${v.verify === true ? `,"files_verified":${stats.verified}` : ''}}\n`,
      );
    } else if (verbose) {
      if (v.verify === true) await out(`finished verifying ${stats.verified} files in ${target} (took ${formatDurationMs(Date.now() - verifyStart)})\n`);
      if (dryRun) await out(`Summary: would restore ${files} files/dirs (${formatBytes(stats.bytes)})\n`);
    }
    return 0;
  },
};

import { UsageError } from '../../errors.js';
import { oneArg, openRepo, out, type Command } from '../command.js';
import { restore } from '../../commands/restore.js';
import { formatBytes } from '../format.js';

export const restoreCommand: Command = {
  summary: 'Extract the data from a snapshot',
  usage: 'SNAPSHOT[:SUBFOLDER] --target DIR',
  options: { target: { type: 'string', short: 't' } },
  async run(g, v, args) {
    const ref = oneArg(args, 'snapshot ID');
    const target = v.target as string | undefined;
    if (!target) throw new UsageError('please specify a directory to restore to (--target)');
    const repo = await openRepo(g);
    const { snapshot, stats } = await restore(repo, { snapshot: ref, target });
    if (g.json) out(JSON.stringify({ message_type: 'summary', snapshot_id: snapshot.id, files_restored: stats.files, total_bytes: stats.bytes }) + '\n');
    else if (!g.quiet) out(`restored snapshot ${snapshot.id.slice(0, 8)} of [${snapshot.paths.join(' ')}] to ${target}: ${stats.files} files, ${formatBytes(stats.bytes)}\n`);
    return 0;
  },
};

import { UsageError } from '../../errors.js';
import { openRepo, out, type Command } from '../command.js';
import { ls } from '../../commands/ls.js';
import { snapshotToJSON } from '../../repo/snapshot.js';
import { formatLsLong, lsNodeJSON } from '../format.js';

export const lsCommand: Command = {
  summary: 'List files in a snapshot',
  usage: 'SNAPSHOT [DIR] [-l] [--recursive] [--json]',
  options: { long: { type: 'boolean', short: 'l' }, recursive: { type: 'boolean' } },
  async run(g, v, args) {
    if (args.length < 1 || args.length > 2) throw new UsageError('usage: ls SNAPSHOT [DIR]');
    const repo = await openRepo(g);
    const { snapshot, entries } = await ls(repo, { snapshot: args[0]!, dir: args[1], recursive: v.recursive === true });
    if (g.json) out(JSON.stringify({ ...snapshotToJSON(snapshot), struct_type: 'snapshot' }) + '\n');
    else out(`snapshot ${snapshot.id.slice(0, 8)} of [${snapshot.paths.join(' ')}] at ${snapshot.time}:\n`);
    for await (const { path, node } of entries) {
      if (g.json) out(JSON.stringify(lsNodeJSON(path, node)) + '\n');
      else out((v.long ? formatLsLong(path, node) : path) + '\n');
    }
    return 0;
  },
};

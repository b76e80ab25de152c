import { UsageError } from '../../errors.js';
import { openRepo, out, type Command } from '../command.js';
import { dump } from '../../commands/dump.js';
import { FILTER_OPTIONS, filterFromFlags } from './snapshots.js';

export const dumpCommand: Command = {
  usage: 'SNAPSHOT PATH [--archive tar] [--host H] [--tag T] [--path P]',
  options: { ...FILTER_OPTIONS, archive: { type: 'string', short: 'a' } },
  async run(g, v, args) {
    if (args.length !== 2) throw new UsageError('no file and no snapshot ID specified');
    const archive = (v.archive as string | undefined) ?? 'tar';
    if (archive !== 'tar') throw new UsageError(`unknown archive format "${archive}" (restic-ts writes tar only)`);
    const repo = await openRepo(g);
    const result = await dump(repo, { snapshot: args[0]!, path: args[1]!, filter: filterFromFlags(v) });
    if (result.archive && process.stdout.isTTY) throw new UsageError('stdout is the terminal, please redirect output');
    for await (const chunk of result.data) await out(chunk);
    return 0;
  },
};

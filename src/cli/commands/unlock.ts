import { openRepo, out, type Command } from '../command.js';
import { unlock } from '../../commands/unlock.js';

export const unlockCommand: Command = {
  usage: '[--remove-all]',
  options: { 'remove-all': { type: 'boolean' } },
  async run(g, v) {
    const repo = await openRepo(g);
    const removed = await unlock(repo, { all: v['remove-all'] === true });
    if (!g.quiet) out(`successfully removed ${removed.length} locks\n`);
    return 0;
  },
};

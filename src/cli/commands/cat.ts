import { UsageError } from '../../errors.js';
import { openRepo, out, type Command } from '../command.js';
import { cat, CAT_KINDS, type CatKind } from '../../commands/cat.js';

export const catCommand: Command = {
  usage: `${CAT_KINDS.join('|')} [ID]`,
  options: {},
  async run(g, _v, args) {
    const kind = args[0];
    if (!kind || !(CAT_KINDS as readonly string[]).includes(kind)) throw new UsageError(`cat: type must be one of ${CAT_KINDS.join(', ')}`);
    const repo = await openRepo(g);
    const data = await cat(repo, kind as CatKind, args[1]);
    await out(data);
    return 0;
  },
};

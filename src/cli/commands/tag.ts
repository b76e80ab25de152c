import { list, openRepo, out, type Command } from '../command.js';
import { checkTagOptions, tag } from '../../commands/tag.js';
import { parseTagList } from '../../repo/snapshot-filter.js';
import { FILTER_OPTIONS, filterFromFlags, reportSelection } from './snapshots.js';

export const tagCommand: Command = {
  usage: '(--set T[,T...] | --add T[,T...] | --remove T[,T...])... [--host H] [--tag T[,T...]] [--path P] [ID...]',
  options: {
    ...FILTER_OPTIONS,
    set: { type: 'string', multiple: true },
    add: { type: 'string', multiple: true },
    remove: { type: 'string', multiple: true },
  },
  async run(g, v, args) {
    const tags = (key: string) => list(v, key).flatMap(parseTagList);
    const changes = { set: tags('set'), add: tags('add'), remove: tags('remove') };
    checkTagOptions(changes);
    const repo = await openRepo(g);
    const result = await tag(repo, { filter: filterFromFlags(v), ids: args, ...changes });
    const code = reportSelection(result);
    if (!g.quiet && !g.json) {
      const done = result.changed.length ? `modified tags on ${result.changed.length} snapshots` : 'no snapshots were modified';
      await out(`create exclusive lock for repository\n${done}\n`);
    }
    return code;
  },
};

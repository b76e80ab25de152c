import { UsageError } from '../../errors.js';
import { list, openRepo, out, type Command } from '../command.js';
import { find } from '../../commands/find.js';
import { findNodeJSON, formatLocalTime, formatNode, Output } from '../format.js';
import { FILTER_OPTIONS, filterFromFlags } from './snapshots.js';

export const findCommand: Command = {
  usage: 'PATTERN... [-s SNAPSHOT]... [-i] [-l] [--json] [--host H] [--tag T] [--path P]',
  options: {
    ...FILTER_OPTIONS,
    snapshot: { type: 'string', short: 's', multiple: true },
    'ignore-case': { type: 'boolean', short: 'i' },
    long: { type: 'boolean', short: 'l' },
  },
  async run(g, v, args) {
    if (args.length === 0) throw new UsageError('wrong number of arguments');
    const repo = await openRepo(g);
    const { matches } = await find(repo, {
      patterns: args,
      ignoreCase: v['ignore-case'] === true,
      snapshots: list(v, 'snapshot'),
      filter: filterFromFlags(v),
    });
    const o = new Output(out);
    // restic's statefulOutput: a block per snapshot that has matches.
    let current: string | undefined;
    let hits = 0;
    for await (const m of matches) {
      const next = m.snapshot.id !== current;
      if (g.json) {
        if (next) await o.add(current === undefined ? '[{"matches":[' : `],"hits":${hits},"snapshot":"${current}"},{"matches":[`);
        if (next) hits = 0;
        await o.add(`${hits > 0 ? ',' : ''}${findNodeJSON(m.rawPath, m.node)}`);
        hits++;
      } else {
        if (next && !g.quiet) {
          await o.add(`${current === undefined ? '' : '\n'}Found matching entries in snapshot ${m.snapshot.id.slice(0, 8)} from ${formatLocalTime(m.snapshot.time)}\n`);
        }
        await o.add(Buffer.concat([formatNode(m.rawPath, m.node, v.long === true), Buffer.from('\n')]));
      }
      current = m.snapshot.id;
    }
    if (g.json) await o.add(current === undefined ? '[]\n' : `],"hits":${hits},"snapshot":"${current}"}]\n`);
    await o.flush();
    return 0;
  },
};

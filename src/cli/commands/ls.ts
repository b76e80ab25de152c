import { UsageError } from '../../errors.js';
import { openRepo, out, type Command } from '../command.js';
import { ls } from '../../commands/ls.js';
import { formatGoTimeString, formatNode, goList, lsNodeJSON, Output } from '../format.js';
import { FILTER_OPTIONS, filterFromFlags, snapshotJSON } from './snapshots.js';

export const lsCommand: Command = {
  usage: 'SNAPSHOT [DIR...] [-l] [--recursive] [--json] [--host H] [--tag T] [--path P]',
  options: { ...FILTER_OPTIONS, long: { type: 'boolean', short: 'l' }, recursive: { type: 'boolean' } },
  async run(g, v, args) {
    if (args.length < 1) throw new UsageError("no snapshot ID specified, specify snapshot ID or use special ID 'latest'");
    const dirs = args.slice(1);
    const repo = await openRepo(g);
    const { snapshot, entries } = await ls(repo, { snapshot: args[0]!, filter: filterFromFlags(v), dirs, recursive: v.recursive === true });
    const o = new Output(out);
    if (g.json) await o.add(`${snapshotJSON(snapshot).slice(0, -1)},"struct_type":"snapshot"}\n`);
    else if (!g.quiet) await o.add(`snapshot ${snapshot.id.slice(0, 8)} of ${goList(snapshot.paths)} filtered by ${goList(dirs)} at ${formatGoTimeString(snapshot.time)}):\n`);
    for await (const { rawPath, node } of entries) {
      await o.add(g.json ? `${lsNodeJSON(rawPath, node)}\n` : Buffer.concat([formatNode(rawPath, node, v.long === true), Buffer.from('\n')]));
    }
    await o.flush();
    return 0;
  },
};

import { list, openRepo, out, type Command } from '../command.js';
import { listSnapshots } from '../../commands/snapshots.js';
import { snapshotToJSON } from '../../repo/snapshot.js';
import { snapshotTable } from '../format.js';

export const snapshotsCommand: Command = {
  summary: 'List all snapshots',
  usage: '[--host H] [--tag T] [--path P] [--json]',
  options: { host: { type: 'string', short: 'H', multiple: true }, tag: { type: 'string', multiple: true }, path: { type: 'string', multiple: true } },
  async run(g, v, args) {
    const repo = await openRepo(g);
    let snaps = await listSnapshots(repo, { hosts: list(v, 'host'), tags: list(v, 'tag'), paths: list(v, 'path') });
    if (args.length) {
      const wanted = new Set(await Promise.all(args.map(async (a) => (await repo.findSnapshot(a)).id)));
      snaps = snaps.filter((s) => wanted.has(s.id));
    }
    out(g.json ? JSON.stringify(snaps.map(snapshotToJSON)) + '\n' : snapshotTable(snaps));
    return 0;
  },
};

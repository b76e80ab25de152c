import { UsageError } from '../../errors.js';
import { backendFor, openRepo, out, repoOptions, type Command, openResources } from '../command.js';
import { copy, type CopyEvent } from '../../commands/copy.js';
import { Repository } from '../../repo/repository.js';
import type { Snapshot } from '../../repo/snapshot.js';
import { readPassword } from '../password.js';
import { FILTER_OPTIONS, filterFromFlags, reportSelection } from './snapshots.js';

export const copyCommand: Command = {
  usage: '--from-repo SRC [--from-password-file FILE | --from-password-command CMD] [--host H] [--tag T[,T...]] [--path P] [ID...]  (--repo is the destination)',
  options: {
    ...FILTER_OPTIONS,
    'from-repo': { type: 'string' },
    'from-password-file': { type: 'string' },
    'from-password-command': { type: 'string' },
  },
  async run(g, v, args) {
    const fromRepo = (v['from-repo'] as string | undefined) || process.env.RESTIC_FROM_REPOSITORY;
    if (!fromRepo) throw new UsageError('Please specify a source repository location (--from-repo or RESTIC_FROM_REPOSITORY)');
    const srcBackend = await backendFor({ ...g, repo: fromRepo });
    const srcPassword = await readPassword(
      {
        file: (v['from-password-file'] as string | undefined) || process.env.RESTIC_FROM_PASSWORD_FILE || undefined,
        command: (v['from-password-command'] as string | undefined) || process.env.RESTIC_FROM_PASSWORD_COMMAND || undefined,
        password: process.env.RESTIC_FROM_PASSWORD || undefined,
      },
      'enter password for source repository: ',
    );
    const src = await Repository.open(srcBackend, srcPassword, repoOptions(g));
    openResources.push(src);
    const dst = await openRepo(g);
    const say = (s: string) => {
      if (!g.quiet) void out(s);
    };
    const result = await copy(src, dst, {
      filter: filterFromFlags(v),
      ids: args,
      lockSource: !g.noLock,
      onEvent: (e: CopyEvent) => {
        if (e.type === 'start') say(`\nsnapshot ${e.source.id.slice(0, 8)} of [${e.source.paths.join(' ')}] at ${goTimeString(e.source)})\n`);
        else if (e.type === 'skip') say(`skipping source snapshot ${e.source.id.slice(0, 8)}, was already copied to snapshot ${e.existing.id.slice(0, 8)}\n`);
        else if (e.type === 'copy') say('  copy started, this may take a while...\n');
        else say(`snapshot ${e.snapshot.id.slice(0, 8)} saved\n`);
      },
    });
    return reportSelection(result);
  },
};

/** Go's time.Time.String() of a snapshot time, as restic's copy prints it; the zone name is the offset unless UTC. */
function goTimeString(s: Snapshot): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|([+-])(\d\d):(\d\d))$/.exec(s.time);
  if (!m) return s.time;
  const frac = (m[3] ?? '').replace(/\.?0+$/, '');
  const zone = m[4] === 'Z' || (m[6] === '00' && m[7] === '00') ? '+0000 UTC' : `${m[5]}${m[6]}${m[7]} ${m[5]}${m[6]}${m[7]}`;
  return `${m[1]} ${m[2]}${frac} ${zone}`;
}

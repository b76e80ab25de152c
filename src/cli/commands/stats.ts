import { UsageError } from '../../errors.js';
import { openRepo, out, type Command } from '../command.js';
import { stats, STATS_MODES, type StatsMode } from '../../commands/stats.js';
import { formatBytes } from '../format.js';
import { FILTER_OPTIONS, filterFromFlags } from './snapshots.js';

export const statsCommand: Command = {
  usage: `[SNAPSHOT-ID...] [--mode ${STATS_MODES.join('|')}] [--json] [--host H] [--tag T] [--path P]`,
  options: { ...FILTER_OPTIONS, mode: { type: 'string' } },
  async run(g, v, args) {
    const mode = (v.mode as string | undefined) ?? 'restore-size';
    if (!(STATS_MODES as readonly string[]).includes(mode)) {
      throw new UsageError(`unknown counting mode: ${mode} (use one of ${STATS_MODES.join(', ')})`);
    }
    const repo = await openRepo(g);
    if (!g.json) await out('scanning...\n');
    const r = await stats(repo, { mode: mode as StatsMode, snapshots: args, filter: filterFromFlags(v) });
    if (g.json) {
      const blobs = r.totalBlobCount ? `,"total_blob_count":${r.totalBlobCount}` : '';
      await out(`{"total_size":${r.totalSize},"total_file_count":${r.totalFileCount}${blobs},"snapshots_count":${r.snapshotsCount}}\n`);
      return 0;
    }
    let text = `Stats in ${mode} mode:\nSnapshots processed:   ${r.snapshotsCount}\n`;
    if (r.totalBlobCount > 0) text += `   Total Blob Count:   ${r.totalBlobCount}\n`;
    if (r.totalFileCount > 0) text += `   Total File Count:   ${r.totalFileCount}\n`;
    text += `         Total Size:   ${formatBytes(r.totalSize).padEnd(5)}\n`;
    await out(text);
    return 0;
  },
};

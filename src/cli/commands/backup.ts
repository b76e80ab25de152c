import { list, openRepo, out, type Command } from '../command.js';
import { backup } from '../../commands/backup.js';
import { formatBytes } from '../format.js';

export const backupCommand: Command = {
  summary: 'Create a new snapshot of files and directories',
  usage: '[--host H] [--tag T]... PATH...',
  options: { host: { type: 'string', short: 'H' }, tag: { type: 'string', multiple: true } },
  async run(g, v, args) {
    const repo = await openRepo(g);
    const tags = list(v, 'tag').flatMap((t) => t.split(',')).filter(Boolean);
    const started = Date.now();
    const { snapshot, stats } = await backup(repo, { paths: args, hostname: v.host as string | undefined, tags: tags.length ? tags : undefined });
    const seconds = Math.round((Date.now() - started) / 1000);
    if (g.json) {
      out(
        JSON.stringify({
          message_type: 'summary',
          files_new: stats.files,
          files_changed: 0,
          files_unmodified: 0,
          dirs_new: stats.dirs,
          dirs_changed: 0,
          dirs_unmodified: 0,
          data_blobs: stats.dataBlobs,
          tree_blobs: stats.treeBlobs,
          data_added: stats.dataAdded,
          total_files_processed: stats.files,
          total_bytes_processed: stats.bytesProcessed,
          total_duration: (Date.now() - started) / 1000,
          snapshot_id: snapshot.id,
        }) + '\n',
      );
    } else if (!g.quiet) {
      out(`\nFiles:       ${String(stats.files).padStart(5)} new\nDirs:        ${String(stats.dirs).padStart(5)} new\n`);
      out(`Added to the repository: ${formatBytes(stats.dataAdded)}\n\n`);
      out(`processed ${stats.files} files, ${formatBytes(stats.bytesProcessed)} in ${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}\n`);
      out(`snapshot ${snapshot.id.slice(0, 8)} saved\n`);
    }
    return 0;
  },
};

import { UsageError } from '../../errors.js';
import { openRepo, out, type Command } from '../command.js';
import { diff, type DiffStat } from '../../commands/diff.js';
import { formatBytes, Output } from '../format.js';
import { goJsonString } from '../../repo/gostring.js';

const statJSON = (s: DiffStat) =>
  `{"files":${s.files},"dirs":${s.dirs},"others":${s.others},"data_blobs":${s.dataBlobs},"tree_blobs":${s.treeBlobs},"bytes":${s.bytes}}`;

export const diffCommand: Command = {
  usage: 'SNAPSHOT-ID SNAPSHOT-ID [--metadata] [--json]',
  options: { metadata: { type: 'boolean' } },
  async run(g, v, args) {
    if (args.length !== 2) throw new UsageError('specify two snapshot IDs');
    const repo = await openRepo(g);
    const o = new Output(out);
    const result = await diff(repo, args[0]!, args[1]!, {
      metadata: v.metadata === true,
      onSnapshots: async (a, b) => {
        if (!g.json && !g.quiet) await o.add(`comparing snapshot ${a.id.slice(0, 8)} to ${b.id.slice(0, 8)}:\n\n`);
      },
      onChange: async (c) => {
        if (g.quiet) return;
        await o.add(
          g.json
            ? `{"message_type":"change","path":${goJsonString(c.rawPath)},"modifier":${goJsonString(c.modifier)}}\n`
            : Buffer.concat([Buffer.from(c.modifier.padEnd(5)), c.rawPath, Buffer.from('\n')]),
        );
      },
      onWarning: (m) => process.stderr.write(`${m}\n`),
    });
    const s = result.stats;
    if (g.json) {
      await o.add(
        `{"message_type":"statistics","source_snapshot":${goJsonString(args[0]!)},"target_snapshot":${goJsonString(args[1]!)},"changed_files":${s.changedFiles},"added":${statJSON(s.added)},"removed":${statJSON(s.removed)}}\n`,
      );
    } else {
      const n = (x: number) => String(x).padStart(5);
      await o.add(
        `\nFiles:       ${n(s.added.files)} new, ${n(s.removed.files)} removed, ${n(s.changedFiles)} changed\n` +
          `Dirs:        ${n(s.added.dirs)} new, ${n(s.removed.dirs)} removed\n` +
          `Others:      ${n(s.added.others)} new, ${n(s.removed.others)} removed\n` +
          `Data Blobs:  ${n(s.added.dataBlobs)} new, ${n(s.removed.dataBlobs)} removed\n` +
          `Tree Blobs:  ${n(s.added.treeBlobs)} new, ${n(s.removed.treeBlobs)} removed\n` +
          `  Added:   ${formatBytes(s.added.bytes).padEnd(5)}\n` +
          `  Removed: ${formatBytes(s.removed.bytes).padEnd(5)}\n`,
      );
    }
    await o.flush();
    return 0;
  },
};

import { openRepo, out, type Command } from '../command.js';
import { check } from '../../commands/check.js';

export const checkCommand: Command = {
  usage: '[--read-data]',
  options: { 'read-data': { type: 'boolean' } },
  async run(g, v) {
    const repo = await openRepo(g);
    const result = await check(repo, { readData: v['read-data'] === true, onPhase: (p) => !g.quiet && !g.json && out(`${p}\n`) });
    for (const w of result.warnings) process.stderr.write(`${w}\n`);
    for (const e of result.errors) process.stderr.write(`error: ${e}\n`);
    if (g.json) out(JSON.stringify({ message_type: 'summary', num_errors: result.errors.length, errors: result.errors, warnings: result.warnings }) + '\n');
    if (result.errors.length) {
      process.stderr.write('Fatal: repository contains errors\n');
      return 1;
    }
    if (!g.json && !g.quiet) out('no errors were found\n');
    return 0;
  },
};

import { UsageError } from '../../errors.js';
import { backendFor, out, passwordSources, repoOptions, type Command } from '../command.js';
import { init } from '../../commands/init.js';
import { readPassword } from '../password.js';

export const initCommand: Command = {
  usage: '[--repository-version 1|2]',
  options: { 'repository-version': { type: 'string' } },
  async run(g, v) {
    const raw = (v['repository-version'] as string | undefined) ?? '2';
    const version = raw === 'latest' || raw === 'stable' ? 2 : Number(raw);
    if (version !== 1 && version !== 2) throw new UsageError(`unsupported repository version "${raw}": use 1 or 2`);
    const backend = await backendFor(g);
    const password = await readPassword(passwordSources(g), 'enter password for new repository: ', true);
    const repo = await init(backend, { password, version, ...repoOptions(g) });
    if (g.json) out(JSON.stringify({ message_type: 'initialized', id: repo.config.id, repository: backend.location }) + '\n');
    else if (!g.quiet) {
      out(`created restic repository ${repo.config.id.slice(0, 10)} at ${backend.location}\n\n`);
      out('Please note that knowledge of your password is required to access\nthe repository. Losing your password means that your data is\nirrecoverably lost.\n');
    }
    return 0;
  },
};

import { UsageError } from '../../errors.js';
import { createRestServer } from '../../backends/rest/server.js';
import { out, type Command } from '../command.js';

export const serveCommand: Command = {
  usage:
    '--path DIR [--listen HOST:PORT] [--htpasswd-file FILE] [--no-auth] [--append-only] [--private-repos] [--tls [--tls-cert FILE --tls-key FILE]] [--max-size BYTES]',
  options: {
    path: { type: 'string' },
    listen: { type: 'string' },
    'htpasswd-file': { type: 'string' },
    'no-auth': { type: 'boolean' },
    'append-only': { type: 'boolean' },
    'private-repos': { type: 'boolean' },
    tls: { type: 'boolean' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'max-size': { type: 'string' },
  },
  async run(g, v, args) {
    if (args.length > 0) throw new UsageError(`serve takes no arguments, got "${args[0]}"`);
    const path = v.path as string | undefined;
    if (!path) throw new UsageError('serve needs --path DIR (the directory that holds the repositories)');
    const rawMax = v['max-size'] as string | undefined;
    const maxRepoSize = rawMax === undefined ? undefined : Number(rawMax);
    if (maxRepoSize !== undefined && (!Number.isSafeInteger(maxRepoSize) || maxRepoSize <= 0)) {
      throw new UsageError(`invalid --max-size "${rawMax}": use a positive number of bytes`);
    }
    const server = createRestServer({
      path,
      listen: v.listen as string | undefined,
      htpasswdFile: v['htpasswd-file'] as string | undefined,
      noAuth: v['no-auth'] === true,
      appendOnly: v['append-only'] === true,
      privateRepos: v['private-repos'] === true,
      tls: v.tls === true,
      tlsCert: v['tls-cert'] as string | undefined,
      tlsKey: v['tls-key'] as string | undefined,
      maxRepoSize,
    });
    const { url } = await server.listen();
    if (g.json) await out(JSON.stringify({ message_type: 'serving', url, path }) + '\n');
    else await out(`serving repositories in ${path} at ${url}\n`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const stop = (s: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve(s);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    if (!g.quiet && !g.json) await out(`received ${signal}, server closed\n`);
    return 0;
  },
};

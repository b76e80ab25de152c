#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ResticError, UsageError } from '../errors.js';
import { openResources, passwordSources, startOpening, type GlobalOptions } from './command.js';
import { givenWithoutPrompt } from './password.js';
import { COMMANDS, type CommandEntry } from './commands/index.js';
import { deferExtraCaCerts } from '../backends/trust.js';

// Started by bin/restic-ts.js, Node did not load NODE_EXTRA_CA_CERTS: put it back where child
// processes and our TLS clients look for it.
const deferredCaCerts = process.env.RESTIC_TS_DEFERRED_CA_CERTS;
delete process.env.RESTIC_TS_DEFERRED_CA_CERTS;
if (deferredCaCerts && !process.env.NODE_EXTRA_CA_CERTS) {
  process.env.NODE_EXTRA_CA_CERTS = deferredCaCerts;
  deferExtraCaCerts();
}

// The AWS SDK warns on every run under Node 20 (it prefers 22); restic-ts supports Node 20 on purpose.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

type OptionSpec = NonNullable<ParseArgsConfig['options']>;

const GLOBAL_OPTIONS: OptionSpec = {
  repo: { type: 'string', short: 'r' },
  'password-file': { type: 'string', short: 'p' },
  'password-command': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  'no-lock': { type: 'boolean' },
  compression: { type: 'string' },
  'pack-size': { type: 'string' },
  cacert: { type: 'string', multiple: true },
  'insecure-tls': { type: 'boolean' },
  option: { type: 'string', short: 'o', multiple: true },
  help: { type: 'boolean', short: 'h' },
};

const USAGE = `Usage: restic-ts [global flags] COMMAND [flags]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Global flags:
  -r, --repo REPO           repository (or RESTIC_REPOSITORY)
  -p, --password-file FILE  read the password from FILE (or RESTIC_PASSWORD_FILE / RESTIC_PASSWORD)
      --password-command CMD  the password is CMD's output (or RESTIC_PASSWORD_COMMAND)
      --json                machine-readable output
  -q, --quiet               print less
      --compression MODE    auto|off|max for v2 repositories (or RESTIC_COMPRESSION)
      --pack-size MiB       target pack size (or RESTIC_PACK_SIZE)
      --cacert FILE         trust the CA certificate(s) in FILE for TLS (repeatable)
      --insecure-tls        skip TLS certificate verification
  -o, --option KEY=VALUE    backend option, e.g. rest.connections=5, s3.region=eu-west-1
`;

/** Splits argv into the command name and the remaining arguments; global flags may come first. */
function findCommand(argv: string[]): { name?: string; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) return { name: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
    const long = arg.startsWith('--') ? arg.slice(2) : undefined;
    const spec = long !== undefined ? GLOBAL_OPTIONS[long] : Object.values(GLOBAL_OPTIONS).find((o) => `-${o.short}` === arg);
    if (spec?.type === 'string' && !arg.includes('=')) i++;
  }
  return { rest: argv };
}

/**
 * Global and command flags together; a command's short flag wins over a global one with the same letter
 * (chectl's `che server:backup -r URL -p PASS` versus restic's global `-r REPO -p FILE`).
 */
function mergeOptions(commandOptions: OptionSpec): OptionSpec {
  const taken = new Set(Object.values(commandOptions).map((o) => o.short));
  const globals = Object.fromEntries(
    Object.entries(GLOBAL_OPTIONS).map(([name, o]) => {
      if (!o.short || !taken.has(o.short)) return [name, o];
      const { short: _dropped, ...rest } = o;
      return [name, rest];
    }),
  );
  return { ...globals, ...commandOptions };
}

function parseExtended(options: string[]): Record<string, string> {
  const extended: Record<string, string> = {};
  for (const o of options) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid option "${o}": use -o key=value, e.g. -o rest.connections=5`);
    extended[o.slice(0, eq)] = o.slice(eq + 1);
  }
  return extended;
}

type ParsedValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

function globalOptions(v: ParsedValues): GlobalOptions {
  return {
    repo: (v.repo as string | undefined) ?? process.env.RESTIC_REPOSITORY ?? '',
    passwordFile: (v['password-file'] as string | undefined) || process.env.RESTIC_PASSWORD_FILE || undefined,
    passwordCommand: (v['password-command'] as string | undefined) || process.env.RESTIC_PASSWORD_COMMAND || undefined,
    json: v.json === true,
    quiet: v.quiet === true,
    noLock: v['no-lock'] === true,
    compression: (v.compression as string | undefined) ?? process.env.RESTIC_COMPRESSION,
    packSize: (v['pack-size'] as string | undefined) ?? process.env.RESTIC_PACK_SIZE,
    cacert: (v.cacert as string[] | undefined) ?? (process.env.RESTIC_CACERT ? [process.env.RESTIC_CACERT] : []),
    insecureTls: v['insecure-tls'] === true,
    extended: parseExtended((v.option as string[] | undefined) ?? []),
  };
}

/**
 * Starts opening the repository before the command's code is loaded, from the global flags alone (read
 * leniently: the command's own flags are not known yet). The command's openRepo() reuses this opening
 * only if its strictly parsed options are the same; nothing is prompted for here.
 */
function openRepoEarly(entry: CommandEntry, argv: string[]): ReturnType<typeof startOpening> | undefined {
  if (!entry.opensRepo) return undefined;
  let g: GlobalOptions;
  try {
    const { values } = parseArgs({ args: argv, options: GLOBAL_OPTIONS, allowPositionals: true, strict: false });
    if (values.help) return undefined;
    g = globalOptions(values as ParsedValues);
  } catch {
    return undefined;
  }
  if (!g.repo || !givenWithoutPrompt(passwordSources(g))) return undefined;
  const early = startOpening(g);
  early.repo.catch(() => undefined);
  return early;
}

async function main(argv: string[]): Promise<number> {
  const { name, rest } = findCommand(argv);
  if (!name || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 1;
  }
  const entry = COMMANDS[name];
  if (!entry) throw new UsageError(`unknown command "${name}" (see restic-ts help)`);
  const early = openRepoEarly(entry, rest);
  try {
    // Loading the command's code competes with the key's code for the main thread: let scrypt start first.
    await early?.unlockStarted;
    const command = await entry.load();
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: mergeOptions(command.options), allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError((err as Error).message.split('\n')[0]!);
    }
    const v = parsed.values as ParsedValues;
    if (v.help) {
      process.stdout.write(`Usage: restic-ts ${name} ${command.usage}\n\n${entry.summary}\n`);
      return 0;
    }
    return await command.run(globalOptions(v), v, parsed.positionals);
  } finally {
    // An early opening the command did not use still holds a backend: let it finish, then close all,
    // repositories before the backends they use.
    await early?.repo.catch(() => undefined);
    for (const r of openResources.reverse()) await r.close().catch(() => undefined);
  }
}

/**
 * Exits once stdout and stderr have taken everything written, without waiting for work the command no
 * longer needs: at the end of a short command V8 is often still optimising hot WebAssembly (zstd's
 * decoder: ~0.1 s of CPU) on a background thread, and a process left to end by itself waits for that.
 */
async function exitWhenFlushed(code: number): Promise<void> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
  process.exit(code);
}

// A reader that stops early (`restic-ts dump ... | head`) closes the pipe: end quietly with the status
// restic gets from SIGPIPE (128 + 13) instead of a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') process.stderr.write(`Fatal: writing to stdout: ${err.message}\n`);
  process.exit(err.code === 'EPIPE' ? 141 : 1);
});

main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (err: unknown) => {
    // One line, no stack: errors we raise carry a user-facing message; others (I/O) are summarised.
    const message = err instanceof ResticError ? err.message : err instanceof Error ? err.message : String(err);
    process.stderr.write(`Fatal: ${message.split('\n')[0]}\n`);
    if (process.env.RESTIC_TS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return exitWhenFlushed(1);
  },
);

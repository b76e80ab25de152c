import type { ParseArgsConfig } from 'node:util';
import { openBackend } from '../backends/location.js';
import type { Backend } from '../backends/backend.js';
import { UsageError } from '../errors.js';
import { Repository, type RepositoryOptions } from '../repo/repository.js';
import type { CompressionMode } from '../repo/compression.js';
import { readPassword } from './password.js';

/** Flags every command accepts (restic's global flags). */
export interface GlobalOptions {
  repo: string;
  passwordFile?: string;
  json: boolean;
  quiet: boolean;
  noLock: boolean;
  compression?: string;
  packSize?: string;
  /** restic's --cacert (repeatable), --insecure-tls and -o key=value. */
  cacert: string[];
  insecureTls: boolean;
  extended: Record<string, string>;
}

export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** One CLI command: a thin shell that parses flags, calls the library function and prints. */
export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(g: GlobalOptions, v: Values, args: string[]): Promise<number>;
}

export const out = (s: string | Uint8Array): Promise<void> =>
  new Promise((resolve, reject) => process.stdout.write(s, (err) => (err ? reject(err) : resolve())));

export function repoOptions(g: GlobalOptions): RepositoryOptions {
  const options: RepositoryOptions = {};
  if (g.compression !== undefined) {
    if (!['auto', 'off', 'max'].includes(g.compression)) throw new UsageError(`invalid compression mode "${g.compression}": use auto, off or max`);
    options.compression = g.compression as CompressionMode;
  }
  if (g.packSize !== undefined) {
    const mib = Number(g.packSize);
    if (!Number.isInteger(mib) || mib < 4 || mib > 128) throw new UsageError(`invalid pack size "${g.packSize}": use 4 to 128 (MiB)`);
    options.packSize = mib * 1024 * 1024;
  }
  return options;
}

/**
 * Repositories and backends opened by the running command, most recent last; main() closes them when
 * the command ends (encoder threads, connections, pools).
 */
export const openResources: { close(): Promise<void> }[] = [];

export async function backendFor(g: GlobalOptions): Promise<Backend> {
  const backend = await openBackend(g.repo, {
    env: process.env,
    cacert: g.cacert,
    insecureTls: g.insecureTls,
    extended: g.extended,
    retry: {
      onRetry: (op, file, err, _attempt, delayMs) =>
        process.stderr.write(`${op} ${file} failed: ${err.message}; retrying in ${(delayMs / 1000).toFixed(1)}s\n`),
    },
  });
  openResources.push(backend);
  return backend;
}

export async function openRepo(g: GlobalOptions): Promise<Repository> {
  const backend = await backendFor(g);
  const password = await readPassword({ passwordFile: g.passwordFile, env: process.env }, 'enter password for repository: ');
  const repo = await Repository.open(backend, password, repoOptions(g));
  openResources.push(repo);
  return repo;
}

export function oneArg(args: string[], what: string): string {
  if (args.length !== 1) throw new UsageError(`expected exactly one ${what}, got ${args.length}`);
  return args[0]!;
}

/** A repeatable string flag as a list. */
export function list(v: Values, key: string): string[] {
  const x = v[key];
  return Array.isArray(x) ? (x as string[]) : typeof x === 'string' ? [x] : [];
}

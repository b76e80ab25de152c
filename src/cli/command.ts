import type { ParseArgsConfig } from 'node:util';
import type { Backend } from '../backends/backend.js';
import { prestartRomixWorker } from '../crypto/romix-thread.js';
import { UsageError } from '../errors.js';
import type { UnlockedKey } from '../repo/keyfile.js';
import type { Repository, RepositoryOptions } from '../repo/repository.js';
import type { CompressionMode } from '../repo/compression.js';
import { readPassword, type PasswordSources } from './password.js';

/** Flags every command accepts (restic's global flags). */
export interface GlobalOptions {
  repo: string;
  /** --password-file / RESTIC_PASSWORD_FILE and --password-command / RESTIC_PASSWORD_COMMAND. */
  passwordFile?: string;
  passwordCommand?: string;
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
  // Imported here, not at the top: `restic-ts help` and bad flags should not pay for loading backends.
  const { openBackend } = await import('../backends/location.js');
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

interface Opening {
  signature: string;
  /** Settles once scrypt runs on libuv's thread pool (or opening failed before that). */
  unlockStarted: Promise<unknown>;
  repo: Promise<Repository>;
}

/** The repository being opened for the running command, and the global options it was opened with. */
let opening: Opening | undefined;

/**
 * Opens the repository named by the global options. Calls with the same options share one opening, so
 * main() can start it (scrypt takes a good part of a second) while the command's code still loads.
 */
export function openRepo(g: GlobalOptions): Promise<Repository> {
  return startOpening(g).repo;
}

/** Starts openRepo(g) for later; returns the opening so main() can wait until scrypt runs, or for all of it. */
export function startOpening(g: GlobalOptions): Opening {
  const signature = JSON.stringify([g.repo, g.passwordFile, g.passwordCommand, g.compression, g.packSize, g.cacert, g.insecureTls, g.extended]);
  if (opening?.signature !== signature) {
    const unlocking = beginUnlock(g);
    const repo = unlocking.then(async ({ backend, key, options }) => {
      // The repository code loads while scrypt runs.
      const { Repository } = await import('../repo/repository.js');
      const repo = await Repository.open(backend, key, options);
      openResources.push(repo);
      return repo;
    });
    opening = { signature, unlockStarted: unlocking.catch(() => undefined), repo };
  }
  return opening;
}

async function beginUnlock(g: GlobalOptions): Promise<{ backend: Backend; key: Promise<UnlockedKey>; options: RepositoryOptions }> {
  const options = repoOptions(g);
  // scrypt shares its lanes with a worker thread, which boots while the key file is found and read.
  prestartRomixWorker();
  // The key file code loads while the backend's does: both are on the way to starting scrypt.
  const keyfileCode = import('../repo/keyfile.js');
  keyfileCode.catch(() => undefined);
  const backend = await backendFor(g);
  const password = await readPassword(passwordSources(g), 'enter password for repository: ');
  const { unlockKey } = await keyfileCode;
  const key = unlockKey(backend, password);
  // Repository.open reports it (after a missing config, if any): never an unhandled rejection.
  key.catch(() => undefined);
  return { backend, key, options };
}

/** Where the repository's password comes from. */
export function passwordSources(g: GlobalOptions): PasswordSources {
  return { file: g.passwordFile, command: g.passwordCommand, password: process.env.RESTIC_PASSWORD || undefined };
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

import type { ParseArgsConfig } from 'node:util';
import { openBackend } from '../backends/location.js';
import { UsageError } from '../errors.js';
import { Repository, type RepositoryOptions } from '../repo/repository.js';
import type { CompressionMode } from '../repo/compression.js';
import { snapshotToJSON } from '../repo/snapshot.js';
import { init } from '../commands/init.js';
import { backup } from '../commands/backup.js';
import { restore } from '../commands/restore.js';
import { listSnapshots } from '../commands/snapshots.js';
import { ls } from '../commands/ls.js';
import { cat, CAT_KINDS, type CatKind } from '../commands/cat.js';
import { check } from '../commands/check.js';
import { unlock } from '../commands/unlock.js';
import { readPassword } from './password.js';
import { formatBytes, formatLsLong, lsNodeJSON, snapshotTable } from './format.js';

export interface GlobalOptions {
  repo: string;
  passwordFile?: string;
  json: boolean;
  quiet: boolean;
  noLock: boolean;
  compression?: string;
  packSize?: string;
}

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(g: GlobalOptions, v: Values, args: string[]): Promise<number>;
}

const out = (s: string) => process.stdout.write(s);

function repoOptions(g: GlobalOptions): RepositoryOptions {
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

async function openRepo(g: GlobalOptions): Promise<Repository> {
  const backend = openBackend(g.repo);
  const password = await readPassword({ passwordFile: g.passwordFile, env: process.env }, `enter password for repository: `);
  return Repository.open(backend, password, repoOptions(g));
}

function oneArg(args: string[], what: string): string {
  if (args.length !== 1) throw new UsageError(`expected exactly one ${what}, got ${args.length}`);
  return args[0]!;
}

function list(v: Values, key: string): string[] {
  const x = v[key];
  return Array.isArray(x) ? (x as string[]) : typeof x === 'string' ? [x] : [];
}

export const COMMANDS: Record<string, Command> = {
  init: {
    summary: 'Initialize a new repository',
    usage: '[--repository-version 1|2]',
    options: { 'repository-version': { type: 'string' } },
    async run(g, v) {
      const raw = (v['repository-version'] as string | undefined) ?? '2';
      const version = raw === 'latest' || raw === 'stable' ? 2 : Number(raw);
      if (version !== 1 && version !== 2) throw new UsageError(`unsupported repository version "${raw}": use 1 or 2`);
      const backend = openBackend(g.repo);
      const password = await readPassword({ passwordFile: g.passwordFile, env: process.env }, 'enter password for new repository: ', true);
      const repo = await init(backend, { password, version, ...repoOptions(g) });
      if (g.json) out(JSON.stringify({ message_type: 'initialized', id: repo.config.id, repository: backend.location }) + '\n');
      else if (!g.quiet) {
        out(`created restic repository ${repo.config.id.slice(0, 10)} at ${backend.location}\n\n`);
        out('Please note that knowledge of your password is required to access\nthe repository. Losing your password means that your data is\nirrecoverably lost.\n');
      }
      return 0;
    },
  },
  backup: {
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
  },
  restore: {
    summary: 'Extract the data from a snapshot',
    usage: 'SNAPSHOT[:SUBFOLDER] --target DIR',
    options: { target: { type: 'string', short: 't' } },
    async run(g, v, args) {
      const ref = oneArg(args, 'snapshot ID');
      const target = v.target as string | undefined;
      if (!target) throw new UsageError('please specify a directory to restore to (--target)');
      const repo = await openRepo(g);
      const { snapshot, stats } = await restore(repo, { snapshot: ref, target });
      if (g.json) out(JSON.stringify({ message_type: 'summary', snapshot_id: snapshot.id, files_restored: stats.files, total_bytes: stats.bytes }) + '\n');
      else if (!g.quiet) out(`restored snapshot ${snapshot.id.slice(0, 8)} of [${snapshot.paths.join(' ')}] to ${target}: ${stats.files} files, ${formatBytes(stats.bytes)}\n`);
      return 0;
    },
  },
  snapshots: {
    summary: 'List all snapshots',
    usage: '[--host H] [--tag T] [--path P] [--json]',
    options: { host: { type: 'string', short: 'H', multiple: true }, tag: { type: 'string', multiple: true }, path: { type: 'string', multiple: true } },
    async run(g, v, args) {
      const repo = await openRepo(g);
      let snaps = await listSnapshots(repo, { hosts: list(v, 'host'), tags: list(v, 'tag'), paths: list(v, 'path') });
      if (args.length) {
        const wanted = new Set(await Promise.all(args.map(async (a) => (await repo.findSnapshot(a)).id)));
        snaps = snaps.filter((s) => wanted.has(s.id));
      }
      out(g.json ? JSON.stringify(snaps.map(snapshotToJSON)) + '\n' : snapshotTable(snaps));
      return 0;
    },
  },
  ls: {
    summary: 'List files in a snapshot',
    usage: 'SNAPSHOT [DIR] [-l] [--recursive] [--json]',
    options: { long: { type: 'boolean', short: 'l' }, recursive: { type: 'boolean' } },
    async run(g, v, args) {
      if (args.length < 1 || args.length > 2) throw new UsageError('usage: ls SNAPSHOT [DIR]');
      const repo = await openRepo(g);
      const { snapshot, entries } = await ls(repo, { snapshot: args[0]!, dir: args[1], recursive: v.recursive === true });
      if (g.json) out(JSON.stringify({ ...snapshotToJSON(snapshot), struct_type: 'snapshot' }) + '\n');
      else out(`snapshot ${snapshot.id.slice(0, 8)} of [${snapshot.paths.join(' ')}] at ${snapshot.time}:\n`);
      for await (const { path, node } of entries) {
        if (g.json) out(JSON.stringify(lsNodeJSON(path, node)) + '\n');
        else out((v.long ? formatLsLong(path, node) : path) + '\n');
      }
      return 0;
    },
  },
  cat: {
    summary: 'Print internal objects to stdout',
    usage: `${CAT_KINDS.join('|')} [ID]`,
    options: {},
    async run(g, _v, args) {
      const kind = args[0];
      if (!kind || !(CAT_KINDS as readonly string[]).includes(kind)) throw new UsageError(`cat: type must be one of ${CAT_KINDS.join(', ')}`);
      const repo = await openRepo(g);
      const data = await cat(repo, kind as CatKind, args[1]);
      await new Promise<void>((resolve, reject) => process.stdout.write(data, (err) => (err ? reject(err) : resolve())));
      return 0;
    },
  },
  check: {
    summary: 'Check the repository for errors',
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
  },
  unlock: {
    summary: 'Remove stale locks (all locks with --remove-all)',
    usage: '[--remove-all]',
    options: { 'remove-all': { type: 'boolean' } },
    async run(g, v) {
      const repo = await openRepo(g);
      const removed = await unlock(repo, { all: v['remove-all'] === true });
      if (!g.quiet) out(`successfully removed ${removed.length} locks\n`);
      return 0;
    },
  },
};

export function runCommand(name: string, g: GlobalOptions, v: Values, args: string[]): Promise<number> {
  return COMMANDS[name]!.run(g, v, args);
}

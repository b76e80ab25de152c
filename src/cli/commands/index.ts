import type { Command } from '../command.js';

/** What `help` shows and main() needs before a command's code is loaded. */
export interface CommandEntry {
  summary: string;
  /** The command opens the repository of the global flags first thing, so main() may start that early. */
  opensRepo: boolean;
  load(): Promise<Command>;
}

/** Every CLI command by name, in the order `help` lists them; each one's code is imported only when it runs. */
export const COMMANDS: Record<string, CommandEntry> = {
  init: {
    summary: 'Initialize a new repository',
    opensRepo: false,
    load: async () => (await import('./init.js')).initCommand,
  },
  backup: {
    summary: 'Create a new snapshot of files and directories',
    opensRepo: true,
    load: async () => (await import('./backup.js')).backupCommand,
  },
  restore: {
    summary: 'Extract the data from a snapshot',
    opensRepo: true,
    load: async () => (await import('./restore.js')).restoreCommand,
  },
  snapshots: {
    summary: 'List all snapshots',
    opensRepo: true,
    load: async () => (await import('./snapshots.js')).snapshotsCommand,
  },
  tag: {
    summary: 'Modify tags on snapshots',
    opensRepo: true,
    load: async () => (await import('./tag.js')).tagCommand,
  },
  copy: {
    summary: 'Copy snapshots from one repository to another',
    opensRepo: true,
    load: async () => (await import('./copy.js')).copyCommand,
  },
  ls: {
    summary: 'List files in a snapshot',
    opensRepo: true,
    load: async () => (await import('./ls.js')).lsCommand,
  },
  find: {
    summary: 'Find a file, a directory or restic IDs',
    opensRepo: true,
    load: async () => (await import('./find.js')).findCommand,
  },
  dump: {
    summary: 'Print a backed-up file to stdout, or a directory as a tar archive',
    opensRepo: true,
    load: async () => (await import('./dump.js')).dumpCommand,
  },
  diff: {
    summary: 'Show differences between two snapshots',
    opensRepo: true,
    load: async () => (await import('./diff.js')).diffCommand,
  },
  stats: {
    summary: 'Scan the repository and show basic statistics',
    opensRepo: true,
    load: async () => (await import('./stats.js')).statsCommand,
  },
  cat: {
    summary: 'Print internal objects to stdout',
    opensRepo: true,
    load: async () => (await import('./cat.js')).catCommand,
  },
  check: {
    summary: 'Check the repository for errors',
    opensRepo: true,
    load: async () => (await import('./check.js')).checkCommand,
  },
  unlock: {
    summary: 'Remove stale locks (all locks with --remove-all)',
    opensRepo: true,
    load: async () => (await import('./unlock.js')).unlockCommand,
  },
  serve: {
    summary: 'Serve repositories over restic\'s REST protocol (like rest-server)',
    opensRepo: false,
    load: async () => (await import('./serve.js')).serveCommand,
  },
  che: {
    summary: 'Eclipse Che backup and restore (chectl server:backup / server:restore, and the controller)',
    opensRepo: false,
    load: async () => (await import('./che.js')).cheCommand,
  },
};

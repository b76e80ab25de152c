import type { Command } from '../command.js';
import { backupCommand } from './backup.js';
import { catCommand } from './cat.js';
import { checkCommand } from './check.js';
import { cheCommand } from './che.js';
import { copyCommand } from './copy.js';
import { diffCommand } from './diff.js';
import { dumpCommand } from './dump.js';
import { findCommand } from './find.js';
import { initCommand } from './init.js';
import { lsCommand } from './ls.js';
import { restoreCommand } from './restore.js';
import { serveCommand } from './serve.js';
import { snapshotsCommand } from './snapshots.js';
import { statsCommand } from './stats.js';
import { tagCommand } from './tag.js';
import { unlockCommand } from './unlock.js';

/** Every CLI command by name, in the order `help` lists them. */
export const COMMANDS: Record<string, Command> = {
  init: initCommand,
  backup: backupCommand,
  restore: restoreCommand,
  snapshots: snapshotsCommand,
  tag: tagCommand,
  copy: copyCommand,
  ls: lsCommand,
  find: findCommand,
  dump: dumpCommand,
  diff: diffCommand,
  stats: statsCommand,
  cat: catCommand,
  check: checkCommand,
  unlock: unlockCommand,
  serve: serveCommand,
  che: cheCommand,
};

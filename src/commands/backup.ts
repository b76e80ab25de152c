import { Archiver, type BackupOptions, type BackupResult } from '../archiver/archiver.js';
import type { Repository } from '../repo/repository.js';
import { withLock } from '../repo/locking.js';

export type { BackupOptions, BackupResult };

/** `restic backup`: stores the given paths as a new snapshot. */
export function backup(repo: Repository, options: BackupOptions): Promise<BackupResult> {
  return withLock(repo, false, () => new Archiver(repo, options).backup(options));
}

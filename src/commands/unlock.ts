import type { Id } from '../repo/id.js';
import { removeLocks } from '../repo/locking.js';
import type { Repository } from '../repo/repository.js';

/** `restic unlock`: removes stale locks, or every lock with `all`. */
export function unlock(repo: Repository, options: { all?: boolean } = {}): Promise<Id[]> {
  return removeLocks(repo, options.all);
}

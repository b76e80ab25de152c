import { hostname, userInfo } from 'node:os';
import { ResticError } from '../errors.js';
import { nowGoTime } from './clock.js';
import type { Id } from './id.js';
import { decodeLock, encodeLock, type Lock } from './lock.js';
import type { Repository } from './repository.js';

/** restic treats locks older than this as stale, and refreshes its own well before. */
const STALE_AFTER_MS = 30 * 60 * 1000;
const REFRESH_EVERY_MS = 5 * 60 * 1000;

export class LockedError extends ResticError {
  override name = 'LockedError';
}

/** Runs `fn` while holding a repository lock (shared or exclusive); the lock is removed afterwards. */
export async function withLock<T>(repo: Repository, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
  await checkConflicts(repo, exclusive);
  const info = userInfo();
  const newLock = (): Lock => ({
    time: nowGoTime(),
    exclusive,
    hostname: hostname(),
    username: info.username,
    pid: process.pid,
    uid: info.uid,
    gid: info.gid,
  });
  let id = await repo.saveUnpacked('locks', encodeLock(newLock()));
  // Refresh by writing a new lock before removing the old one, so the repository is never unlocked.
  const timer = setInterval(() => {
    void repo.saveUnpacked('locks', encodeLock(newLock())).then(async (fresh) => {
      const old = id;
      id = fresh;
      await repo.backend.remove('locks', old);
    }, () => undefined);
  }, REFRESH_EVERY_MS);
  timer.unref();
  try {
    return await fn();
  } finally {
    clearInterval(timer);
    await repo.backend.remove('locks', id);
  }
}

async function checkConflicts(repo: Repository, exclusive: boolean): Promise<void> {
  for await (const id of repo.listIds('locks')) {
    let lock: Lock;
    try {
      lock = decodeLock(await repo.loadUnpacked('locks', id), id);
    } catch (err) {
      // A lock deleted while we list it is gone, not a conflict.
      if ((err as Error).name === 'NotFoundError') continue;
      throw err;
    }
    if (!exclusive && !lock.exclusive) continue;
    if (isStale(lock)) continue;
    throw new LockedError(describeConflict(lock, id));
  }
}

export function isStale(lock: Lock): boolean {
  const age = Date.now() - Date.parse(lock.time);
  if (age > STALE_AFTER_MS) return true;
  if (lock.hostname !== hostname()) return false;
  try {
    process.kill(lock.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function describeConflict(lock: Lock, id: Id): string {
  const kind = lock.exclusive ? 'exclusively locked' : 'locked';
  return (
    `repository is already ${kind} by PID ${lock.pid} on ${lock.hostname} by ${lock.username} ` +
    `since ${lock.time} (lock ${id.slice(0, 8)}); if that process is no longer running, remove the lock with "restic-ts unlock"`
  );
}

/** Removes stale locks (all locks with `all`); returns the ids removed. `restic unlock`. */
export async function removeLocks(repo: Repository, all = false): Promise<Id[]> {
  const removed: Id[] = [];
  for await (const id of repo.listIds('locks')) {
    const lock = decodeLock(await repo.loadUnpacked('locks', id), id);
    if (all || isStale(lock)) {
      await repo.backend.remove('locks', id);
      removed.push(id);
    }
  }
  return removed;
}

import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local/local.js';
import { MemoryBackend } from './memory/memory.js';

/** Opens the backend a restic location string names (`local:/path`, a plain path, or `memory:`). */
export function openBackend(location: string): Backend {
  if (!location) throw new UsageError('no repository given: use -r/--repo or RESTIC_REPOSITORY');
  if (location === 'memory:') return new MemoryBackend();
  if (location.startsWith('local:')) return new LocalBackend(resolve(location.slice('local:'.length)));
  const scheme = /^([a-z0-9]+):/.exec(location)?.[1];
  if (scheme && ['rest', 's3', 'sftp', 'b2', 'azure', 'gs', 'swift', 'rclone'].includes(scheme)) {
    throw new UsageError(`backend "${scheme}" is not supported by this version of restic-ts`);
  }
  return new LocalBackend(resolve(location));
}

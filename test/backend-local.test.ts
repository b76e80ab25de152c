import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../src/backends/local/local.js';
import { MemoryBackend } from '../src/backends/memory/memory.js';
import { backendConformance } from './backends/conformance.js';

backendConformance('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'restic-ts-local-'));
  const backend = new LocalBackend(join(dir, 'repo'));
  await backend.create();
  return { backend, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

backendConformance('memory', async () => {
  const backend = new MemoryBackend();
  await backend.create();
  return { backend, cleanup: async () => undefined };
});

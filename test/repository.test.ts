import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../src/backends/local/local.js';
import { MemoryBackend } from '../src/backends/memory/memory.js';
import type { Backend } from '../src/backends/backend.js';
import { Repository } from '../src/repo/repository.js';
import { NotFoundError, UsageError, WrongPasswordError, IntegrityError } from '../src/errors.js';
import { decodePackHeader, encodePackHeader, type PackedBlob } from '../src/repo/pack.js';
import { sha256Hex } from '../src/crypto/index.js';

const FAST = { packSize: 64 * 1024 };

async function withBackends(fn: (backend: Backend) => Promise<void>): Promise<void> {
  await fn(new MemoryBackend());
  const dir = await mkdtemp(join(tmpdir(), 'restic-ts-repo-'));
  try {
    await fn(new LocalBackend(join(dir, 'repo')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('pack header', () => {
  it('round-trips plain and compressed entries', () => {
    const blobs: PackedBlob[] = [
      { type: 'data', id: 'a'.repeat(64), offset: 0, length: 100 },
      { type: 'tree', id: 'b'.repeat(64), offset: 100, length: 50, uncompressedLength: 400 },
      { type: 'data', id: 'c'.repeat(64), offset: 150, length: 7, uncompressedLength: 9 },
    ];
    const header = encodePackHeader(blobs);
    expect(header.length).toBe(37 + 41 + 41);
    expect(header[0]).toBe(0);
    expect(header[37]).toBe(3);
    expect(decodePackHeader(header, 'p')).toEqual(blobs);
  });

  it('rejects unknown blob types', () => {
    const header = encodePackHeader([{ type: 'data', id: 'a'.repeat(64), offset: 0, length: 1 }]);
    header[0] = 9;
    expect(() => decodePackHeader(header, 'p')).toThrow(IntegrityError);
  });
});

describe('Repository', () => {
  for (const version of [1, 2] as const) {
    it(`v${version}: stores blobs in packs, indexes them and reads them back after reopening`, async () => {
      await withBackends(async (backend) => {
        const repo = await Repository.init(backend, 'secret', { version, ...FAST });
        const blobs = Array.from({ length: 40 }, (_, i) => Buffer.alloc(5000 + i, i % 7));
        const ids = [];
        for (const b of blobs) ids.push((await repo.saveBlob('data', b)).id);
        const again = await repo.saveBlob('data', blobs[3]!);
        expect(again.known).toBe(true);
        await repo.flush();
        const packs = [];
        for await (const f of backend.list('data')) packs.push(f);
        expect(packs.length).toBeGreaterThan(1);

        const reopened = await Repository.open(backend, 'secret');
        expect(reopened.config).toEqual(repo.config);
        await reopened.loadIndex();
        for (let i = 0; i < blobs.length; i++) {
          expect(ids[i]).toBe(sha256Hex(blobs[i]!));
          expect(Buffer.from(await reopened.loadBlob('data', ids[i]!)).equals(blobs[i]!)).toBe(true);
        }
        for (const p of packs) {
          const header = await reopened.listPack(p.name);
          expect(header.every((b) => reopened.index.lookup(b.type, b.id)?.packId === p.name)).toBe(true);
          if (version === 1) expect(header.every((b) => b.uncompressedLength === undefined)).toBe(true);
          else expect(header.some((b) => b.uncompressedLength !== undefined)).toBe(true);
        }
      });
    });
  }

  it('opens with a second key and refuses a wrong password', async () => {
    const backend = new MemoryBackend();
    const repo = await Repository.init(backend, 'one');
    await repo.addKey('two');
    expect((await Repository.open(backend, 'two')).config.id).toBe(repo.config.id);
    await expect(Repository.open(backend, 'three')).rejects.toThrow(WrongPasswordError);
  });

  it('saves snapshots and resolves latest, ids and prefixes', async () => {
    const backend = new MemoryBackend();
    const repo = await Repository.init(backend, 'pw');
    const tree = 'f'.repeat(64);
    const a = await repo.saveSnapshot({ time: '2026-01-01T00:00:00Z', tree, paths: ['/a'] });
    const b = await repo.saveSnapshot({ time: '2026-01-02T00:00:00.5+01:00', tree, paths: ['/b'], tags: ['x'] });
    expect((await repo.findSnapshot('latest')).id).toBe(b.id);
    expect((await repo.findSnapshot(a.id.slice(0, 8))).paths).toEqual(['/a']);
    expect((await repo.findSnapshot(b.id)).tags).toEqual(['x']);
    await expect(repo.findSnapshot('0123456789')).rejects.toThrow(a.id.startsWith('0123456789') ? UsageError : NotFoundError);
    await expect(repo.findSnapshot('xyz')).rejects.toThrow(UsageError);
    await expect(repo.findSnapshot('')).rejects.toThrow(UsageError);
  });

  it('detects a damaged snapshot file', async () => {
    const backend = new MemoryBackend();
    const repo = await Repository.init(backend, 'pw');
    const s = await repo.saveSnapshot({ time: '2026-01-01T00:00:00Z', tree: 'f'.repeat(64), paths: ['/a'] });
    const bytes = await backend.load('snapshots', s.id);
    bytes[40]! ^= 1;
    await backend.remove('snapshots', s.id);
    await backend.save('snapshots', s.id, bytes);
    await expect(repo.loadSnapshot(s.id)).rejects.toThrow(/snapshots\/[0-9a-f]{64}: stored data does not match/);
  });

  it('refuses to init over an existing repository', async () => {
    const backend = new MemoryBackend();
    await Repository.init(backend, 'pw');
    await expect(Repository.init(backend, 'pw')).rejects.toThrow(/already exists/);
  });
});

// The backend conformance suite: every Backend implementation runs these same cases (the cases of
// restic's internal/backend/test, written anew for our interface).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import type { Backend, FileType } from '../../src/backends/backend.js';
import { NotFoundError } from '../../src/errors.js';

export interface ConformanceTarget {
  backend: Backend;
  /** Stops servers and removes temporary storage. */
  cleanup(): Promise<void>;
}

export interface ConformanceOptions {
  /** The backend (or its server) rejects a save whose content does not hash to the name. */
  checksHashOnSave?: boolean;
  /** Size of the large round-trip file (default 9 MiB, above a pack's usual size). */
  largeSize?: number;
}

const TYPES: Exclude<FileType, 'config'>[] = ['data', 'index', 'keys', 'locks', 'snapshots'];

function named(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(backend: Backend, type: FileType, signal?: AbortSignal): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const f of backend.list(type, signal)) out.set(f.name, f.size);
  return out;
}

/** Registers the suite for one backend; `setup` makes a fresh, created (empty) repository location. */
export function backendConformance(name: string, setup: () => Promise<ConformanceTarget>, options: ConformanceOptions = {}): void {
  describe(`backend conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let backend: Backend;
    beforeAll(async () => {
      target = await setup();
      backend = target.backend;
    });
    afterAll(async () => {
      await backend?.close();
      await target?.cleanup();
    });

    it('has a location', () => {
      expect(backend.location.length).toBeGreaterThan(0);
    });

    it('config: missing, saved, loaded, then create refuses an existing repository', async () => {
      await expect(backend.load('config', 'config')).rejects.toThrow(NotFoundError);
      await expect(backend.stat('config', 'config')).rejects.toThrow(NotFoundError);
      expect(await collect(backend, 'config')).toEqual(new Map());
      const config = randomBytes(200);
      await backend.save('config', 'config', config);
      expect(Buffer.from(await backend.load('config', 'config')).equals(config)).toBe(true);
      expect((await backend.stat('config', 'config')).size).toBe(200);
      await expect(backend.create()).rejects.toThrow(/already exists/);
    });

    it('missing files are NotFoundError for load and stat', async () => {
      for (const type of TYPES) {
        const id = named(randomBytes(8));
        await expect(backend.load(type, id)).rejects.toThrow(NotFoundError);
        await expect(backend.stat(type, id)).rejects.toThrow(NotFoundError);
      }
    });

    it('save, stat, list, load and remove for every file type', async () => {
      for (const type of TYPES) {
        const files = Array.from({ length: 5 }, (_, i) => randomBytes(1 + i * 997));
        for (const f of files) await backend.save(type, named(f), f);
        const listed = await collect(backend, type);
        for (const f of files) {
          expect(listed.get(named(f))).toBe(f.length);
          expect((await backend.stat(type, named(f))).size).toBe(f.length);
          expect(Buffer.from(await backend.load(type, named(f))).equals(f)).toBe(true);
        }
        for (const f of files) await backend.remove(type, named(f));
        expect(await collect(backend, type)).toEqual(new Map());
        for (const f of files) await expect(backend.stat(type, named(f))).rejects.toThrow(NotFoundError);
      }
    });

    it('ranged loads return exactly the requested bytes', async () => {
      const data = randomBytes(100_000);
      const id = named(data);
      await backend.save('data', id, data);
      for (const [offset, length] of [
        [0, 1],
        [0, 100_000],
        [1, 99_999],
        [12_345, 6_789],
        [99_999, 1],
        [50_000, undefined],
        [100_000, 0],
      ] as [number, number | undefined][]) {
        const got = Buffer.from(await backend.load('data', id, offset, length));
        const want = data.subarray(offset, length === undefined ? undefined : offset + length);
        expect(got.equals(want), `offset ${offset} length ${length}`).toBe(true);
      }
      await backend.remove('data', id);
    });

    it('a range past the end is an error, not NotFoundError', async () => {
      const data = randomBytes(1000);
      const id = named(data);
      await backend.save('data', id, data);
      for (const [offset, length] of [
        [0, 1001],
        [999, 2],
        [2000, 10],
      ] as [number, number][]) {
        const err = await backend.load('data', id, offset, length).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `offset ${offset} length ${length}`).toBeInstanceOf(Error);
        expect(err).not.toBeInstanceOf(NotFoundError);
      }
      await backend.remove('data', id);
    });

    it('empty and large files round-trip', async () => {
      const empty = new Uint8Array(0);
      await backend.save('snapshots', named(empty), empty);
      expect((await backend.load('snapshots', named(empty))).length).toBe(0);
      expect((await backend.stat('snapshots', named(empty))).size).toBe(0);
      await backend.remove('snapshots', named(empty));
      const large = randomBytes(options.largeSize ?? 9 * 1024 * 1024);
      await backend.save('data', named(large), large);
      expect(named(await backend.load('data', named(large)))).toBe(named(large));
      await backend.remove('data', named(large));
    });

    it('removing a missing file is not an error', async () => {
      await backend.remove('data', named(randomBytes(8)));
      await backend.remove('locks', named(randomBytes(8)));
    });

    it('concurrent saves all land', async () => {
      const files = Array.from({ length: 20 }, () => randomBytes(10_000));
      await Promise.all(files.map((f) => backend.save('data', named(f), f)));
      const listed = await collect(backend, 'data');
      for (const f of files) expect(listed.get(named(f))).toBe(10_000);
      await Promise.all(files.map((f) => backend.remove('data', named(f))));
    });

    it('listing stops when the signal aborts', async () => {
      const files = Array.from({ length: 30 }, () => randomBytes(64));
      for (const f of files) await backend.save('locks', named(f), f);
      const controller = new AbortController();
      let seen = 0;
      for await (const _ of backend.list('locks', controller.signal)) {
        seen++;
        if (seen === 3) controller.abort();
      }
      expect(seen).toBeLessThan(30);
      for (const f of files) await backend.remove('locks', named(f));
    });

    if (options.checksHashOnSave) {
      it('rejects a save whose content does not match the name', async () => {
        const data = randomBytes(100);
        const wrong = named(randomBytes(100));
        await expect(backend.save('data', wrong, data)).rejects.toThrow();
        await expect(backend.stat('data', wrong)).rejects.toThrow(NotFoundError);
      });
    }
  });
}

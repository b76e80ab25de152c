import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Backend, FileInfo, FileType } from '../src/backends/backend.js';
import { MemoryBackend } from '../src/backends/memory/memory.js';
import { RetryBackend, type RetryOperation, type RetryOptions } from '../src/backends/retry.js';
import { NotFoundError, PermanentError, ResticError, UsageError } from '../src/errors.js';
import { backendConformance } from './backends/conformance.js';

type Op = RetryOperation;

interface Fault {
  error: Error;
  /** Run the real operation first, then fail (a reply lost after the server acted). */
  after?: boolean;
  /** For list: yield this many names before failing. */
  afterItems?: number;
  /** For load: return one byte less instead of failing. */
  short?: boolean;
}

/** MemoryBackend with scripted faults: each call of an operation takes the next planned fault, if any. */
class FlakyBackend implements Backend {
  readonly location = 'flaky:';
  readonly inner = new MemoryBackend();
  readonly calls: Op[] = [];
  readonly savedBytes: Uint8Array[] = [];
  private readonly plan = new Map<Op, Fault[]>();

  fail(op: Op, ...faults: Fault[]): this {
    this.plan.set(op, [...(this.plan.get(op) ?? []), ...faults]);
    return this;
  }

  count(op: Op): number {
    return this.calls.filter((c) => c === op).length;
  }

  private async step<T>(op: Op, run: () => Promise<T>): Promise<T> {
    this.calls.push(op);
    const fault = this.plan.get(op)?.shift();
    if (fault && !fault.after) throw fault.error;
    const result = await run();
    if (fault) throw fault.error;
    return result;
  }

  create(): Promise<void> {
    return this.step('create', () => this.inner.create());
  }

  save(type: FileType, name: string, data: Uint8Array): Promise<void> {
    this.savedBytes.push(data);
    return this.step('save', () => this.inner.save(type, name, data));
  }

  async load(type: FileType, name: string, offset?: number, length?: number): Promise<Uint8Array> {
    this.calls.push('load');
    const fault = this.plan.get('load')?.shift();
    const data = fault?.short || !fault ? await this.inner.load(type, name, offset, length) : undefined;
    if (fault?.short) return data!.subarray(0, data!.length - 1);
    if (fault) throw fault.error;
    return data!;
  }

  stat(type: FileType, name: string): Promise<FileInfo> {
    return this.step('stat', () => this.inner.stat(type, name));
  }

  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    this.calls.push('list');
    const fault = this.plan.get('list')?.shift();
    let n = 0;
    for await (const info of this.inner.list(type, signal)) {
      if (fault && n === (fault.afterItems ?? 0)) throw fault.error;
      n++;
      yield info;
    }
    if (fault) throw fault.error;
  }

  remove(type: FileType, name: string): Promise<void> {
    return this.step('remove', () => this.inner.remove(type, name));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

const transient = (msg = 'connection reset'): Fault => ({ error: new ResticError(msg) });
const hash = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
/** Tiny delays so the tests stay fast; `retries` records every onRetry call. */
function fast(extra: RetryOptions = {}): RetryOptions & { retries: [Op, string, string, number, number][] } {
  const retries: [Op, string, string, number, number][] = [];
  return {
    baseDelayMs: 1,
    maxDelayMs: 4,
    onRetry: (op, file, err, attempt, delayMs) => retries.push([op, file, err.message, attempt, delayMs]),
    ...extra,
    retries,
  };
}

async function stored(flaky: FlakyBackend, type: FileType, data: Uint8Array): Promise<string> {
  const name = hash(data);
  await flaky.inner.save(type, name, data);
  return name;
}

describe('RetryBackend', () => {
  it('retries transient failures until one succeeds', async () => {
    const flaky = new FlakyBackend();
    const data = randomBytes(1000);
    const name = await stored(flaky, 'data', data);
    const opts = fast();
    const retry = new RetryBackend(flaky, opts);
    flaky.fail('load', transient(), transient('timeout'));
    expect(Buffer.from(await retry.load('data', name)).equals(data)).toBe(true);
    expect(flaky.count('load')).toBe(3);
    expect(opts.retries.map(([op, file, msg, attempt]) => [op, file, msg, attempt])).toEqual([
      ['load', `data/${name}`, 'connection reset', 1],
      ['load', `data/${name}`, 'timeout', 2],
    ]);

    flaky.fail('stat', transient()).fail('remove', transient()).fail('create', transient(), transient());
    expect((await retry.stat('data', name)).size).toBe(1000);
    await retry.remove('data', name);
    await expect(flaky.inner.stat('data', name)).rejects.toThrow(NotFoundError);
    await retry.create();
    expect([flaky.count('stat'), flaky.count('remove'), flaky.count('create')]).toEqual([2, 2, 3]);
  });

  it('passes NotFoundError, PermanentError and UsageError on at once, unchanged', async () => {
    for (const error of [new NotFoundError('data/x does not exist'), new PermanentError('403 Forbidden at rest:http://h/'), new UsageError('bad')]) {
      const flaky = new FlakyBackend().fail('stat', { error });
      const opts = fast();
      await expect(new RetryBackend(flaky, opts).stat('data', 'x')).rejects.toBe(error);
      expect(flaky.count('stat')).toBe(1);
      expect(opts.retries).toEqual([]);
    }
    // A missing file stays NotFoundError even after transient failures.
    const flaky = new FlakyBackend().fail('load', transient(), transient());
    await expect(new RetryBackend(flaky, fast()).load('index', 'ab')).rejects.toThrow(NotFoundError);
    expect(flaky.count('load')).toBe(3);
  });

  it('gives up after maxAttempts with one line naming operation, file, attempts and the last error', async () => {
    const flaky = new FlakyBackend().fail('save', ...Array.from({ length: 10 }, (_, i) => transient(`boom ${i}\n  at line two`)));
    const data = randomBytes(10);
    const err = await new RetryBackend(flaky, fast({ maxAttempts: 4 })).save('snapshots', hash(data), data).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ResticError);
    expect(err).not.toBeInstanceOf(NotFoundError);
    expect(err!.message).toBe(`save snapshots/${hash(data)} failed after 4 attempts: boom 3 at line two`);
    expect(flaky.count('save')).toBe(4);
    expect(new RetryBackend(new FlakyBackend(), {})).toBeInstanceOf(RetryBackend);
    expect(() => new RetryBackend(new FlakyBackend(), { maxAttempts: 0 })).toThrow(UsageError);
  });

  it('defaults to 10 attempts', async () => {
    const flaky = new FlakyBackend().fail('stat', ...Array.from({ length: 20 }, () => transient()));
    await expect(new RetryBackend(flaky, { baseDelayMs: 0 }).stat('data', 'x')).rejects.toThrow(/failed after 10 attempts/);
    expect(flaky.count('stat')).toBe(10);
  });

  it('waits with exponential backoff and full jitter, capped at maxDelayMs', async () => {
    const flaky = new FlakyBackend().fail('stat', ...Array.from({ length: 6 }, () => transient()));
    const opts = fast({ baseDelayMs: 10, maxDelayMs: 80, random: () => 0.9999 });
    await expect(new RetryBackend(flaky, opts).stat('data', 'x')).rejects.toThrow(NotFoundError);
    expect(opts.retries.map((r) => r[4])).toEqual([9, 19, 39, 79, 79, 79]);

    // With real jitter every wait stays below its cap, and the waits really happen.
    const flaky2 = new FlakyBackend().fail('stat', ...Array.from({ length: 4 }, () => transient()));
    const opts2 = fast({ baseDelayMs: 20, maxDelayMs: 1000, random: undefined });
    const started = performance.now();
    await expect(new RetryBackend(flaky2, opts2).stat('data', 'x')).rejects.toThrow(NotFoundError);
    const delays = opts2.retries.map((r) => r[4]);
    delays.forEach((d, i) => expect(d).toBeLessThan(20 * 2 ** i));
    expect(performance.now() - started).toBeGreaterThanOrEqual(delays.reduce((a, b) => a + b, 0) - 5);
  });

  it('stops waiting at once when the signal aborts, and retries no more after that', async () => {
    const controller = new AbortController();
    const flaky = new FlakyBackend().fail('stat', transient(), transient());
    const retry = new RetryBackend(flaky, { baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.5, signal: controller.signal });
    const started = performance.now();
    const pending = retry.stat('data', 'x');
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toThrow(/^stat data\/x cancelled while retrying after 1 attempt: connection reset$/);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(flaky.count('stat')).toBe(1);

    // Aborted already: operations still run (cleanup such as removing a lock works), failures are final.
    await expect(retry.stat('data', 'x')).rejects.toThrow(/cancelled/);
    expect(flaky.count('stat')).toBe(2);
    const data = randomBytes(8);
    await retry.save('locks', hash(data), data);
    await retry.remove('locks', hash(data));
  });

  it('restarts a failed listing without yielding any name twice', async () => {
    const flaky = new FlakyBackend();
    const names = new Set<string>();
    for (let i = 0; i < 10; i++) names.add(await stored(flaky, 'index', randomBytes(20 + i)));
    flaky.fail('list', { error: new ResticError('reset'), afterItems: 4 }, { error: new ResticError('reset'), afterItems: 7 }, { error: new ResticError('reset') });
    const opts = fast();
    const seen: string[] = [];
    for await (const info of new RetryBackend(flaky, opts).list('index')) seen.push(info.name);
    expect(seen.length).toBe(10);
    expect(new Set(seen)).toEqual(names);
    expect(flaky.count('list')).toBe(4);
    expect(opts.retries.map((r) => [r[0], r[1], r[3]])).toEqual([
      ['list', 'index/', 1],
      ['list', 'index/', 2],
      ['list', 'index/', 3],
    ]);
  });

  it('ends a listing on a permanent error, and a list signal also cuts a wait short', async () => {
    const flaky = new FlakyBackend();
    await stored(flaky, 'keys', randomBytes(5));
    flaky.fail('list', { error: new PermanentError('403 Forbidden') });
    const retry = new RetryBackend(flaky, { baseDelayMs: 60_000, random: () => 0.5 });
    await expect(
      (async () => {
        for await (const _ of retry.list('keys'));
      })(),
    ).rejects.toThrow(PermanentError);

    flaky.fail('list', transient());
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const started = performance.now();
    await expect(
      (async () => {
        for await (const _ of retry.list('keys', controller.signal));
      })(),
    ).rejects.toThrow(/list keys\/ cancelled/);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('retries a save with the same bytes', async () => {
    const flaky = new FlakyBackend().fail('save', transient(), transient());
    const data = randomBytes(3000);
    await new RetryBackend(flaky, fast()).save('data', hash(data), data);
    expect(flaky.count('save')).toBe(3);
    expect(flaky.savedBytes.length).toBe(3);
    for (const bytes of flaky.savedBytes) expect(Buffer.from(bytes).equals(data)).toBe(true);
    expect(Buffer.from(await flaky.inner.load('data', hash(data))).equals(data)).toBe(true);
  });

  it('treats a save whose reply was lost as done, and replaces a partial upload', async () => {
    const data = randomBytes(500);
    const lost = new FlakyBackend().fail('save', { error: new ResticError('socket hang up'), after: true });
    await new RetryBackend(lost, fast()).save('data', hash(data), data);
    expect(lost.count('save')).toBe(1);
    expect(lost.count('stat')).toBe(1);

    const partial = new FlakyBackend().fail('save', transient());
    await partial.inner.save('data', hash(data), data.subarray(0, 100));
    await new RetryBackend(partial, fast()).save('data', hash(data), data);
    expect(partial.count('remove')).toBe(1);
    expect(Buffer.from(await partial.inner.load('data', hash(data))).equals(data)).toBe(true);

    const config = randomBytes(150);
    const lostConfig = new FlakyBackend().fail('save', { error: new ResticError('timeout'), after: true });
    await new RetryBackend(lostConfig, fast()).save('config', 'config', config);
    expect(lostConfig.count('save')).toBe(1);

    // Another config (same size, other bytes) is never removed or overwritten.
    const other = new FlakyBackend().fail('save', transient());
    await other.inner.save('config', 'config', randomBytes(150));
    await expect(new RetryBackend(other, fast()).save('config', 'config', config)).rejects.toThrow(PermanentError);
    expect(other.count('remove')).toBe(0);
  });

  it('retries a load that returned fewer bytes than asked for', async () => {
    const flaky = new FlakyBackend();
    const data = randomBytes(1000);
    const name = await stored(flaky, 'data', data);
    flaky.fail('load', { error: new ResticError('unused'), short: true });
    const opts = fast();
    const got = await new RetryBackend(flaky, opts).load('data', name, 100, 200);
    expect(Buffer.from(got).equals(data.subarray(100, 300))).toBe(true);
    expect(opts.retries[0]![2]).toBe(`data/${name}: short read, got 199 of 200 bytes`);
  });
});

backendConformance('retry(memory)', async () => {
  const backend = new RetryBackend(new MemoryBackend(), { baseDelayMs: 1, maxDelayMs: 4 });
  await backend.create();
  return { backend, cleanup: async () => undefined };
});

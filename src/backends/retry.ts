import type { Backend, FileInfo, FileType } from './backend.js';
import { NotFoundError, PermanentError, ResticError, UsageError } from '../errors.js';

export type RetryOperation = 'create' | 'save' | 'load' | 'stat' | 'list' | 'remove';

export interface RetryOptions {
  /** Attempts per operation, the first one included (default 10). */
  maxAttempts?: number;
  /** Upper bound of the first wait; it doubles with every further attempt (default 500 ms). */
  baseDelayMs?: number;
  /** Largest upper bound of a wait (default 15 s). */
  maxDelayMs?: number;
  /**
   * Aborting ends every wait at once and stops further retries. Operations are still started, so
   * cleanup after a cancel (removing a lock) keeps working.
   */
  signal?: AbortSignal;
  /** Called before each wait, e.g. to print "save data/ab… failed, retrying in 2s". `attempt` is the one that failed. */
  onRetry?: (op: RetryOperation, file: string, err: Error, attempt: number, delayMs: number) => void;
  /** Jitter source returning [0, 1) (default Math.random). */
  random?: () => number;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof NotFoundError || err instanceof PermanentError || err instanceof UsageError) return false;
  return !(err instanceof Error && err.name === 'AbortError');
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ');
}

/** Resolves after `ms`, or early with true once any signal aborts. */
function sleep(ms: number, signals: AbortSignal[]): Promise<boolean> {
  if (signals.some((s) => s.aborted)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (aborted: boolean): void => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', onAbort);
      resolve(aborted);
    };
    const onAbort = (): void => done(true);
    const timer = setTimeout(() => done(false), ms);
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
  });
}

function label(type: FileType, name: string): string {
  return type === 'config' ? 'config' : `${type}/${name}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Retries failed backend operations with exponential backoff and full jitter (restic's retry
 * backend, rewritten): each wait is uniform in [0, min(maxDelay, baseDelay·2^(attempt-1))).
 * NotFoundError, PermanentError, UsageError and aborts are passed on at once.
 */
export class RetryBackend implements Backend {
  readonly location: string;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;

  constructor(
    private readonly inner: Backend,
    private readonly options: RetryOptions = {},
  ) {
    this.location = inner.location;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 15_000;
    this.random = options.random ?? Math.random;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) throw new UsageError(`invalid retry attempts ${this.maxAttempts}: use a whole number of at least 1`);
    if (!(this.baseDelayMs >= 0 && this.maxDelayMs >= 0)) throw new UsageError('invalid retry delays: use durations of at least 0 ms');
  }

  /** Waits before attempt `attempt + 1`, or throws the error that ends the operation. */
  private async backoff(op: RetryOperation, file: string, err: unknown, attempt: number, callSignal?: AbortSignal): Promise<void> {
    if (!isRetryable(err)) throw err;
    const error = asError(err);
    const signals = [this.options.signal, callSignal].filter((s): s is AbortSignal => s !== undefined);
    const cancelled = (): ResticError =>
      new ResticError(`${op} ${file} cancelled while retrying after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${oneLine(error.message)}`, { cause: err });
    if (attempt >= this.maxAttempts) {
      throw new ResticError(`${op} ${file} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${oneLine(error.message)}`, { cause: err });
    }
    if (signals.some((s) => s.aborted)) throw cancelled();
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.floor(this.random() * cap);
    this.options.onRetry?.(op, file, error, attempt, delayMs);
    if (await sleep(delayMs, signals)) throw cancelled();
  }

  private async run<T>(op: RetryOperation, file: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        await this.backoff(op, file, err, attempt);
      }
    }
  }

  create(): Promise<void> {
    return this.run('create', this.location, () => this.inner.create());
  }

  save(type: FileType, name: string, data: Uint8Array): Promise<void> {
    return this.run('save', label(type, name), async (attempt) => {
      if (attempt > 1 && (await this.landed(type, name, data))) return;
      await this.inner.save(type, name, data);
    });
  }

  /**
   * Whether a seemingly failed save stored the file after all (the reply may be what got lost).
   * Names are content hashes, so a file of the right size is ours; one of another size is a broken
   * upload and is removed so the save can be repeated.
   */
  private async landed(type: FileType, name: string, data: Uint8Array): Promise<boolean> {
    let info: FileInfo;
    try {
      info = await this.inner.stat(type, name);
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
    if (type === 'config') {
      // config is not named by its hash: compare the bytes, and never remove someone else's.
      if (info.size === data.length && sameBytes(await this.inner.load(type, name), data)) return true;
      throw new PermanentError(`save config: a different config file already exists at ${this.location}`);
    }
    if (info.size === data.length) return true;
    await this.inner.remove(type, name);
    return false;
  }

  load(type: FileType, name: string, offset?: number, length?: number): Promise<Uint8Array> {
    const file = label(type, name);
    return this.run('load', file, async () => {
      const data = await this.inner.load(type, name, offset, length);
      // A truncated body is a transfer fault: try again rather than hand out short data.
      if (length !== undefined && data.length !== length) throw new ResticError(`${file}: short read, got ${data.length} of ${length} bytes`);
      return data;
    });
  }

  stat(type: FileType, name: string): Promise<FileInfo> {
    return this.run('stat', label(type, name), () => this.inner.stat(type, name));
  }

  /** A failed listing starts over; names already yielded are skipped, so none is seen twice. */
  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const info of this.inner.list(type, signal)) {
          if (seen.has(info.name)) continue;
          seen.add(info.name);
          yield info;
        }
        return;
      } catch (err) {
        await this.backoff('list', type === 'config' ? 'config' : `${type}/`, err, attempt, signal);
      }
    }
  }

  remove(type: FileType, name: string): Promise<void> {
    return this.run('remove', label(type, name), () => this.inner.remove(type, name));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

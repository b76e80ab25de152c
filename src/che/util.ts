import { ResticError } from '../index.js';

/** Thrown when a step runs past its time limit; the message names the step. */
export class CheTimeoutError extends ResticError {
  override name = 'CheTimeoutError';
}

/** Thrown when the caller's AbortSignal fires. */
export class CheAbortedError extends ResticError {
  override name = 'CheAbortedError';
}

/** How often waits look again. */
export const POLL_INTERVAL_MS = 1_000;

/** First line of an error's message (Kubernetes Status messages and restic errors alike). */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? '').trim() || (err instanceof Error ? err.name : 'unknown error');
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CheAbortedError(`${what}: cancelled`);
}

/** Waits `ms`, or rejects with CheAbortedError when the signal fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CheAbortedError('cancelled'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CheAbortedError('cancelled'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A signal that fires when `parent` fires or after `ms`; `dispose` clears the timer. Built on setTimeout (not
 * AbortSignal.timeout) so tests can drive it with fake timers.
 */
export function timeoutSignal(ms: number, parent?: AbortSignal): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void } {
  const controller = new AbortController();
  let expired = false;
  const onParent = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onParent, { once: true });
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new CheTimeoutError('timed out'));
  }, ms);
  return {
    signal: controller.signal,
    timedOut: () => expired,
    dispose: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/**
 * Runs `fn` with a signal that fires after `ms` or when `parent` fires. The returned promise settles as soon as
 * either happens, even if `fn` ignores its signal: a step can never hang its caller.
 */
export async function withTimeout<T>(what: string, ms: number, parent: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  throwIfAborted(parent, what);
  const t = timeoutSignal(ms, parent);
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () =>
      reject(t.timedOut() ? new CheTimeoutError(`${what}: timed out after ${formatDuration(ms)}`) : new CheAbortedError(`${what}: cancelled`));
    t.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([fn(t.signal), stopped]);
  } finally {
    if (onAbort) t.signal.removeEventListener('abort', onAbort);
    t.dispose();
  }
}

export interface PollOptions {
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
}

/**
 * Calls `check` until it returns a value other than undefined. On timeout the error says what was awaited and,
 * via `lastState`, what was seen last (so a hang names its cause).
 */
export async function poll<T>(what: string, options: PollOptions, check: (signal: AbortSignal) => Promise<T | undefined>, lastState?: () => string): Promise<T> {
  throwIfAborted(options.signal, what);
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    const result = await withTimeout(what, Math.max(left, 1), options.signal, check).catch((err: unknown) => {
      if (err instanceof CheTimeoutError) return undefined;
      throw err;
    });
    if (result !== undefined) return result;
    if (Date.now() + options.intervalMs > deadline) {
      const seen = lastState?.();
      throw new CheTimeoutError(`${what}: timed out after ${formatDuration(options.timeoutMs)}${seen ? ` (${seen})` : ''}`);
    }
    await sleep(options.intervalMs, options.signal).catch(() => {
      throw new CheAbortedError(`${what}: cancelled`);
    });
  }
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10}s`;
  return `${Math.round(ms / 6000) / 10}min`;
}

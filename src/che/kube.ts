import { PassThrough, Writable, type Readable } from 'node:stream';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Exec,
  Observable,
  PatchStrategy,
  type ConfigurationOptions,
  type KubeConfig,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  type V1Pod,
  type V1Status,
} from '@kubernetes/client-node';
import { ResticError } from '../index.js';
import { CheAbortedError, CheTimeoutError, errorMessage, formatDuration, withTimeout } from './util.js';

/** A failed Kubernetes API call: HTTP status and the server's one-line reason. */
export class KubeApiError extends ResticError {
  override name = 'KubeApiError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 409;
}

/** Turns client-node's ApiException (whose message holds the whole body) into a one-line KubeApiError. */
function toKubeError(what: string, err: unknown): unknown {
  if (!(err instanceof ApiException)) return err;
  let reason = '';
  const body: unknown = err.body;
  const fromObject = (o: unknown) => (o && typeof o === 'object' && typeof (o as { message?: unknown }).message === 'string' ? (o as { message: string }).message : '');
  if (typeof body === 'string') {
    try {
      reason = fromObject(JSON.parse(body)) || body;
    } catch {
      reason = body;
    }
  } else {
    reason = fromObject(body);
  }
  reason = (reason.split('\n')[0] ?? '').trim();
  return new KubeApiError(err.code, `${what}: ${reason || `HTTP ${err.code}`}`);
}

function signalMiddleware(signal: AbortSignal): ObservableMiddleware {
  return {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (ctx: ResponseContext) => new Observable(Promise.resolve(ctx)),
  };
}

export interface ExecResult {
  exitCode: number;
  /** The end of stderr (at most 64 KiB), for error messages. */
  stderr: string;
}

export interface ExecOptions {
  /** Container name; default the pod's first container. */
  container?: string;
  /** Receives stdout; it is ended when the command ends. Default: discarded. */
  stdout?: Writable;
  /** Streamed to stdin; no EOF follows (see exec), so the command must stop reading by itself. */
  stdin?: Readable;
  timeoutMs: number;
  signal?: AbortSignal;
}

const STDERR_KEEP = 64 * 1024;

/** Keeps the last STDERR_KEEP bytes written. */
class TailBuffer extends Writable {
  private chunks: Buffer[] = [];
  private size = 0;

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= STDERR_KEEP) this.size -= this.chunks.shift()!.length;
    done();
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - STDERR_KEEP)).toString('utf8');
  }
}

/** Exit code from the exec status channel: Success, or NonZeroExitCode with an ExitCode cause. */
function exitCodeOf(status: V1Status): number | string {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (status.reason === 'NonZeroExitCode' && cause?.message && /^\d+$/.test(cause.message)) return Number(cause.message);
  return status.message || status.reason || 'command failed';
}

/**
 * Kubernetes access for the Che layer, bound to one namespace: typed API clients whose calls each get a time
 * limit and the caller's AbortSignal, and pod exec with the same.
 */
export class CheKube {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;

  constructor(
    readonly kubeConfig: KubeConfig,
    /** Limit of one API call. */
    readonly apiTimeoutMs = 30_000,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /**
   * Runs one API call with a time limit. `fn` receives the options to pass to the client-node method (they carry
   * the abort signal, and the merge-patch content type when `mergePatch` is set).
   */
  call<T>(what: string, signal: AbortSignal | undefined, fn: (options: ConfigurationOptions) => Promise<T>, mergePatch = false): Promise<T> {
    return withTimeout(what, this.apiTimeoutMs, signal, async (s) => {
      const middleware: ObservableMiddleware[] = [signalMiddleware(s)];
      if (mergePatch) {
        middleware.push({
          pre: (ctx: RequestContext) => {
            ctx.setHeaderParam('Content-Type', PatchStrategy.MergePatch);
            return new Observable(Promise.resolve(ctx));
          },
          post: (ctx: ResponseContext) => new Observable(Promise.resolve(ctx)),
        });
      }
      try {
        return await fn({ middleware, middlewareMergeStrategy: 'append' });
      } catch (err) {
        if (s.aborted && !(err instanceof ApiException)) throw new CheAbortedError(`${what}: cancelled`);
        throw toKubeError(what, err);
      }
    });
  }

  /** Like call, but undefined for 404. */
  async find<T>(what: string, signal: AbortSignal | undefined, fn: (options: ConfigurationOptions) => Promise<T>): Promise<T | undefined> {
    try {
      return await this.call(what, signal, fn);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A Secret's data decoded to text, or undefined when it does not exist. */
  async readSecretData(namespace: string, name: string, signal?: AbortSignal): Promise<Record<string, string> | undefined> {
    const secret = await this.find(`read secret ${name}`, signal, (o) => this.core.readNamespacedSecret({ name, namespace }, o));
    if (!secret) return undefined;
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
    return data;
  }

  /** A running, not terminating pod matching the label selector, or undefined. */
  async findRunningPod(namespace: string, labelSelector: string, signal?: AbortSignal): Promise<V1Pod | undefined> {
    const pods = await this.call(`list pods ${labelSelector}`, signal, (o) => this.core.listNamespacedPod({ namespace, labelSelector }, o));
    return pods.items.find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
  }

  /**
   * Runs a command in a pod (WebSocket exec) and resolves with its exit code. Stdin is never closed: closing it
   * over the v4 protocol closes the whole connection before the exit status arrives, so commands that read
   * stdin must stop on their own (e.g. `head -c N`).
   */
  async exec(namespace: string, pod: V1Pod, command: string[], options: ExecOptions): Promise<ExecResult> {
    const podName = pod.metadata?.name ?? '';
    const container = options.container ?? pod.spec?.containers?.[0]?.name ?? '';
    const what = `exec ${command[0]} in pod ${podName}`;
    return withTimeout(what, options.timeoutMs, options.signal, (signal) => {
      const stdout = options.stdout ?? new Writable({ write: (_c, _e, done) => done() });
      const stderr = new TailBuffer();
      const stdin = options.stdin ? new PassThrough() : null;
      return new Promise<ExecResult>((resolve, reject) => {
        let ws: { close(): void; on(event: string, listener: (...args: never[]) => void): void } | undefined;
        let settled = false;
        const settle = () => {
          settled = true;
          signal.removeEventListener('abort', onAbort);
          options.stdin?.destroy();
        };
        const fail = (err: Error) => {
          if (settled) return;
          settle();
          ws?.close();
          if (!stdout.writableEnded) stdout.end();
          reject(err);
        };
        const onAbort = () => fail(new CheAbortedError(`${what}: stopped`));
        signal.addEventListener('abort', onAbort, { once: true });
        // Late frames after a failure may still be written: swallowed then, reported before.
        stdout.on('error', (err) => fail(new ResticError(`${what}: writing its output failed: ${errorMessage(err)}`)));
        const onStatus = (status: V1Status) => {
          if (settled) return;
          settle();
          const code = exitCodeOf(status);
          // The exec handler ends stdout on the status frame; wait until a file behind it is flushed.
          const done = () => {
            if (typeof code === 'number') resolve({ exitCode: code, stderr: stderr.text() });
            else reject(new ResticError(`${what}: ${code}`));
          };
          if (stdout.writableFinished) done();
          else {
            stdout.once('finish', done);
            stdout.once('error', (err) => reject(new ResticError(`${what}: writing its output failed: ${errorMessage(err)}`)));
            if (!stdout.writableEnded) stdout.end();
          }
        };
        new Exec(this.kubeConfig)
          .exec(namespace, podName, container, command, stdout, stderr, stdin, false, onStatus)
          .then((socket) => {
            ws = socket as unknown as NonNullable<typeof ws>;
            if (settled) return socket.close();
            ws.on('close', () => fail(new ResticError(`${what}: connection closed before the command's exit status arrived`)));
            ws.on('error', (err: Error) => fail(new ResticError(`${what}: ${errorMessage(err)}`)));
            if (stdin && options.stdin) {
              options.stdin.on('error', (err) => fail(new ResticError(`${what}: reading its input failed: ${errorMessage(err)}`)));
              options.stdin.pipe(stdin, { end: false });
            }
          })
          .catch((err: unknown) => fail(new ResticError(`${what}: cannot connect: ${errorMessage(err)}`)));
      });
    }).catch((err: unknown) => {
      if (err instanceof CheTimeoutError) throw new CheTimeoutError(`${what}: no exit status after ${formatDuration(options.timeoutMs)}`);
      throw err;
    });
  }
}

// `pods/exec` over the remotecommand protocols: WebSocket v4/v5.channel.k8s.io, where every message
// starts with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close-stream in
// v5), and SPDY/3.1 with one stream per channel (v4.channel.k8s.io), for older kubectl.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { isObject, type JsonObject, type KubeObject } from './types.js';
import type { SpdySession, SpdyStream } from './spdy.js';
import type { WebSocketConnection } from './websocket.js';

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;
export const SPDY_EXEC_PROTOCOL = 'v4.channel.k8s.io';

export interface ExecIO {
  /** Null unless the client asked for stdin. Ends when the client closes stdin (or disconnects). */
  stdin: Readable | null;
  stdout: Writable;
  stderr: Writable;
  /** Aborted when the API server shuts down; handlers should stop their work then. */
  signal: AbortSignal;
}

/** Runs `command` "in" `container` of `pod` and resolves with its exit code. */
export type ExecHandler = (pod: KubeObject, container: string, command: string[], io: ExecIO) => Promise<number>;

/** The container's literal `env` values (`valueFrom` entries are skipped). */
export function containerEnv(pod: KubeObject, container: string): Record<string, string> {
  const spec = isObject(pod.spec) ? pod.spec : {};
  const c = (Array.isArray(spec.containers) ? spec.containers : []).find((x) => isObject(x) && x.name === container);
  const env: Record<string, string> = {};
  if (isObject(c) && Array.isArray(c.env)) {
    for (const e of c.env) if (isObject(e) && typeof e.name === 'string' && typeof e.value === 'string') env[e.name] = e.value;
  }
  return env;
}

/** Default handler: runs the command on this host with the container's env added; cwd unchanged. */
export const hostExec: ExecHandler = (pod, container, command, io) =>
  new Promise<number>((resolve) => {
    const child = spawn(command[0], command.slice(1), {
      env: { ...process.env, ...containerEnv(pod, container) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const kill = () => child.kill('SIGKILL');
    io.signal.addEventListener('abort', kill, { once: true });
    child.stdin.on('error', () => undefined);
    if (io.stdin) io.stdin.pipe(child.stdin);
    else child.stdin.end();
    child.stdout.pipe(io.stdout, { end: false });
    child.stderr.pipe(io.stderr, { end: false });
    child.on('error', (err: NodeJS.ErrnoException) => {
      io.signal.removeEventListener('abort', kill);
      const why = err.code === 'ENOENT' ? 'executable file not found in $PATH' : err.message;
      io.stderr.write(`OCI runtime exec failed: exec failed: unable to start container process: exec: ${JSON.stringify(command[0])}: ${why}: unknown\r\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('close', (code, signal) => {
      io.signal.removeEventListener('abort', kill);
      io.stdin?.unpipe(child.stdin);
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });

const CHUNK = 32 * 1024;

/** Where an exec session's streams come from and how its final status goes out. */
interface ExecTransport {
  stdin: Readable | null;
  stdout: Writable;
  stderr: Writable;
  /** Sends the status (after stdout/stderr ended) and closes the connection. */
  finish(status: JsonObject): Promise<void>;
}

function finished(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    w.end(() => resolve());
  });
}

export interface ExecRequest {
  pod: KubeObject;
  container: string;
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

async function runExec(t: ExecTransport, req: ExecRequest, handler: ExecHandler, signal: AbortSignal): Promise<void> {
  let status: JsonObject;
  try {
    const code = await handler(req.pod, req.container, req.command, { stdin: t.stdin, stdout: t.stdout, stderr: t.stderr, signal });
    await Promise.all([finished(t.stdout), finished(t.stderr)]);
    status =
      code === 0
        ? { metadata: {}, status: 'Success' }
        : {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: error executing command [${req.command.join(' ')}], exit code ${code}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
          };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    status = { metadata: {}, status: 'Failure', message: `Internal error occurred: ${message}`, reason: 'InternalError', details: { causes: [{ message }] }, code: 500 };
  }
  await t.finish(status);
}

/** A Writable that frames everything written to it as WebSocket messages on `channel`. */
function channelWriter(ws: WebSocketConnection, channel: number, enabled: boolean): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!enabled || !ws.isOpen) return cb();
      let ok = true;
      for (let i = 0; i < chunk.length; i += CHUNK) {
        ok = ws.send(Buffer.concat([Buffer.from([channel]), chunk.subarray(i, i + CHUNK)]));
      }
      if (ok || ws.socket.destroyed) cb();
      else ws.socket.once('drain', () => cb());
    },
  });
}

/** Runs one exec session on an accepted WebSocket and closes it with the status message. */
export async function serveExec(ws: WebSocketConnection, req: ExecRequest, handler: ExecHandler, signal: AbortSignal): Promise<void> {
  const stdin = req.stdin ? new PassThrough() : null;
  if (stdin) {
    stdin.on('drain', () => ws.socket.resume());
    ws.on('close', () => stdin.end());
  }
  ws.on('message', (msg) => {
    if (msg.length === 0) return;
    const channel = msg[0];
    if (channel === 0 && stdin && !stdin.writableEnded) {
      if (!stdin.write(msg.subarray(1))) ws.socket.pause();
    } else if (channel === 255 && msg[1] === 0 && stdin) {
      stdin.end();
    }
  });
  await runExec(
    {
      stdin,
      stdout: channelWriter(ws, 1, req.stdout),
      stderr: channelWriter(ws, 2, req.stderr),
      async finish(status) {
        // Unread stdin may have paused the socket; the close handshake still needs to be read.
        ws.socket.resume();
        ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(status))]));
        ws.close(1000);
      },
    },
    req,
    handler,
    signal,
  );
}

/** A Writable onto a SPDY stream (or a sink when the client did not open one). */
function streamWriter(s: SpdyStream | undefined): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!s) return cb();
      s.write(chunk).then(() => cb(), cb);
    },
    final(cb) {
      if (!s) return cb();
      s.end().then(() => cb(), cb);
    },
  });
}

const STREAM_WAIT_MS = 10_000;

/**
 * Runs one exec session over SPDY (remotecommand v4): waits for the client's error/stdin/stdout/
 * stderr streams, runs the command, writes the status to the error stream and says GOAWAY.
 */
export async function serveExecSpdy(session: SpdySession, req: ExecRequest, handler: ExecHandler, signal: AbortSignal): Promise<void> {
  const want = ['error', ...(req.stdin ? ['stdin'] : []), ...(req.stdout ? ['stdout'] : []), ...(req.stderr ? ['stderr'] : [])];
  const streams = new Map<string, SpdyStream>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for the client to create its streams')), STREAM_WAIT_MS);
    const check = () => {
      if (want.every((w) => streams.has(w))) {
        clearTimeout(timer);
        resolve();
      }
    };
    session.on('stream', (s) => {
      streams.set(s.headers.get('streamtype') ?? '', s);
      check();
    });
    session.once('close', () => {
      clearTimeout(timer);
      reject(new Error('connection closed before the streams were created'));
    });
    check();
  });
  const errorStream = streams.get('error');
  await runExec(
    {
      stdin: streams.get('stdin')?.incoming ?? null,
      stdout: streamWriter(streams.get('stdout')),
      stderr: streamWriter(streams.get('stderr')),
      async finish(status) {
        await errorStream?.write(Buffer.from(JSON.stringify(status)));
        await errorStream?.end();
        await session.close();
      },
    },
    req,
    handler,
    signal,
  );
}

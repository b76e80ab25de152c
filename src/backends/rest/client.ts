import { STATUS_CODES } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import type { Backend, FileInfo, FileType } from '../backend.js';
import { listConfig } from '../backend.js';
import type { BackendOptions, RestLocation } from '../options.js';
import { NotFoundError, PermanentError, ResticError, UsageError } from '../../errors.js';
import { MIME_V2 } from './protocol.js';
import { readCaCertificates, trustContext } from '../trust.js';
const DEFAULT_CONNECTIONS = 5;
/** Node's codes for certificate verification failures. */
const TLS_VERIFY_ERRORS = /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_)/;

type Method = 'GET' | 'HEAD' | 'POST' | 'DELETE';
type Response = Dispatcher.ResponseData;

/** Replaces the password in any `//user:password@` part of a URL with `***` (restic shows URLs so). */
export function redactUrl(url: string): string {
  // Greedy up to the last "@" of the authority, as URL parsers split it there.
  return url.replace(/(\/\/[^/@:?#]*):[^/?#]*@/, '$1:***@');
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function statusText(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'unknown status'}`;
}

/** The repository file a request is about, as it appears in messages. */
function fileLabel(type: FileType, name: string): string {
  return type === 'config' ? 'config' : `${type}/${name}`;
}

function positiveInt(raw: string | undefined, what: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`invalid ${what} "${raw}": use a positive integer`);
  return n;
}

/**
 * A repository on a server that speaks restic's REST protocol (rest-server, rclone serve restic, our own
 * `serve`). One keep-alive connection pool per backend; `rest.connections` bounds the requests in flight.
 */
export class RestBackend implements Backend {
  readonly location: string;
  private readonly pool: Pool;
  private readonly basePath: string;
  /** Base URL without credentials, for messages. */
  private readonly where: string;
  private readonly auth?: string;
  private readonly connections: number;

  constructor(loc: RestLocation, opts: BackendOptions = {}) {
    let url: URL;
    try {
      url = new URL(loc.url);
    } catch {
      throw new UsageError(`invalid REST URL "${redactUrl(loc.url)}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`invalid REST URL "${redactUrl(loc.url)}": use http or https`);
    const env = opts.env ?? process.env;
    // Credentials left inside the URL still work, but never reach a message.
    const username = loc.username ?? (url.username ? decodeURIComponent(url.username) : env.REST_SERVER_USERNAME);
    const password = loc.password ?? (url.password ? decodeURIComponent(url.password) : env.REST_SERVER_PASSWORD);
    url.username = '';
    url.password = '';
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    url.search = '';
    url.hash = '';
    this.where = url.href;
    this.location = `rest:${url.href}`;
    this.basePath = url.pathname;
    if (username !== undefined && username !== '') {
      this.auth = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    }
    this.connections = positiveInt(opts.extended?.['rest.connections'], 'rest.connections', DEFAULT_CONNECTIONS);
    const cacerts = readCaCertificates(opts.cacert);
    const secureContext = url.protocol === 'https:' ? trustContext(cacerts) : undefined;
    this.pool = new Pool(url.origin, {
      connections: this.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: {
        ...(secureContext ? { secureContext } : {}),
        rejectUnauthorized: opts.insecureTls !== true,
      },
    });
  }

  private path(type: FileType, name: string): string {
    return type === 'config' ? `${this.basePath}config` : `${this.basePath}${type}/${name}`;
  }

  private async request(method: Method, path: string, what: string, extra: { headers?: Record<string, string>; body?: Uint8Array; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: MIME_V2, ...extra.headers };
    if (this.auth) headers.authorization = this.auth;
    if (extra.body) headers['content-type'] = 'application/octet-stream';
    try {
      // reset:false keeps the connection after HEAD too (undici closes it by default, against servers
      // that wrongly send a body; rest-server, rclone and ours do not).
      return await this.pool.request({ method, path, headers, body: extra.body, signal: extra.signal, reset: false });
    } catch (err) {
      if (extra.signal?.aborted) throw err;
      const e = err as Error & { code?: string; cause?: { code?: string } };
      const code = e.code ?? e.cause?.code;
      const msg = `rest server ${this.where}: ${method} ${what}: ${code ? `${code}: ` : ''}${e.message.split('\n')[0]}`;
      // A certificate that does not verify will not verify on a retry either.
      if (code && TLS_VERIFY_ERRORS.test(code)) throw new PermanentError(`${msg} (use --cacert to trust the server's certificate)`);
      throw new ResticError(msg);
    }
  }

  /** Maps a status that is not the expected success to the error kinds of the Backend contract. */
  private fail(res: Response, method: Method, what: string, hint = ''): never {
    res.body.dump().catch(() => undefined);
    const status = res.statusCode;
    const msg = `rest server ${this.where}: ${method} ${what}: ${statusText(status)}`;
    if (status === 404) throw new NotFoundError(`${what} does not exist (${msg})`);
    if (status === 401) throw new PermanentError(`${msg} (wrong or missing user name/password)`);
    if (status === 403) throw new PermanentError(`${msg}${hint || ' (access refused by the server)'}`);
    if (status >= 400 && status < 500) throw new PermanentError(`${msg}${hint}`);
    throw new ResticError(msg);
  }

  async create(): Promise<void> {
    const res = await this.request('HEAD', this.path('config', 'config'), 'config');
    await res.body.dump();
    if (res.statusCode === 200) throw new ResticError(`repository at ${this.where} already exists (config file present)`);
    if (res.statusCode !== 404) this.fail(res, 'HEAD', 'config');
    const made = await this.request('POST', `${this.basePath}?create=true`, 'create repository');
    if (made.statusCode !== 200) this.fail(made, 'POST', 'create repository');
    await made.body.dump();
  }

  async save(type: FileType, name: string, data: Uint8Array): Promise<void> {
    const what = fileLabel(type, name);
    const res = await this.request('POST', this.path(type, name), what, { body: data });
    if (res.statusCode < 200 || res.statusCode > 299) {
      const hint =
        res.statusCode === 403
          ? ' (file exists already, or the server is append-only)'
          : res.statusCode === 400
            ? ' (the server rejected the upload: content does not match its name?)'
            : '';
      this.fail(res, 'POST', what, hint);
    }
    await res.body.dump();
  }

  async load(type: FileType, name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const what = fileLabel(type, name);
    if (offset < 0 || (length !== undefined && length < 0)) throw new PermanentError(`${what}: invalid range ${offset}+${length}`);
    if (length === 0) {
      // HTTP cannot express an empty range: check that the offset is inside the file instead.
      const { size } = await this.stat(type, name);
      if (offset > size) throw this.pastEnd(what, offset, length, size);
      return new Uint8Array(0);
    }
    const ranged = offset > 0 || length !== undefined;
    const range = `bytes=${offset}-${length === undefined ? '' : offset + length - 1}`;
    const res = await this.request('GET', this.path(type, name), what, ranged ? { headers: { range } } : {});
    const total = contentRangeTotal(header(res, 'content-range'));
    if (res.statusCode === 416) {
      res.body.dump().catch(() => undefined);
      // `bytes=N-` on a file of exactly N bytes is an empty read, not an error.
      if (length === undefined && total !== undefined && offset === total) return new Uint8Array(0);
      throw this.pastEnd(what, offset, length, total);
    }
    // Some servers (rclone) answer a range at or past the end with 206 and an odd Content-Range.
    if (res.statusCode === 206 && total !== undefined && (offset + (length ?? 0) > total || (length === undefined && offset === total))) {
      res.body.dump().catch(() => undefined);
      if (offset === total && length === undefined) return new Uint8Array(0);
      throw this.pastEnd(what, offset, length, total);
    }
    if (res.statusCode === 206) {
      const cr = parseContentRange(header(res, 'content-range'));
      if (!cr || cr.start !== offset || (length !== undefined && cr.end - cr.start + 1 > length)) {
        res.body.dump().catch(() => undefined);
        throw new ResticError(`rest server ${this.where}: GET ${what}: answered range ${header(res, 'content-range') ?? '(none)'} for ${range}`);
      }
      const got = cr.end - cr.start + 1;
      if (length !== undefined && got < length) {
        res.body.dump().catch(() => undefined);
        throw this.pastEnd(what, offset, length, cr.total);
      }
      return this.readBody(res, what, 0, got, true);
    }
    if (res.statusCode === 200) {
      // The server ignored the Range header: the body is the whole file; keep only the asked part.
      const size = Number(header(res, 'content-length') ?? NaN);
      if (Number.isFinite(size) && offset + (length ?? 0) > size) {
        res.body.dump().catch(() => undefined);
        throw this.pastEnd(what, offset, length, size);
      }
      const want = length ?? (Number.isFinite(size) ? size - offset : undefined);
      return this.readBody(res, what, offset, want, !ranged);
    }
    this.fail(res, 'GET', what);
  }

  private pastEnd(what: string, offset: number, length: number | undefined, size: number | undefined): PermanentError {
    const len = length === undefined ? 'rest of file' : String(length);
    return new PermanentError(`${what}: range ${offset}+${len} is past the end of the file${size === undefined ? '' : ` (size ${size})`} at ${this.where}`);
  }

  /**
   * Reads `want` bytes after skipping `skip` bytes of the body into one buffer of exactly that size
   * (the whole rest when `want` is unknown). `exact`: the body must hold exactly that much; otherwise
   * (a server that ignored Range) the unneeded rest is cut off. A body that ends early is a
   * (retryable) error.
   */
  private async readBody(res: Response, what: string, skip: number, want: number | undefined, exact: boolean): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    const out = want === undefined ? undefined : Buffer.allocUnsafe(want);
    let skipped = 0;
    let filled = 0;
    try {
      for await (const raw of res.body) {
        let chunk = raw as Buffer;
        if (skipped < skip) {
          const drop = Math.min(skip - skipped, chunk.length);
          skipped += drop;
          chunk = chunk.subarray(drop);
        }
        if (chunk.length === 0) continue;
        if (!out) {
          chunks.push(chunk);
          filled += chunk.length;
          continue;
        }
        if (filled + chunk.length > out.length && exact) {
          throw new Error(`body is longer than the announced ${out.length} bytes`);
        }
        const n = Math.min(chunk.length, out.length - filled);
        chunk.copy(out, filled, 0, n);
        filled += n;
        // Leaving the loop destroys the body, which drops the unneeded rest with its connection.
        if (filled === out.length && !exact) break;
      }
    } catch (err) {
      throw new ResticError(`rest server ${this.where}: GET ${what}: reading the body failed: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!out) return Buffer.concat(chunks, filled);
    if (filled < out.length) throw new ResticError(`rest server ${this.where}: GET ${what}: short body, got ${filled} of ${out.length} bytes`);
    return out;
  }

  async stat(type: FileType, name: string): Promise<FileInfo> {
    const what = fileLabel(type, name);
    const res = await this.request('HEAD', this.path(type, name), what);
    if (res.statusCode !== 200) this.fail(res, 'HEAD', what);
    await res.body.dump();
    const size = Number(header(res, 'content-length'));
    if (!Number.isSafeInteger(size) || size < 0) throw new ResticError(`rest server ${this.where}: HEAD ${what}: no valid Content-Length`);
    return { name, size };
  }

  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    if (type === 'config') {
      yield* listConfig(this);
      return;
    }
    if (signal?.aborted) return;
    const what = `${type}/`;
    let items: unknown;
    let v2: boolean;
    try {
      const res = await this.request('GET', `${this.basePath}${type}/`, what, { signal });
      if (res.statusCode !== 200) this.fail(res, 'GET', what);
      v2 = (header(res, 'content-type') ?? '').startsWith(MIME_V2);
      items = await res.body.json();
    } catch (err) {
      if (signal?.aborted) return;
      if (err instanceof ResticError) throw err;
      throw new ResticError(`rest server ${this.where}: GET ${what}: invalid listing: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!Array.isArray(items)) throw new ResticError(`rest server ${this.where}: GET ${what}: listing is not a JSON array`);
    if (v2) {
      for (const item of items as unknown[]) {
        if (signal?.aborted) return;
        const { name, size } = (item ?? {}) as { name?: unknown; size?: unknown };
        if (typeof name !== 'string' || typeof size !== 'number') throw new ResticError(`rest server ${this.where}: GET ${what}: malformed v2 listing entry`);
        yield { name, size };
      }
      return;
    }
    // A v1 server lists names only: ask each size with HEAD, a pool's worth at a time.
    const names = items as unknown[];
    for (let i = 0; i < names.length; i += this.connections) {
      if (signal?.aborted) return;
      const batch = names.slice(i, i + this.connections).map((n) => {
        if (typeof n !== 'string') throw new ResticError(`rest server ${this.where}: GET ${what}: malformed v1 listing entry`);
        return n;
      });
      const infos = await Promise.all(batch.map((n) => this.stat(type, n).catch((err: unknown) => (err instanceof NotFoundError ? undefined : Promise.reject(err)))));
      for (const info of infos) {
        if (signal?.aborted) return;
        // A file removed between the listing and its HEAD is simply gone.
        if (info) yield info;
      }
    }
  }

  async remove(type: FileType, name: string): Promise<void> {
    const what = fileLabel(type, name);
    const res = await this.request('DELETE', this.path(type, name), what);
    if (res.statusCode === 404) {
      await res.body.dump();
      return;
    }
    if (res.statusCode < 200 || res.statusCode > 299) this.fail(res, 'DELETE', what, res.statusCode === 403 ? ' (the server is append-only?)' : '');
    await res.body.dump();
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function parseContentRange(value: string | undefined): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return undefined;
  return { start, end, total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** The file size from `bytes a-b/N` or `bytes *\/N`. */
function contentRangeTotal(value: string | undefined): number | undefined {
  const m = /\/(\d+)\s*$/.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

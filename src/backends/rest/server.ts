import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync, constants as fsc, promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { compare as bcryptCompare } from 'bcryptjs';
import { ResticError, UsageError } from '../../errors.js';
import { LocalBackend } from '../local/local.js';
import { isObjectType, MIME_V1, MIME_V2, OBJECT_NAME, type ObjectType } from './protocol.js';

/** rest-server's flags, as options. */
export interface RestServerOptions {
  /** Data directory: a repository at its root and/or in sub-directories up to two levels deep. */
  path: string;
  /** host:port to listen on (port 0 picks a free one; an empty host means every interface). Default 127.0.0.1:8000. */
  listen?: string;
  /** htpasswd file with bcrypt ($2a$/$2b$/$2y$) or {SHA} entries. Default `<path>/.htpasswd`. */
  htpasswdFile?: string;
  /** Serve without authentication. */
  noAuth?: boolean;
  /** Refuse deletions (locks excepted) with 403; overwrites are refused in every mode. */
  appendOnly?: boolean;
  /** A user may only reach repositories under `/<user>/`. */
  privateRepos?: boolean;
  /** Serve HTTPS with tlsCert/tlsKey (default `<path>/public_key` and `<path>/private_key`). */
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  /** Maximum bytes stored under `path` (all repositories together); uploads beyond it get 507. */
  maxRepoSize?: number;
  /** Receives one line per internal server error; default: stderr. */
  onError?: (message: string) => void;
}

export interface RestServer {
  server: http.Server | https.Server;
  /** Starts listening; resolves with the base URL (ending in "/"). */
  listen(): Promise<{ url: string }>;
  /** Stops accepting, lets running requests finish for a moment, then cuts what is left. */
  close(): Promise<void>;
}

/** rest-server's limit: repositories at `/`, `/a/` and `/a/b/`. */
const MAX_FOLDER_DEPTH = 2;
/** Successful logins are remembered this long, so bcrypt does not run on every request. */
const AUTH_CACHE_MS = 60_000;
/** How often, at most, the htpasswd file is checked for changes. */
const HTPASSWD_CHECK_MS = 1_000;
const CLOSE_GRACE_MS = 2_000;
/** Idle time after which a connection is dropped (uploads may take long, but must keep moving). */
const SOCKET_IDLE_MS = 300_000;
/** rest-server ignores htpasswd users with other characters. */
const VALID_USER = /^[\p{L}\d@._-]+$/u;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string> = {},
  ) {
    super(http.STATUS_CODES[status] ?? String(status));
  }
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

// ---------------------------------------------------------------------------------------------
// Authentication

function parseHtpasswd(text: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trimStart();
    if (line === '' || line.startsWith('#')) continue;
    const [user, hash] = line.split(':');
    if (user === undefined || hash === undefined || !VALID_USER.test(user)) continue;
    users.set(user, hash.trimStart());
  }
  return users;
}

async function checkPassword(entry: string, password: string): Promise<boolean> {
  if (entry.startsWith('{SHA}')) {
    const want = Buffer.from(entry.slice(5));
    const got = Buffer.from(createHash('sha1').update(password).digest('base64'));
    return want.length === got.length && timingSafeEqual(want, got);
  }
  if (/^\$2[aby]\$/.test(entry)) return bcryptCompare(password, entry).catch(() => false);
  return false;
}

function fileStamp(st: { mtimeMs: number; size: number; ino: number }): string {
  return `${st.mtimeMs}:${st.size}:${st.ino}`;
}

/** htpasswd users; the file is re-read when it changes, as rest-server does. */
class Htpasswd {
  private users: Map<string, string>;
  /** sha256(user \0 password) of recent successful logins → expiry time. */
  private readonly verified = new Map<string, number>();
  private readonly pending = new Map<string, Promise<boolean>>();
  private stamp: string;
  private nextCheck = 0;

  constructor(
    private readonly file: string,
    private readonly onError: (message: string) => void,
  ) {
    try {
      this.stamp = fileStamp(statSync(file));
      this.users = parseHtpasswd(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot load ${file} (use --no-auth to disable authentication): ${(err as Error).message}`);
    }
  }

  async validate(user: string, password: string): Promise<boolean> {
    await this.reloadIfChanged();
    const entry = this.users.get(user);
    if (entry === undefined) return false;
    const key = createHash('sha256').update(`${user}\0${password}`).digest('hex');
    const now = Date.now();
    if ((this.verified.get(key) ?? 0) > now) return true;
    // Concurrent requests with the same credentials share one (slow) bcrypt check.
    let check = this.pending.get(key);
    if (!check) {
      check = checkPassword(entry, password).finally(() => this.pending.delete(key));
      this.pending.set(key, check);
    }
    const ok = await check;
    if (ok && this.users.get(user) === entry) {
      for (const [k, expiry] of this.verified) if (expiry <= now) this.verified.delete(k);
      this.verified.set(key, now + AUTH_CACHE_MS);
    }
    return ok;
  }

  private async reloadIfChanged(): Promise<void> {
    const now = Date.now();
    if (now < this.nextCheck) return;
    this.nextCheck = now + HTPASSWD_CHECK_MS;
    try {
      const stamp = fileStamp(await fs.stat(this.file));
      if (stamp === this.stamp) return;
      this.users = parseHtpasswd(await fs.readFile(this.file, 'utf8'));
      this.stamp = stamp;
      this.verified.clear();
    } catch (err) {
      this.onError(`cannot reload ${this.file}, keeping the previous users: ${(err as Error).message}`);
    }
  }
}

/** The user of a valid `Authorization: Basic` header, else undefined. */
async function basicAuthUser(req: http.IncomingMessage, users: Htpasswd): Promise<string | undefined> {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const user = decoded.slice(0, colon);
  return (await users.validate(user, decoded.slice(colon + 1))) ? user : undefined;
}

// ---------------------------------------------------------------------------------------------
// Request paths

interface Target {
  /** Repository directory names below the data directory (0 to MAX_FOLDER_DEPTH). */
  folder: string[];
  /** What inside the repository is addressed. */
  what: { kind: 'root' } | { kind: 'config' } | { kind: 'list'; type: ObjectType } | { kind: 'object'; type: ObjectType; name: string };
  query: URLSearchParams;
}

/**
 * Splits the raw request target the way rest-server does: leading segments that are not a repository
 * file type name the repository folder. Works on the raw path (WHATWG URL parsing would resolve `..`
 * and `%2e%2e`); every segment is decoded on its own and folder names are checked before any
 * filesystem access.
 */
function parseTarget(rawUrl: string): Target {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  if (!rawPath.startsWith('/')) throw new HttpError(400);
  let segments: string[];
  try {
    segments = rawPath.slice(1).split('/').map(decodeURIComponent);
  } catch {
    throw new HttpError(400);
  }
  const folder: string[] = [];
  while (folder.length < MAX_FOLDER_DEPTH && folder.length < segments.length - 1) {
    const s = segments[folder.length]!;
    if (s === 'config' || isObjectType(s)) break;
    if (s === '' || s === '.' || s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0')) throw new HttpError(404);
    folder.push(s);
  }
  const rest = segments.slice(folder.length);
  const [first, second] = rest;
  if (rest.length === 1 && first === '') return { folder, what: { kind: 'root' }, query };
  if (rest.length === 1 && first === 'config') return { folder, what: { kind: 'config' }, query };
  if (rest.length === 2 && first !== undefined && isObjectType(first)) {
    if (second === '') return { folder, what: { kind: 'list', type: first }, query };
    if (OBJECT_NAME.test(second!)) return { folder, what: { kind: 'object', type: first, name: second! }, query };
  }
  throw new HttpError(404);
}

function objectPath(repo: string, type: ObjectType, name: string): string {
  return type === 'data' ? join(repo, 'data', name.slice(0, 2), name) : join(repo, type, name);
}

// ---------------------------------------------------------------------------------------------
// Ranges

/** A single `bytes=` range resolved against `size`; 'all' to send the whole file (no or multiple ranges). */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'all' {
  if (header === undefined) return 'all';
  const m = /^bytes=(.*)$/i.exec(header.trim());
  if (!m) throw new HttpError(416, { 'content-range': `bytes */${size}` });
  const specs = m[1]!.split(',');
  if (specs.length > 1) return 'all';
  const r = /^\s*(\d*)-(\d*)\s*$/.exec(specs[0]!);
  const unsatisfiable = new HttpError(416, { 'content-range': `bytes */${size}` });
  if (!r || (r[1] === '' && r[2] === '')) throw unsatisfiable;
  if (r[1] === '') {
    const suffix = Number(r[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(r[1]);
  const end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1);
  if (start >= size || Number(r[2] || start) < start) throw unsatisfiable;
  return { start, end };
}

// ---------------------------------------------------------------------------------------------
// Quota

/** Bytes stored under the data directory, counted up front and tracked as files come and go. */
class Quota {
  private used = 0;
  constructor(readonly max: number) {}

  async tally(dir: string): Promise<void> {
    this.used = await treeSize(dir);
  }

  /** Throws 507 when `bytes` more would exceed the maximum; otherwise counts them. */
  take(bytes: number): void {
    if (this.used + bytes > this.max) throw new HttpError(507);
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }

  fits(bytes: number): boolean {
    return this.used + bytes <= this.max;
  }
}

async function treeSize(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isCode(err, 'ENOENT')) return 0;
    throw err;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await treeSize(p);
    else if (e.isFile()) total += (await fs.stat(p)).size;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Handlers

function sendStatus(res: http.ServerResponse, status: number, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = `${http.STATUS_CODES[status] ?? status}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function fileExists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

class Handler {
  private readonly root: string;
  private readonly users?: Htpasswd;
  private readonly quota?: Quota;
  private readonly onError: (message: string) => void;

  constructor(private readonly opts: RestServerOptions) {
    this.root = resolve(opts.path);
    this.onError = opts.onError ?? ((m) => process.stderr.write(`rest server: ${m}\n`));
    if (!opts.noAuth) this.users = new Htpasswd(opts.htpasswdFile ?? join(this.root, '.htpasswd'), this.onError);
    if (opts.maxRepoSize !== undefined) {
      if (!Number.isSafeInteger(opts.maxRepoSize) || opts.maxRepoSize <= 0) throw new UsageError(`invalid maximum repository size ${opts.maxRepoSize}: use a positive number of bytes`);
      this.quota = new Quota(opts.maxRepoSize);
    }
  }

  async start(): Promise<void> {
    await this.quota?.tally(this.root);
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      let user: string | undefined;
      if (this.users) {
        user = await basicAuthUser(req, this.users);
        if (user === undefined) throw new HttpError(401, { 'www-authenticate': 'Basic realm="restic"' });
      }
      const target = parseTarget(req.url ?? '/');
      if (this.users && this.opts.privateRepos && target.folder[0] !== user) throw new HttpError(401);
      const repo = resolve(this.root, ...target.folder);
      // parseTarget already refuses `..` and separators; this guards the invariant itself.
      if (repo !== this.root && !repo.startsWith(this.root + sep)) throw new HttpError(404);
      await this.dispatch(req, res, repo, target);
    } catch (err) {
      if (err instanceof HttpError) {
        sendStatus(res, err.status, err.headers);
        return;
      }
      this.onError(`${req.method} ${req.url}: ${(err as Error).message ?? String(err)}`.split('\n')[0]!);
      sendStatus(res, 500);
    }
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse, repo: string, target: Target): Promise<void> {
    const method = req.method ?? 'GET';
    const { what } = target;
    const notAllowed = (allow: string) => new HttpError(405, { allow });
    switch (what.kind) {
      case 'root':
        if (method !== 'POST') throw notAllowed('POST');
        if (target.query.get('create') !== 'true') throw new HttpError(400);
        return this.createRepo(res, repo);
      case 'config':
      case 'object': {
        const file = what.kind === 'config' ? join(repo, 'config') : objectPath(repo, what.type, what.name);
        if (method === 'GET' || method === 'HEAD') return this.sendFile(req, res, file, method === 'HEAD');
        if (method === 'POST') return this.receiveFile(req, res, file, what.kind === 'object' ? what.name : undefined);
        if (method === 'DELETE') return this.deleteFile(res, file, what.kind === 'object' ? what.type : 'config');
        throw notAllowed('HEAD, GET, POST, DELETE');
      }
      case 'list':
        if (method !== 'GET') throw notAllowed('GET');
        return this.list(req, res, repo, what.type);
    }
  }

  private async createRepo(res: http.ServerResponse, repo: string): Promise<void> {
    try {
      await new LocalBackend(repo).create();
    } catch (err) {
      // Creating over an existing repository only fills in missing directories, as rest-server does.
      if (!(err instanceof ResticError && (await fileExists(join(repo, 'config'))))) throw err;
    }
    sendStatus(res, 200);
  }

  private async sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, head: boolean): Promise<void> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw new HttpError(404);
      throw err;
    }
    let streaming = false;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new HttpError(404);
      const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'content-length': st.size };
      if (head) {
        res.writeHead(200, headers);
        res.end();
        return;
      }
      const range = parseRange(req.headers.range, st.size);
      const { start, end } = range === 'all' ? { start: 0, end: st.size - 1 } : range;
      headers['content-length'] = end - start + 1;
      if (range !== 'all') headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
      res.writeHead(range === 'all' ? 200 : 206, headers);
      if (end < start) {
        res.end();
        return;
      }
      streaming = true;
      // The read stream owns (and closes) the handle; a client that goes away just ends the pipeline.
      await pipeline(fh.createReadStream({ start, end }), res).catch(() => res.destroy());
    } finally {
      if (!streaming) await fh.close();
    }
  }

  /**
   * Streams the body into a temporary file next to the target while hashing it, then links it into
   * place: memory stays bounded whatever the body size, readers never see a partial file, and an
   * existing file is never replaced (403, as rest-server answers).
   */
  private async receiveFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, expectedHash: string | undefined): Promise<void> {
    if (await fileExists(file)) throw new HttpError(403);
    const announced = Number(req.headers['content-length'] ?? NaN);
    if (this.quota && Number.isFinite(announced) && !this.quota.fits(announced)) throw new HttpError(507);
    // `-tmp-` files are what LocalBackend writes and skips in listings.
    const tmp = `${file}-tmp-${randomBytes(8).toString('hex')}`;
    const open = () => fs.open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
    let fh: fs.FileHandle;
    try {
      fh = await open();
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
      await fs.mkdir(dirname(tmp), { recursive: true, mode: 0o700 });
      fh = await open();
    }
    let counted = 0;
    let linked = false;
    try {
      try {
        const hash = createHash('sha256');
        for await (const chunk of req as AsyncIterable<Buffer>) {
          this.quota?.take(chunk.length);
          counted += chunk.length;
          hash.update(chunk);
          await fh.write(chunk);
        }
        if (expectedHash !== undefined && hash.digest('hex') !== expectedHash) throw new HttpError(400);
        await fh.sync();
      } catch (err) {
        // A body cut short by the client is the client's fault, as in rest-server.
        if (isCode(err, 'ECONNRESET') || (err as Error).message === 'aborted') throw new HttpError(400);
        throw err;
      } finally {
        await fh.close();
      }
      try {
        await fs.link(tmp, file);
        linked = true;
      } catch (err) {
        if (isCode(err, 'EEXIST')) throw new HttpError(403);
        throw err;
      }
    } finally {
      await fs.unlink(tmp).catch(() => undefined);
      if (!linked) this.quota?.release(counted);
    }
    await fs.chmod(file, 0o400).catch(() => undefined);
    sendStatus(res, 200);
  }

  private async deleteFile(res: http.ServerResponse, file: string, type: ObjectType | 'config'): Promise<void> {
    if (this.opts.appendOnly && type !== 'locks') throw new HttpError(403);
    let size = 0;
    if (this.quota) size = await fs.stat(file).then((st) => st.size, () => 0);
    try {
      await fs.unlink(file);
      this.quota?.release(size);
    } catch (err) {
      // Deleting is idempotent so that retried requests succeed.
      if (!isCode(err, 'ENOENT')) throw err;
    }
    sendStatus(res, 200);
  }

  private async list(req: http.IncomingMessage, res: http.ServerResponse, repo: string, type: ObjectType): Promise<void> {
    try {
      if (!(await fs.stat(join(repo, type))).isDirectory()) throw new HttpError(404);
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) throw new HttpError(404);
      throw err;
    }
    const files = [];
    for await (const f of new LocalBackend(repo).list(type)) files.push(f);
    const v2 = (req.headers.accept ?? '').includes(MIME_V2);
    const body = JSON.stringify(v2 ? files.map(({ name, size }) => ({ name, size })) : files.map((f) => f.name));
    res.writeHead(200, { 'content-type': v2 ? MIME_V2 : MIME_V1, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

// ---------------------------------------------------------------------------------------------
// Server

function parseListen(listen: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`invalid listen address "${listen}": use host:port, e.g. 127.0.0.1:8000`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

function readTlsFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read TLS ${what} ${file}: ${(err as Error).message}`);
  }
}

/** A rest-server compatible server storing repositories under `opts.path` in the local layout. */
export function createRestServer(opts: RestServerOptions): RestServer {
  if (!opts.tls && (opts.tlsCert !== undefined || opts.tlsKey !== undefined)) throw new UsageError('--tls-cert and --tls-key require --tls');
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:8000');
  const handler = new Handler(opts);
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => void handler.handle(req, res);
  const server = opts.tls
    ? https.createServer(
        {
          cert: readTlsFile(opts.tlsCert ?? join(opts.path, 'public_key'), 'certificate'),
          key: readTlsFile(opts.tlsKey ?? join(opts.path, 'private_key'), 'key'),
          minVersion: 'TLSv1.2',
        },
        onRequest,
      )
    : http.createServer(onRequest);
  // A big upload over a slow link may take long as a whole; only an idle connection is dropped.
  server.requestTimeout = 0;
  server.timeout = SOCKET_IDLE_MS;

  return {
    server,
    async listen() {
      await handler.start();
      await new Promise<void>((resolveListen, reject) => {
        const onError = (err: Error) => reject(new ResticError(`cannot listen on ${opts.listen ?? '127.0.0.1:8000'}: ${err.message}`));
        server.once('error', onError);
        server.listen({ host, port }, () => {
          server.off('error', onError);
          resolveListen();
        });
      });
      const addr = server.address() as AddressInfo;
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return { url: `${opts.tls ? 'https' : 'http'}://${shown}:${addr.port}/` };
    },
    close() {
      return new Promise<void>((resolveClose) => {
        if (!server.listening) return resolveClose();
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearTimeout(force);
          resolveClose();
        });
        server.closeIdleConnections();
      });
    },
  };
}

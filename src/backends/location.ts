import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local/local.js';
import { MemoryBackend } from './memory/memory.js';
import type { BackendOptions, Location, RestLocation, S3Location, SftpLocation } from './options.js';
import { RetryBackend, type RetryOptions } from './retry.js';

const EXAMPLE = {
  any: '/srv/restic-repo, rest:https://host:8000/repo/, s3:s3.amazonaws.com/bucket or sftp:user@host:/srv/repo',
  local: 'local:/srv/restic-repo',
  rest: 'rest:https://user:pass@host:8000/repo/',
  s3: 's3:s3.amazonaws.com/bucket/prefix or s3:http://127.0.0.1:9000/bucket',
  sftp: 'sftp:user@host:/srv/repo or sftp://user@host:2222//srv/repo',
};

/** restic backends that restic-ts does not implement (so they are not mistaken for local paths). */
const UNSUPPORTED = new Set(['b2', 'gs', 'azure', 'swift', 'rclone']);

function bad(s: string, problem: string, example: string): UsageError {
  return new UsageError(`invalid repository "${redactLocation(s)}": ${problem}; e.g. ${example}`);
}

/**
 * Hides the password of a location: `user:pass@` becomes `user:***@`. Covers URL forms
 * (`rest:https://user:pass@host/`) and the scheme-only form (`rest:user:pass@host`); when a path
 * holds an "@" it may hide more than the password, never less.
 */
export function redactLocation(s: string): string {
  const at = s.lastIndexOf('@');
  if (at < 0) return s;
  let start: number;
  const sep = s.lastIndexOf('://', at);
  if (sep >= 0) {
    start = sep + 3;
  } else {
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(s);
    if (!scheme) return s;
    start = scheme[0].length;
  }
  const colon = s.slice(start, at).indexOf(':');
  if (colon < 0) return s;
  return `${s.slice(0, start + colon + 1)}***${s.slice(at)}`;
}

/** Go's path.Clean: restic cleans sftp paths and s3 prefixes with it. */
function cleanPath(p: string): string {
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  return rooted ? `/${joined}` : joined || '.';
}

const HOSTNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

interface HostPort {
  /** Without IPv6 brackets. */
  host: string;
  ipv6: boolean;
  port?: number;
}

/** `host`, `host:port`, `[v6]` or `[v6]:port`; an empty port after ":" counts as none only when Go's URL parser allows it. */
function parseHostPort(hp: string, allowEmptyPort: boolean): HostPort | string {
  let host: string;
  let portText: string | undefined;
  let ipv6 = false;
  if (hp.startsWith('[')) {
    const close = hp.indexOf(']');
    if (close < 0) return `unclosed "[" in host "${hp}"`;
    host = hp.slice(1, close);
    if (!IPV6.test(host)) return `bad IPv6 address "${host}"`;
    ipv6 = true;
    const after = hp.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return `unexpected "${after}" after the IPv6 address`;
      portText = after.slice(1);
    }
  } else {
    const colon = hp.indexOf(':');
    host = colon < 0 ? hp : hp.slice(0, colon);
    if (colon >= 0) portText = hp.slice(colon + 1);
    if (host === '') return 'no host name';
    if (!HOSTNAME.test(host)) return `bad host name "${host}"`;
  }
  if (portText === undefined || (portText === '' && allowEmptyPort)) return { host, ipv6 };
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return `bad port "${portText}"`;
  return { host, ipv6, port: Number(portText) };
}

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

interface UrlParts {
  scheme: string;
  /** Raw userinfo (before the last "@" of the authority), undefined when absent. */
  userinfo?: string;
  hostPort: string;
  /** Raw path: "" or starting with "/". */
  path: string;
  hasQueryOrFragment: boolean;
}

/** Splits `scheme://authority/path` the way Go's url.Parse does (the authority ends at the first "/", "?" or "#"). */
function splitUrl(u: string): UrlParts | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(.*)$/s.exec(u);
  if (!m) return undefined;
  const authority = m[2]!;
  const at = authority.lastIndexOf('@');
  return {
    scheme: m[1]!.toLowerCase(),
    userinfo: at < 0 ? undefined : authority.slice(0, at),
    hostPort: authority.slice(at + 1),
    path: m[3]!,
    hasQueryOrFragment: m[4] !== '',
  };
}

function parseRest(s: string, env: NodeJS.ProcessEnv): RestLocation {
  const parts = splitUrl(s.slice('rest:'.length));
  if (!parts || (parts.scheme !== 'http' && parts.scheme !== 'https')) {
    throw bad(s, 'rest: needs an http:// or https:// URL', EXAMPLE.rest);
  }
  if (parts.hasQueryOrFragment) throw bad(s, 'rest: URL must not have a query or fragment', EXAMPLE.rest);
  const hp = parseHostPort(parts.hostPort, true);
  if (typeof hp === 'string') throw bad(s, `rest: ${hp}`, EXAMPLE.rest);
  const host = hp.ipv6 ? `[${hp.host}]` : hp.host;
  let url: URL;
  try {
    url = new URL(`${parts.scheme}://${host}${hp.port === undefined ? '' : `:${hp.port}`}${parts.path}`);
  } catch {
    throw bad(s, 'rest: not a valid URL', EXAMPLE.rest);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  const loc: RestLocation = { kind: 'rest', url: url.href };
  if (parts.userinfo !== undefined) {
    // As restic: credentials in the URL win and switch off the environment, even when empty.
    const colon = parts.userinfo.indexOf(':');
    const username = decode(colon < 0 ? parts.userinfo : parts.userinfo.slice(0, colon));
    const password = colon < 0 ? '' : decode(parts.userinfo.slice(colon + 1));
    if (username === undefined || password === undefined) throw bad(s, 'rest: bad %-escape in the user name or password', EXAMPLE.rest);
    loc.username = username;
    loc.password = password;
  } else {
    // RESTIC_REST_* are restic's (0.17+) names, REST_SERVER_* chectl's.
    const username = env.RESTIC_REST_USERNAME || env.REST_SERVER_USERNAME;
    const password = env.RESTIC_REST_PASSWORD || env.REST_SERVER_PASSWORD;
    if (username) loc.username = username;
    if (password) loc.password = password;
  }
  return loc;
}

function s3Location(s: string, hp: HostPort | string, bucket: string, prefix: string, useTls: boolean): S3Location {
  if (typeof hp === 'string') throw bad(s, `s3: ${hp}`, EXAMPLE.s3);
  if (bucket === '') throw bad(s, 's3: no bucket name', EXAMPLE.s3);
  const host = hp.ipv6 ? `[${hp.host}]` : hp.host;
  let cleaned = prefix === '' ? '' : cleanPath(prefix).replace(/^\/+/, '');
  if (cleaned === '.') cleaned = '';
  return { kind: 's3', endpoint: hp.port === undefined ? host : `${host}:${hp.port}`, useTls, bucket, prefix: cleaned };
}

function parseS3(s: string): S3Location {
  const body = s.slice('s3:'.length);
  if (body.startsWith('http://') || body.startsWith('https://')) {
    const parts = splitUrl(body)!;
    if (parts.userinfo !== undefined) {
      throw bad(s, 's3: credentials do not belong in the location, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY', EXAMPLE.s3);
    }
    if (parts.hasQueryOrFragment) throw bad(s, 's3: URL must not have a query or fragment', EXAMPLE.s3);
    const path = decode(parts.path);
    if (path === undefined) throw bad(s, 's3: bad %-escape in the path', EXAMPLE.s3);
    const [bucket = '', ...prefix] = path.slice(1).split('/');
    return s3Location(s, parseHostPort(parts.hostPort, false), bucket, prefix.join('/'), parts.scheme === 'https');
  }
  // `s3://host/bucket` and `s3:host/bucket`: the first path element is the endpoint (or a region), always TLS.
  const rest = body.startsWith('//') ? body.slice(2) : body;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    throw bad(s, `s3: write s3:${scheme === 'https' ? 'https' : 'http'}://host[:port]/bucket for an endpoint URL`, EXAMPLE.s3);
  }
  const [endpoint = '', bucket = '', ...prefix] = rest.split('/');
  if (endpoint.includes('@')) {
    throw bad(s, 's3: credentials do not belong in the location, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY', EXAMPLE.s3);
  }
  return s3Location(s, endpoint === '' ? 'no host name' : parseHostPort(endpoint, false), bucket, prefix.join('/'), true);
}

function sftpLocation(s: string, user: string | undefined, hp: HostPort | string, dir: string): SftpLocation {
  if (typeof hp === 'string') throw bad(s, `sftp: ${hp}`, EXAMPLE.sftp);
  const path = cleanPath(dir);
  if (path.startsWith('~')) {
    throw bad(s, 'sftp: SFTP servers do not expand "~", use a relative path for the home directory', 'sftp:user@host:restic-repo');
  }
  const loc: SftpLocation = { kind: 'sftp', host: hp.host, path };
  if (user) loc.user = user;
  if (hp.port !== undefined) loc.port = hp.port;
  return loc;
}

function parseSftp(s: string): SftpLocation {
  if (s.startsWith('sftp://')) {
    const parts = splitUrl(s)!;
    if (parts.hasQueryOrFragment) throw bad(s, 'sftp: URL must not have a query or fragment', EXAMPLE.sftp);
    if (parts.path === '') throw bad(s, 'sftp: no directory given', EXAMPLE.sftp);
    let user: string | undefined;
    if (parts.userinfo !== undefined) {
      if (parts.userinfo.includes(':')) throw bad(s, 'sftp: passwords are not supported, use an SSH key', EXAMPLE.sftp);
      user = decode(parts.userinfo);
    }
    const dir = decode(parts.path);
    if (user === undefined && parts.userinfo !== undefined) throw bad(s, 'sftp: bad %-escape in the user name', EXAMPLE.sftp);
    if (dir === undefined) throw bad(s, 'sftp: bad %-escape in the path', EXAMPLE.sftp);
    // One "/" separates host and path: `sftp://host/rel` is relative, `sftp://host//abs` absolute.
    return sftpLocation(s, user, parts.hostPort === '' ? 'no host name' : parseHostPort(parts.hostPort, true), dir.slice(1));
  }
  const body = s.slice('sftp:'.length);
  // `[v6]:path` is our addition: restic cuts at the first ":", which cannot work for IPv6 hosts.
  const v6 = /^(?:([^:]*)@)?(\[[^\]]*\]):(.*)$/s.exec(body);
  if (v6) return sftpLocation(s, v6[1], parseHostPort(v6[2]!, false), v6[3]!);
  const colon = body.indexOf(':');
  if (colon < 0) throw bad(s, 'sftp: host or path missing', EXAMPLE.sftp);
  const userHost = body.slice(0, colon);
  // As restic: `user@domain@host` keeps "user@domain" as the user.
  const at = userHost.split('@');
  const host = at.length >= 3 ? at.slice(2).join('@') : at[at.length - 1]!;
  const user = at.length >= 3 ? `${at[0]}@${at[1]}` : at.length === 2 ? at[0] : undefined;
  return sftpLocation(s, user, host === '' ? 'no host name' : parseHostPort(host, false), body.slice(colon + 1));
}

/** Drive paths and paths starting with "/", "\" or "../" are local even when they hold a ":". */
function isPath(s: string): boolean {
  return /^(\.\.[/\\]|[/\\]|[A-Za-z]:[/\\])/.test(s);
}

/**
 * Parses a repository location in restic's syntax: `local:/path` or a plain path, `memory:`,
 * `rest:http(s)://[user:pass@]host[:port]/path/`, `s3:host[:port]/bucket[/prefix]`,
 * `s3:http(s)://host[:port]/bucket[/prefix]`, `sftp:[user@]host:path`, `sftp://[user@]host[:port]/path`.
 * REST credentials not in the URL come from RESTIC_REST_USERNAME/PASSWORD or REST_SERVER_USERNAME/PASSWORD.
 * Throws UsageError (one line, password redacted) for anything else.
 */
export function parseLocation(s: string, env: NodeJS.ProcessEnv = process.env): Location {
  if (s === '') throw new UsageError(`no repository given: use -r/--repo or RESTIC_REPOSITORY, e.g. ${EXAMPLE.any}`);
  const colon = s.indexOf(':');
  const scheme = colon < 0 ? '' : s.slice(0, colon);
  switch (scheme) {
    case 'local': {
      const path = s.slice('local:'.length);
      if (path === '') throw bad(s, 'local: no path given', EXAMPLE.local);
      return { kind: 'local', path: resolve(path) };
    }
    case 'memory':
      if (s !== 'memory:') throw bad(s, 'memory: takes no path', 'memory:');
      return { kind: 'memory' };
    case 'rest':
      return parseRest(s, env);
    case 's3':
      return parseS3(s);
    case 'sftp':
      return parseSftp(s);
  }
  if (UNSUPPORTED.has(scheme)) throw bad(s, `backend "${scheme}" is not supported by restic-ts`, EXAMPLE.any);
  if (colon >= 0 && !isPath(s)) {
    throw bad(s, `unknown backend "${scheme}" (for a local directory add "local:")`, `local:${s}`);
  }
  return { kind: 'local', path: resolve(s) };
}

export interface OpenBackendOptions extends BackendOptions {
  /** Retry behaviour of remote backends; `-o retry.max-attempts=N` overrides maxAttempts. */
  retry?: RetryOptions;
}

function retryOptions(options: OpenBackendOptions): RetryOptions {
  const text = options.extended?.['retry.max-attempts'];
  if (text === undefined) return options.retry ?? {};
  const maxAttempts = Number(text);
  if (!/^\d+$/.test(text) || maxAttempts < 1) throw new UsageError(`invalid -o retry.max-attempts="${text}": use a whole number of at least 1, e.g. 10`);
  return { ...options.retry, maxAttempts };
}

/**
 * Opens the backend a location names. Remote backends are loaded on demand (so unused SDKs are not)
 * and wrapped in a RetryBackend; local and memory backends are returned as they are.
 */
export async function openBackend(location: string, options: OpenBackendOptions = {}): Promise<Backend> {
  const loc = parseLocation(location, options.env ?? process.env);
  switch (loc.kind) {
    case 'local':
      return new LocalBackend(loc.path);
    case 'memory':
      return new MemoryBackend();
    case 'rest': {
      const retry = retryOptions(options);
      const { RestBackend } = await import('./rest/client.js');
      return new RetryBackend(new RestBackend(loc, options), retry);
    }
    case 's3': {
      const retry = retryOptions(options);
      const { S3Backend } = await import('./s3/s3.js');
      return new RetryBackend(new S3Backend(loc, options), retry);
    }
    case 'sftp': {
      const retry = retryOptions(options);
      const { SftpBackend } = await import('./sftp/sftp.js');
      return new RetryBackend(new SftpBackend(loc, options), retry);
    }
  }
}

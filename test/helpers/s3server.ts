// An S3 server for tests: the npm `s3rver` behind our own http(s) server on 127.0.0.1:<free port>.
// s3rver accepts any SigV4 signature, so the front checks signatures itself (a wrong secret must fail
// as on AWS) and can fake a bucket region, shrink list pages, record requests and inject failures.
import { createHash, createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** The parts of s3rver's (untyped) API and of its Koa context used here. */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  body: unknown;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface StoredObject {
  content: ReadStream | null;
  range?: { start: number; end: number };
}
interface S3rverStore {
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<StoredObject | null>;
  getResourcePath(bucket: string, key: string, resource: 'object'): string;
}
interface S3rverApp {
  middleware: KoaMiddleware[];
  store: S3rverStore;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  logger: { close(): void };
}
type S3rverCtor = new (options: { silent: boolean; directory: string; vhostBuckets: boolean }) => S3rverApp;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

export const S3RVER_KEY = 'S3RVER';

export interface S3ServerOptions {
  /** Serve https with a self-signed certificate for IP 127.0.0.1 (default true). */
  tls?: boolean;
  /**
   * Pretend the bucket lives in this region: requests signed for another region get AWS's
   * `301 PermanentRedirect` with an `x-amz-bucket-region` header. Default: any region is accepted.
   */
  region?: string;
  /** Cap ListObjects pages at this many keys, to exercise pagination. */
  listPageSize?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  /** The answer's status, once sent. */
  status?: number;
}

export interface S3TestServer {
  /** host:port, as in an S3Location. */
  endpoint: string;
  useTls: boolean;
  /** PEM of the self-signed certificate (TLS only). */
  caFile?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Every request that reached the server, in arrival order. */
  requests: RecordedRequest[];
  /** Most requests that were open at once (arrived, response not yet finished). */
  peakInFlight: number;
  /** When set and returning true for a request, the server answers 500 InternalError instead. */
  failWhen?: (req: RecordedRequest) => boolean;
  close(): Promise<void>;
}

const run = promisify(execFile);

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  const useTls = options.tls ?? true;
  const dir = await mkdtemp(join(tmpdir(), 'restic-ts-s3rver-'));
  let server: Server | undefined;
  let app: S3rverApp | undefined;
  try {
    app = new S3rver({ silent: true, directory: join(dir, 'store'), vhostBuckets: false });
    patchS3rver(app, options.listPageSize);
    const s3 = app.callback();
    const requests: RecordedRequest[] = [];
    let queue = Promise.resolve();
    let inFlight = 0;
    const front: S3TestServer = {
      endpoint: '',
      useTls,
      accessKeyId: S3RVER_KEY,
      secretAccessKey: S3RVER_KEY,
      requests,
      peakInFlight: 0,
      close: async () => {
        await new Promise<void>((resolve) => {
          server!.close(() => resolve());
          server!.closeAllConnections();
        });
        app!.logger.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const seen: RecordedRequest = { method: req.method ?? '', url: req.url ?? '/' };
      requests.push(seen);
      front.peakInFlight = Math.max(front.peakInFlight, ++inFlight);
      res.once('close', () => {
        inFlight--;
        seen.status = res.statusCode;
      });
      const refusal = checkRequest(req, options.region) ?? (front.failWhen?.(seen) ? fault(500, 'InternalError', 'injected failure') : undefined);
      if (refusal) {
        // Drain the body so the client sees the answer instead of a reset connection.
        req.resume();
        res.writeHead(refusal.status, { 'content-type': 'application/xml', ...refusal.headers });
        res.end(req.method === 'HEAD' ? undefined : refusal.body);
        return;
      }
      // s3rver's filesystem store races with itself (a delete removes the directory that a concurrent
      // put or list is using), so requests reach it one at a time; clients still send them concurrently.
      queue = queue.then(
        () =>
          new Promise<void>((resolve) => {
            res.once('close', resolve);
            s3(req, res);
          }),
      );
    };
    if (useTls) {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { timeout: 30_000 });
      server = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, handler);
      front.caFile = cert;
    } else {
      server = createHttpServer(handler);
    }
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(0, '127.0.0.1', () => resolve());
    });
    front.endpoint = `127.0.0.1:${(listening.address() as AddressInfo).port}`;
    return front;
  } catch (err) {
    server?.close();
    app?.logger.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

interface Refusal {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

function fault(status: number, code: string, message: string, headers?: Record<string, string>): Refusal {
  return { status, headers, body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>` };
}

/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** Verifies an `Authorization: AWS4-HMAC-SHA256 …` header the way S3 does; returns why not, or undefined. */
function checkRequest(req: IncomingMessage, region: string | undefined): Refusal | undefined {
  const auth = req.headers.authorization ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return fault(403, 'AccessDenied', 'Access Denied');
  const [, keyId, date, scopeRegion, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  if (keyId !== S3RVER_KEY) return fault(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  if (region !== undefined && scopeRegion !== region) {
    return fault(301, 'PermanentRedirect', 'The bucket you are attempting to access must be addressed using the specified endpoint.', { 'x-amz-bucket-region': region });
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  const canonicalUri = path.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/');
  const canonicalQuery = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const k = decodeURIComponent((eq < 0 ? p : p.slice(0, eq)).replace(/\+/g, ' '));
      const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
      return [uriEncode(k), uriEncode(v)] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headerLines = signedHeaders
    .split(';')
    .map((h) => {
      const raw = req.headers[h];
      const value = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
      return `${h}:${value.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD');
  const canonicalRequest = [req.method, canonicalUri, canonicalQuery, headerLines, signedHeaders, payloadHash].join('\n');
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const scope = `${date}/${scopeRegion}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let key = hmac(`AWS4${S3RVER_KEY}`, date);
  for (const part of [scopeRegion, 's3', 'aws4_request']) key = hmac(key, part);
  if (hmac(key, toSign).toString('hex') !== signature) {
    return fault(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  return undefined;
}

/**
 * Works around two s3rver 3.7.1 bugs that real S3 does not have: `Range: bytes=0-0` returns the whole
 * object (it reads an end of 0 as "no end"), and ListObjectsV2 continuation tokens use DES, which
 * Node 20's OpenSSL 3 refuses (every truncated V2 listing fails with 500). V2 listings are served by
 * s3rver's V1 code with our own tokens (base64url of the last key returned).
 */
function patchS3rver(app: S3rverApp, pageSize: number | undefined): void {
  const store = app.store;
  const getObject = store.getObject.bind(store);
  store.getObject = async (bucket, key, options) => {
    if (options?.end !== 0) return getObject(bucket, key, options);
    const object = await getObject(bucket, key, { start: 0 });
    if (object?.content) {
      object.content.destroy();
      object.content = createReadStream(store.getResourcePath(bucket, key, 'object'), { start: 0, end: 0 });
      object.range = { start: 0, end: 0 };
    }
    return object;
  };

  const listV2: KoaMiddleware = async (ctx, next) => {
    const q = ctx.query;
    const isList = ctx.method === 'GET' && /^\/[^/]+\/?$/.test(ctx.path) && q['list-type'] === '2';
    if (!isList) return next();
    const token = typeof q['continuation-token'] === 'string' ? q['continuation-token'] : undefined;
    const { 'list-type': _type, 'continuation-token': _token, 'start-after': startAfter, ...rest } = q;
    const marker = token !== undefined ? Buffer.from(token, 'base64url').toString('utf8') : startAfter;
    const maxKeys = Math.min(pageSize ?? 1000, Number(q['max-keys'] ?? 1000));
    ctx.query = { ...rest, 'max-keys': String(maxKeys), ...(marker ? { marker } : {}) };
    await next();
    const result = (ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined)?.ListBucketResult;
    if (!result) return;
    const contents = (result.Contents ?? []) as { Key: string }[];
    const prefixes = (result.CommonPrefixes ?? []) as { Prefix: string }[];
    const last = contents.at(-1)?.Key ?? prefixes.at(-1)?.Prefix;
    delete result.Marker;
    delete result.NextMarker;
    Object.assign(result, {
      ContinuationToken: token,
      NextContinuationToken: result.IsTruncated && last ? Buffer.from(last).toString('base64url') : undefined,
      KeyCount: contents.length + prefixes.length,
    });
  };
  // After the logger and the XML encoder, so that this sees the response as an object.
  if (app.middleware.length !== 5) throw new Error(`unexpected s3rver middleware stack (${app.middleware.length} entries)`);
  app.middleware.splice(2, 0, listV2);
}

import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import type { Backend, FileInfo, FileType } from '../backend.js';
import { listConfig } from '../backend.js';
import type { BackendOptions, S3Location } from '../options.js';
import { NotFoundError, PermanentError, ResticError } from '../../errors.js';
import { Semaphore } from '../../util/concurrency.js';
import { resolveS3Settings, type S3Settings } from './settings.js';

/** Bodies above this size go up in parts, so one failed request does not resend everything. */
export const MULTIPART_THRESHOLD = 64 * 1024 * 1024;
export const PART_SIZE = 16 * 1024 * 1024;

/** The fields of an SDK error (or a Node network error) that decide how it is reported. */
interface RawError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number; headers?: Record<string, string | undefined> };
}

/** 4xx answers that S3 documents as transient. */
const RETRYABLE_CODES = new Set(['RequestTimeout', 'SlowDown', 'OperationAborted', 'TooManyRequests', 'InternalError']);
const AUTH_CODES = new Set([
  'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired',
  'AuthorizationHeaderMalformed', 'Forbidden',
]);
/** Node's codes for a certificate it does not trust: retrying cannot help. */
const TLS_CODES = /^(UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_|ERR_TLS_CERT_ALTNAME_INVALID)/;

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

function statusOf(e: RawError): number | undefined {
  return e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
}

/** The region S3 says the bucket lives in, when it answers a request sent to the wrong one. */
function bucketRegion(e: RawError): string | undefined {
  const status = statusOf(e);
  if (status !== 301 && status !== 400 && status !== 403) return undefined;
  return e.$response?.headers?.['x-amz-bucket-region'] || undefined;
}

function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

/**
 * A repository in an S3 bucket (AWS or a compatible server), under `<prefix>/` with restic's default
 * layout: `config`, `data/<2 hex>/<id>`, `index/<id>`, `keys/<id>`, `locks/<id>`, `snapshots/<id>`.
 */
export class S3Backend implements Backend {
  readonly location: string;
  private readonly settings: S3Settings;
  private readonly sem: Semaphore;
  private readonly agent: HttpAgent | HttpsAgent;
  private region: string;
  private client: S3Client;

  constructor(
    private readonly loc: S3Location,
    opts: BackendOptions = {},
  ) {
    this.settings = resolveS3Settings(loc, opts);
    this.location = `s3:${loc.useTls ? 'https' : 'http'}://${loc.endpoint}/${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
    this.sem = new Semaphore(this.settings.connections);
    const agentOptions = { keepAlive: true, maxSockets: this.settings.connections };
    this.agent = loc.useTls
      ? new HttpsAgent({ ...agentOptions, secureContext: this.settings.secureContext, rejectUnauthorized: this.settings.rejectUnauthorized })
      : new HttpAgent(agentOptions);
    this.region = this.settings.region;
    this.client = this.newClient();
  }

  private newClient(): S3Client {
    return new S3Client({
      region: this.region,
      endpoint: this.settings.endpointUrl,
      forcePathStyle: this.settings.forcePathStyle,
      credentials: this.settings.credentials,
      // The shared retry wrapper owns retries.
      maxAttempts: 1,
      // Checksums only where S3 demands them: many S3-compatible servers reject the newer CRC headers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        [this.loc.useTls ? 'httpsAgent' : 'httpAgent']: this.agent,
        connectionTimeout: 30_000,
        socketTimeout: 120_000,
      },
    });
  }

  private key(type: FileType, name: string): string {
    const rel = type === 'config' ? 'config' : type === 'data' ? `data/${name.slice(0, 2)}/${name}` : `${type}/${name}`;
    return this.loc.prefix ? `${this.loc.prefix}/${rel}` : rel;
  }

  private dir(type: Exclude<FileType, 'config'>): string {
    return this.loc.prefix ? `${this.loc.prefix}/${type}/` : `${type}/`;
  }

  /**
   * Runs one request within the connection limit. When S3 answers that the bucket lives in another
   * region, switches every later request to that region and repeats this one once. Throws SDK errors.
   */
  private attempt<T>(op: (client: S3Client) => Promise<T>): Promise<T> {
    return this.sem.run(async () => {
      const used = this.region;
      try {
        return await op(this.client);
      } catch (err) {
        const region = bucketRegion(err as RawError);
        if (region === undefined || region === used) throw err;
        if (this.region !== region) {
          this.region = region;
          this.client = this.newClient();
        }
        return await op(this.client);
      }
    });
  }

  /** attempt(), with errors mapped to ResticError kinds; `what` names the operation and file. */
  private async request<T>(what: string, op: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await this.attempt(op);
    } catch (err) {
      throw this.describe(err, what);
    }
  }

  private describe(err: unknown, what: string): ResticError {
    if (err instanceof ResticError) return err;
    const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as RawError;
    const status = statusOf(e);
    const code = e.code ?? e.name ?? 'Error';
    // Answers without a body (every HEAD) leave the SDK only the status: "Unknown" or the number.
    const detail = code === 'Unknown' || /^\d+$/.test(code) ? `HTTP ${status}` : `${code}, HTTP ${status}`;
    const where = `s3 ${this.loc.endpoint}/${this.loc.bucket}: ${what}`;
    if (status === undefined) {
      if (TLS_CODES.test(code)) return new PermanentError(`${where}: TLS certificate not trusted (${code}); use --cacert or --insecure-tls`);
      return new ResticError(`${where}: ${oneLine(e.message ?? code)}`);
    }
    if (status === 404) {
      return new NotFoundError(code === 'NoSuchBucket' ? `${where}: bucket ${this.loc.bucket} does not exist` : `${where}: does not exist`);
    }
    if (status === 401 || status === 403 || AUTH_CODES.has(code)) return new PermanentError(`${where}: access denied (${detail})`);
    if (status === 416) return new PermanentError(`${where}: range is past the end of the file`);
    // Redirects that could not be followed and client errors do not get better with a retry.
    if (status < 500 && status !== 408 && status !== 429 && !RETRYABLE_CODES.has(code)) {
      return new PermanentError(`${where}: request refused (${detail})`);
    }
    return new ResticError(`${where}: server error (${detail})`);
  }

  async create(): Promise<void> {
    const Bucket = this.loc.bucket;
    let exists = true;
    try {
      await this.attempt((c) => c.send(new HeadBucketCommand({ Bucket })));
    } catch (err) {
      // As restic: a 403 may just mean no ListBucket permission; the config check below finds bad credentials.
      const status = statusOf(err as RawError);
      if (status === 404) exists = false;
      else if (status !== 403) throw this.describe(err, 'check bucket');
    }
    if (!exists) {
      const config = this.region === 'us-east-1' ? undefined : { LocationConstraint: this.region as BucketLocationConstraint };
      try {
        await this.attempt((c) => c.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: config })));
      } catch (err) {
        if ((err as RawError).name !== 'BucketAlreadyOwnedByYou') throw this.describe(err, 'create bucket');
      }
    }
    try {
      await this.stat('config', 'config');
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    throw new PermanentError(`repository at ${this.location} already exists (config file present)`);
  }

  async save(type: FileType, name: string, data: Uint8Array): Promise<void> {
    if (data.length > MULTIPART_THRESHOLD) return this.saveMultipart(type, name, data);
    const input = {
      Bucket: this.loc.bucket,
      Key: this.key(type, name),
      Body: data,
      ContentLength: data.length,
      ContentType: 'application/octet-stream',
      ContentMD5: md5(data),
    };
    await this.request(`save ${type}/${name}`, (c) => c.send(new PutObjectCommand(input)));
  }

  private async saveMultipart(type: FileType, name: string, data: Uint8Array): Promise<void> {
    const what = `save ${type}/${name}`;
    const target = { Bucket: this.loc.bucket, Key: this.key(type, name) };
    const created = await this.request(what, (c) => c.send(new CreateMultipartUploadCommand({ ...target, ContentType: 'application/octet-stream' })));
    const UploadId = created.UploadId;
    if (!UploadId) throw new ResticError(`s3 ${this.loc.endpoint}/${this.loc.bucket}: ${what}: server returned no upload id`);
    const count = Math.ceil(data.length / PART_SIZE);
    const etags = new Array<string>(count);
    let next = 0;
    let failure: unknown;
    // Workers stop taking parts after the first failure; all in-flight parts finish before the abort.
    const worker = async () => {
      while (failure === undefined && next < count) {
        const i = next++;
        const body = data.subarray(i * PART_SIZE, Math.min(data.length, (i + 1) * PART_SIZE));
        const part = { ...target, UploadId, PartNumber: i + 1, Body: body, ContentLength: body.length, ContentMD5: md5(body) };
        try {
          const res = await this.request(`${what} (part ${i + 1}/${count})`, (c) => c.send(new UploadPartCommand(part)));
          if (!res.ETag) throw new ResticError(`s3 ${this.loc.endpoint}/${this.loc.bucket}: ${what}: server returned no ETag for part ${i + 1}`);
          etags[i] = res.ETag;
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.connections, count) }, worker));
    if (failure === undefined) {
      try {
        const Parts = etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 }));
        await this.request(what, (c) => c.send(new CompleteMultipartUploadCommand({ ...target, UploadId, MultipartUpload: { Parts } })));
        return;
      } catch (err) {
        failure = err;
      }
    }
    // Parts of an unfinished upload are billed until aborted.
    await this.request(`abort ${what}`, (c) => c.send(new AbortMultipartUploadCommand({ ...target, UploadId }))).catch(() => undefined);
    throw failure;
  }

  async load(type: FileType, name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const file = `${type}/${name}`;
    if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
      throw new PermanentError(`s3 ${this.loc.endpoint}/${this.loc.bucket}: load ${file}: invalid range ${offset}+${length ?? 'rest'}`);
    }
    // S3 cannot express an empty range and refuses `bytes=<size>-`: those cases need the size first.
    if (length === 0 || (length === undefined && offset > 0)) {
      const { size } = await this.stat(type, name);
      if (offset > size) throw new PermanentError(`s3 ${this.loc.endpoint}/${this.loc.bucket}: load ${file}: offset ${offset} is past the end of the file (size ${size})`);
      if (length === 0 || offset === size) return new Uint8Array(0);
      length = size - offset;
    }
    const Range = length === undefined ? undefined : `bytes=${offset}-${offset + length - 1}`;
    const input = { Bucket: this.loc.bucket, Key: this.key(type, name), Range };
    const { body, contentRange, contentLength } = await this.request(`load ${file}`, async (c) => {
      const res = await c.send(new GetObjectCommand(input));
      if (!res.Body) throw new ResticError(`s3 ${this.loc.endpoint}/${this.loc.bucket}: load ${file}: response has no body`);
      return { body: await res.Body.transformToByteArray(), contentRange: res.ContentRange, contentLength: res.ContentLength };
    });
    const want = length ?? contentLength;
    if (want !== undefined && body.length !== want) {
      // For a range that starts inside the file but ends past it, S3 sends what exists (no 416).
      const size = /\/(\d+)$/.exec(contentRange ?? '')?.[1];
      if (size !== undefined && offset + want > Number(size)) {
        throw new PermanentError(`s3 ${this.loc.endpoint}/${this.loc.bucket}: load ${file}: range ${offset}+${want} is past the end of the file (size ${size})`);
      }
      throw new ResticError(`s3 ${this.loc.endpoint}/${this.loc.bucket}: load ${file}: got ${body.length} bytes, expected ${want}`);
    }
    return body;
  }

  async stat(type: FileType, name: string): Promise<FileInfo> {
    const input = { Bucket: this.loc.bucket, Key: this.key(type, name) };
    const res = await this.request(`stat ${type}/${name}`, (c) => c.send(new HeadObjectCommand(input)));
    return { name, size: res.ContentLength ?? 0 };
  }

  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    if (type === 'config') {
      yield* listConfig(this);
      return;
    }
    const dir = this.dir(type);
    // data/ holds one level of 2-hex subdirectories; the other types are flat, so sub-"directories"
    // (common prefixes) are left out as restic does.
    const Delimiter = type === 'data' ? undefined : '/';
    let ContinuationToken: string | undefined;
    do {
      if (signal?.aborted) return;
      const input = { Bucket: this.loc.bucket, Prefix: dir, Delimiter, ContinuationToken };
      let page;
      try {
        page = await this.request(`list ${type}`, (c) => c.send(new ListObjectsV2Command(input), { abortSignal: signal }));
      } catch (err) {
        if (signal?.aborted) return;
        throw err;
      }
      for (const obj of page.Contents ?? []) {
        if (signal?.aborted) return;
        const rel = obj.Key?.slice(dir.length) ?? '';
        if (rel === '' || rel.endsWith('/')) continue;
        yield { name: rel.slice(rel.lastIndexOf('/') + 1), size: obj.Size ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async remove(type: FileType, name: string): Promise<void> {
    const input = { Bucket: this.loc.bucket, Key: this.key(type, name) };
    try {
      await this.request(`remove ${type}/${name}`, (c) => c.send(new DeleteObjectCommand(input)));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.agent.destroy();
  }
}

import type { SecureContext } from 'node:tls';
import type { BackendOptions, S3Location } from '../options.js';
import { PermanentError, UsageError } from '../../errors.js';
import { readCaCertificates, trustContext } from '../trust.js';

/** Everything the S3 backend derives from its location and options, before any request is made. */
export interface S3Settings {
  /** Base URL of a custom endpoint; undefined lets the SDK pick AWS's regional endpoint. */
  endpointUrl?: string;
  region: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  connections: number;
  /** Trusted CAs (Node's defaults plus --cacert files); undefined keeps Node's default context. */
  secureContext?: SecureContext;
  rejectUnauthorized: boolean;
}

const AWS_HOST = /(^|\.)amazonaws\.com(\.cn)?(:\d+)?$/;
/** s3.<region>.amazonaws.com and the older s3-<region>.amazonaws.com name their region. */
const AWS_REGIONAL_HOST = /^s3[.-](?!external-1)([a-z0-9-]+)\.amazonaws\.com(\.cn)?(:\d+)?$/;

export function resolveS3Settings(loc: S3Location, opts: BackendOptions): S3Settings {
  const env = opts.env ?? process.env;
  const ext = opts.extended ?? {};
  const accessKeyId = env.AWS_ACCESS_KEY_ID ?? '';
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY ?? '';
  if (!accessKeyId || !secretAccessKey) {
    throw new PermanentError(`s3 ${loc.endpoint}/${loc.bucket}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set`);
  }
  const sessionToken = env.AWS_SESSION_TOKEN || undefined;

  const isAws = AWS_HOST.test(loc.endpoint);
  const hostRegion = AWS_REGIONAL_HOST.exec(loc.endpoint)?.[1];
  const given = ext['s3.region'] || env.AWS_DEFAULT_REGION || env.AWS_REGION || hostRegion;

  const lookup = (ext['s3.bucket-lookup'] ?? 'auto').toLowerCase();
  if (lookup !== 'auto' && lookup !== 'dns' && lookup !== 'path') {
    throw new UsageError(`bad bucket-lookup style "${lookup}": must be "auto", "path" or "dns"`);
  }
  // As minio-go: virtual-host style for AWS unless the bucket name cannot be a TLS host label.
  const dnsOk = !(loc.useTls && loc.bucket.includes('.'));
  const forcePathStyle = lookup === 'path' || (lookup === 'auto' && !(isAws && dnsOk));

  const connections = Number(ext['s3.connections'] ?? 5);
  if (!Number.isInteger(connections) || connections < 1) {
    throw new UsageError(`invalid s3.connections "${ext['s3.connections']}": must be a positive integer`);
  }

  const cacerts = readCaCertificates(opts.cacert);
  return {
    // The global AWS name is better left to the SDK, which then picks the bucket's regional endpoint.
    endpointUrl: loc.endpoint === 's3.amazonaws.com' && loc.useTls ? undefined : `${loc.useTls ? 'https' : 'http'}://${loc.endpoint}`,
    region: given ?? 'us-east-1',
    forcePathStyle,
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
    connections,
    secureContext: loc.useTls ? trustContext(cacerts) : undefined,
    rejectUnauthorized: !opts.insecureTls,
  };
}

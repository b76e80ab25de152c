import { describe } from 'vitest';
import { S3Backend } from '../src/backends/s3/s3.js';
import type { BackendOptions, S3Location } from '../src/backends/options.js';
import { backendConformance } from './backends/conformance.js';
import { startS3Server, type S3TestServer } from './helpers/s3server.js';

function open(server: S3TestServer, bucket: string, prefix: string, extra: BackendOptions = {}): S3Backend {
  const loc: S3Location = { kind: 's3', endpoint: server.endpoint, useTls: server.useTls, bucket, prefix };
  return new S3Backend(loc, {
    env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey },
    cacert: server.caFile ? [server.caFile] : undefined,
    ...extra,
  });
}

function conformanceOn(name: string, tls: boolean, prefix: string): void {
  backendConformance(name, async () => {
    const server = await startS3Server({ tls, listPageSize: 7 });
    const backend = open(server, 'conformance', prefix);
    try {
      await backend.create();
    } catch (err) {
      await server.close();
      throw err;
    }
    return { backend, cleanup: () => server.close() };
  });
}

describe('S3Backend on s3rver', () => {
  conformanceOn('s3 (TLS, prefix)', true, 'some/prefix');
  conformanceOn('s3 (TLS, bucket root)', true, '');
  conformanceOn('s3 (plain http)', false, 'repo');
});

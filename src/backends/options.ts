/** Parsed repository locations, one kind per backend (restic's location syntax). */
export type Location = LocalLocation | MemoryLocation | RestLocation | S3Location | SftpLocation;

export interface LocalLocation {
  kind: 'local';
  path: string;
}

export interface MemoryLocation {
  kind: 'memory';
}

export interface RestLocation {
  kind: 'rest';
  /** Base URL of the repository without credentials, ending in "/". */
  url: string;
  /** From the URL, else REST_SERVER_USERNAME / REST_SERVER_PASSWORD. */
  username?: string;
  password?: string;
}

export interface S3Location {
  kind: 's3';
  /** Host[:port] of the endpoint, e.g. "s3.amazonaws.com" or "127.0.0.1:9000". */
  endpoint: string;
  /** False for `s3:http://…`. */
  useTls: boolean;
  bucket: string;
  /** Object key prefix inside the bucket, without leading or trailing "/" ("" for the bucket root). */
  prefix: string;
}

export interface SftpLocation {
  kind: 'sftp';
  user?: string;
  host: string;
  port?: number;
  /** Absolute path, or relative to the login directory. */
  path: string;
}

/** Everything besides the location that a backend may need; all fields optional for library users. */
export interface BackendOptions {
  /** Environment to read credentials from (AWS_*, REST_SERVER_*, SSH_KEY*); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** PEM files of extra CA certificates to trust (restic's --cacert). */
  cacert?: string[];
  /** Skip TLS certificate verification (restic's --insecure-tls). */
  insecureTls?: boolean;
  /** restic's `-o key=value` backend options, e.g. { "rest.connections": "5", "s3.region": "eu-west-1" }. */
  extended?: Record<string, string>;
}

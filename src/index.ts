// Public API of restic-ts. Everything a library user needs is exported from here.
export * from './errors.js';
export type { Backend, FileInfo, FileType } from './backends/backend.js';
export { FILE_TYPES } from './backends/backend.js';
export { LocalBackend } from './backends/local/local.js';
export { MemoryBackend } from './backends/memory/memory.js';
export { openBackend, parseLocation, redactLocation, type OpenBackendOptions } from './backends/location.js';
export type { Location, LocalLocation, MemoryLocation, RestLocation, S3Location, SftpLocation, BackendOptions } from './backends/options.js';
export { RetryBackend, type RetryOptions } from './backends/retry.js';
export { RestBackend } from './backends/rest/client.js';
export { createRestServer, type RestServerOptions, type RestServer } from './backends/rest/server.js';
// S3Backend and SftpBackend live in the subpath exports "restic-ts/s3" and "restic-ts/sftp" so that
// importing the library does not load the AWS SDK or ssh2; openBackend() loads them on demand.

export { Repository, type RepositoryOptions, type InitOptions, type SaveBlobResult, type UnpackedType } from './repo/repository.js';
export type { Config } from './repo/config.js';
export type { Id } from './repo/id.js';
export { isId, shortId } from './repo/id.js';
export type { Node, NodeType } from './repo/node.js';
export type { Snapshot, NewSnapshot } from './repo/snapshot.js';
export { snapshotToJSON } from './repo/snapshot.js';
export type { BlobType, PackedBlob } from './repo/pack.js';
export { MasterIndex, type IndexFile, type BlobLocation } from './repo/index-file.js';
export type { Lock } from './repo/lock.js';
export { withLock, LockedError } from './repo/locking.js';
export { encodeTree, decodeTree, sortNodes } from './repo/tree.js';
export type { CompressionMode } from './repo/compression.js';

export { Chunker, parsePolynomial, formatPolynomial, randomPolynomial, type Polynomial } from './chunker/index.js';
export { encrypt, decrypt, type MasterKey } from './crypto/index.js';

export { walkTree, type WalkEntry } from './walker/walker.js';
export { compilePatterns, matchPattern, readPatternFiles, type Matcher, type CompileOptions } from './filter/index.js';
export {
  SnapshotQuery,
  groupSnapshots,
  latestSnapshots,
  parseGroupBy,
  parseTagList,
  type SnapshotFilter,
  type SnapshotGroup,
  type SnapshotGroupKey,
  type GroupBy,
} from './repo/snapshot-filter.js';

export { init, type InitCommandOptions } from './commands/init.js';
export {
  backup,
  type BackupOptions,
  type BackupResult,
  type BackupStats,
  type BackupStatus,
  type BackupItemEvent,
  type BackupErrorEvent,
  type ScanTotals,
} from './commands/backup.js';
export { restore, splitSnapshotRef, type RestoreCommandOptions, type RestoreResult } from './commands/restore.js';
export type { RestoreStats } from './restorer/restorer.js';
export { listSnapshots, matchesFilter, selectSnapshots, snapshotGroups, type SelectOptions, type Selection, type SnapshotsOptions, type SnapshotsResult } from './commands/snapshots.js';
export { tag, checkTagOptions, type TagOptions, type TagResult } from './commands/tag.js';
export { copy, type CopyOptions, type CopyResult, type CopyEvent } from './commands/copy.js';
export { ls, type LsOptions, type LsResult } from './commands/ls.js';
export { find, type FindOptions, type FindMatch, type FindResult } from './commands/find.js';
export { dump, type DumpOptions, type DumpResult } from './commands/dump.js';
export { diff, type DiffOptions, type DiffResult, type DiffChange, type DiffStats } from './commands/diff.js';
export { stats, STATS_MODES, type StatsMode, type StatsOptions, type StatsResult } from './commands/stats.js';
export { cat, CAT_KINDS, type CatKind } from './commands/cat.js';
export { check, type CheckOptions, type CheckResult } from './commands/check.js';
export { unlock } from './commands/unlock.js';

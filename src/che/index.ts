// Public API of the Eclipse Che backup/restore layer. A separate entry point from src/index.ts because it loads
// @kubernetes/client-node, which plain restic-ts users should not pay for.
export * from './types.js';
export { DEFAULT_TIMEOUTS, findServerConfiguration, type CheTimeouts, type InternalServerOptions } from './common.js';
export {
  DEFAULT_CONTROLLER_TIMEOUTS,
  startCheController,
  type CheController,
  type CheControllerOptions,
  type CheControllerTimeouts,
} from './controller.js';
export { collectCheData, runBackup, type CollectOptions, type CollectResult, type ExternalDatabasePolicy, type RunBackupOptions, type RunBackupResult } from './exporter.js';
export { chooseSnapshot, readBackupContent, runRestore, type BackupContent, type RunRestoreOptions, type RunRestoreResult } from './importer.js';
export { DEFAULT_SERVER_IMAGE, ensureInternalServer, type EnsureInternalServerOptions } from './internal-server.js';
export { CheKube, KubeApiError } from './kube.js';
export { openServerRepository, resolveServerConfig, serverKind, type OpenedRepository, type ResolvedServer, type SecretReader, type ServerKind } from './server-config.js';
export { CheAbortedError, CheTimeoutError } from './util.js';

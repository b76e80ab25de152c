/** Types and names of the Che backup/restore custom resources (org.eclipse.che/v1), as che-operator 7.33–7.42 defined them. */

export const CHE_GROUP = 'org.eclipse.che';
export const CHE_VERSION = 'v1';
export const CHE_API_VERSION = `${CHE_GROUP}/${CHE_VERSION}`;

export const PLURALS = {
  backupServerConfiguration: 'chebackupserverconfigurations',
  backup: 'checlusterbackups',
  restore: 'checlusterrestores',
  cheCluster: 'checlusters',
} as const;

/** Secret keys read from the Secrets the configuration names. */
export const SECRET_KEYS = {
  repoPassword: 'repo-password',
  username: 'username',
  password: 'password',
  awsAccessKeyId: 'awsAccessKeyId',
  awsSecretAccessKey: 'awsSecretAccessKey',
  sshPrivateKey: 'ssh-privatekey',
  /** Our addition: pins the SFTP server's host key (OpenSSH known_hosts lines). */
  knownHosts: 'known_hosts',
} as const;

export const LABELS = {
  partOf: 'app.kubernetes.io/part-of',
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

/** `app.kubernetes.io/part-of` of Che's own objects. */
export const CHE_PART_OF = 'che.eclipse.org';
/** `app.kubernetes.io/part-of` of backup objects, which a restore never deletes. */
export const BACKUP_PART_OF = 'backup.che.eclipse.org';

export interface RestServerConfig {
  /** http or https; default https. */
  protocol?: string;
  hostname: string;
  port?: number;
  repositoryPath?: string;
  repositoryPasswordSecretRef: string;
  credentialsSecretRef?: string;
}

export interface AwsS3ServerConfig {
  /** http or https; unset means restic's default (https). */
  protocol?: string;
  /** Default s3.amazonaws.com. */
  hostname?: string;
  port?: number;
  /** bucket[/prefix] */
  repositoryPath: string;
  repositoryPasswordSecretRef: string;
  awsAccessKeySecretRef: string;
}

export interface SftpServerConfig {
  username: string;
  hostname: string;
  port?: number;
  repositoryPath: string;
  repositoryPasswordSecretRef: string;
  sshKeySecretRef: string;
}

export interface CheBackupServerConfigurationSpec {
  rest?: RestServerConfig;
  awss3?: AwsS3ServerConfig;
  sftp?: SftpServerConfig;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
  managedFields?: unknown[];
}

export interface CheBackupServerConfiguration {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CheBackupServerConfigurationSpec;
}

export type OperationState = 'InProgress' | 'Succeeded' | 'Failed';

/** Status of CheClusterBackup and CheClusterRestore (restore leaves snapshotId/cheVersion to what it restored). */
export interface OperationStatus {
  message?: string;
  stage?: string;
  state?: OperationState;
  snapshotId?: string;
  cheVersion?: string;
}

export interface CheClusterBackupSpec {
  useInternalBackupServer?: boolean;
  backupServerConfigRef?: string;
}

export interface CheClusterBackup {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CheClusterBackupSpec;
  status?: OperationStatus;
}

export interface CheClusterRestoreSpec {
  backupServerConfigRef?: string;
  /** Snapshot id or unique prefix; default the latest Che snapshot. */
  snapshotId?: string;
}

export interface CheClusterRestore {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CheClusterRestoreSpec;
  status?: OperationStatus;
}

/** The parts of Che's CheCluster (v1) that backup and restore read; everything else is kept as it is. */
export interface CheClusterSpec {
  server?: {
    cheFlavor?: string;
    cheHost?: string;
    serverExposureStrategy?: string;
    [key: string]: unknown;
  };
  database?: {
    externalDb?: boolean;
    chePostgresDb?: string;
    chePostgresUser?: string;
    chePostgresSecret?: string;
    [key: string]: unknown;
  };
  auth?: {
    externalIdentityProvider?: boolean;
    identityProviderURL?: string;
    identityProviderPostgresSecret?: string;
    identityProviderSecret?: string;
    [key: string]: unknown;
  };
  k8s?: {
    ingressDomain?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface CheCluster {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CheClusterSpec;
  status?: {
    cheVersion?: string;
    /** "Available" once Che is up. */
    cheClusterRunning?: string;
    [key: string]: unknown;
  };
}

/** `backup-info.yaml` at the top of every snapshot. */
export interface BackupMetadata {
  metadataFileVersion: 'v1';
  creationDate: string;
  cheVersion: string;
  infrastructure: string;
  appsDomain: string;
  namespace: string;
}

/** Files and folders of a snapshot, relative to its top. */
export const SNAPSHOT_LAYOUT = {
  metadata: 'backup-info.yaml',
  cheCluster: 'che-cr.yaml',
  databases: 'db',
  configMaps: 'configmaps',
  secrets: 'secrets',
} as const;

/** Tag every Che snapshot carries (plus the namespace). */
export const SNAPSHOT_TAG = 'che';

/** Stage strings as che-operator reported them (status.stage). */
export const BACKUP_STAGES = {
  internalServer: 'Setting up internal backup server',
  repository: 'Connecting to backup repository',
  collect: 'Collecting Che installation data',
  send: 'Sending backup snapshot to backup server',
} as const;

export const RESTORE_STAGES = {
  download: 'Downloading backup from backup server',
  deleteCheCluster: 'Requesting deletion of existing Che',
  cleanup: 'Cleaning up existing Che',
  objects: 'Restoring Che related cluster objects',
  cheCluster: 'Restoring Che Custom Resource',
  waitClean: 'Waiting until clean Che is ready',
  database: 'Restoring Che database',
  waitReady: 'Waiting until Che is ready',
} as const;

export type BackupStage = (typeof BACKUP_STAGES)[keyof typeof BACKUP_STAGES];
export type RestoreStage = (typeof RESTORE_STAGES)[keyof typeof RESTORE_STAGES];

/** Names of the internal backup server's objects (as che-operator named them). */
export const INTERNAL_SERVER = {
  deployment: 'backup-rest-server-deployment',
  service: 'backup-rest-server-service',
  pvc: 'backup-rest-server-pvc',
  passwordSecret: 'backup-rest-server-repo-password',
  configuration: 'backup-rest-server-configuration',
  component: 'che-backup-internal-rest-server',
  port: 8000,
  repositoryPath: 'che',
} as const;

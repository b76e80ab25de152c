/** Counters of one backup run, reported in the summary. */
export interface BackupStats {
  files: number;
  dirs: number;
  /** Plaintext bytes of file content read. */
  bytesProcessed: number;
  /** Data blobs newly stored. */
  dataBlobs: number;
  /** Tree blobs newly stored. */
  treeBlobs: number;
  /** Bytes newly stored (encrypted, after compression). */
  dataAdded: number;
}

export function emptyStats(): BackupStats {
  return { files: 0, dirs: 0, bytesProcessed: 0, dataBlobs: 0, treeBlobs: 0, dataAdded: 0 };
}

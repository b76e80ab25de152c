/** What saving one item (file or directory) added to the repository (restic's archiver.ItemStats). */
export interface ItemStats {
  /** New data blobs, their plaintext bytes and their bytes in the repository (compressed + encrypted). */
  dataBlobs: number;
  dataSize: number;
  dataSizeInRepo: number;
  /** The same for tree blobs. */
  treeBlobs: number;
  treeSize: number;
  treeSizeInRepo: number;
}

export function emptyItemStats(): ItemStats {
  return { dataBlobs: 0, dataSize: 0, dataSizeInRepo: 0, treeBlobs: 0, treeSize: 0, treeSizeInRepo: 0 };
}

export function addItemStats(to: ItemStats, s: ItemStats): void {
  to.dataBlobs += s.dataBlobs;
  to.dataSize += s.dataSize;
  to.dataSizeInRepo += s.dataSizeInRepo;
  to.treeBlobs += s.treeBlobs;
  to.treeSize += s.treeSize;
  to.treeSizeInRepo += s.treeSizeInRepo;
}

export interface ChangeCounts {
  new: number;
  changed: number;
  unmodified: number;
}

/** The summary restic prints after a backup (ui/backup Summary). */
export interface BackupStats extends ItemStats {
  files: ChangeCounts;
  dirs: ChangeCounts;
  /** Sum of the sizes of all files in the snapshot (read or reused from the parent). */
  processedBytes: number;
  /** File content bytes actually read from disk (not in restic's summary: shows what parent reuse saved). */
  bytesRead: number;
  /** Errors reported for items that were skipped or could not be read completely. */
  errors: number;
}

export function emptyBackupStats(): BackupStats {
  return {
    ...emptyItemStats(),
    files: { new: 0, changed: 0, unmodified: 0 },
    dirs: { new: 0, changed: 0, unmodified: 0 },
    processedBytes: 0,
    bytesRead: 0,
    errors: 0,
  };
}

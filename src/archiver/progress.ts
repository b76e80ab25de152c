// Counting what a backup does, as restic 0.14's ui/backup Progress does: the summary (new, changed,
// unmodified files and directories, bytes added), and a status (done versus the scanner's totals,
// files being read, ETA) handed to a listener at a bounded rate.
import type { Node } from '../repo/node.js';
import type { ItemError } from './item-error.js';
import { nodesEqual } from './parent.js';
import { addItemStats, emptyBackupStats, type BackupStats, type ItemStats } from './stats.js';

/** What the scanner has found so far. */
export interface ScanTotals {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
}

/** One status update (restic's `--json` "status" message carries the same numbers). */
export interface BackupStatus {
  secondsElapsed: number;
  /** 0 until the scanner has finished. */
  secondsRemaining: number;
  /** bytesDone / totalBytes, 0 while unknown. */
  percentDone: number;
  totalFiles: number;
  filesDone: number;
  totalBytes: number;
  bytesDone: number;
  errorCount: number;
  /** Snapshot paths of the files being read right now, sorted. */
  currentFiles: string[];
  /** The totals are final. */
  scanFinished: boolean;
}

export interface BackupItemEvent {
  action: 'new' | 'unchanged' | 'modified';
  type: 'file' | 'dir';
  /** Snapshot path; directories end in "/". */
  item: string;
  durationMs: number;
  stats: ItemStats;
}

export interface BackupErrorEvent {
  /** Absolute path of the file or directory. */
  item: string;
  error: ItemError;
  /** "scan" errors come from the scanner (the archiver reports the same item again). */
  during: 'scan' | 'archival';
}

export interface ProgressListeners {
  onStatus?: (status: BackupStatus) => void;
  /** Minimum time between two onStatus calls (default 100 ms). */
  statusIntervalMs?: number;
  onItem?: (event: BackupItemEvent) => void;
  onError?: (event: BackupErrorEvent) => void;
  onScanFinished?: (totals: ScanTotals, durationMs: number) => void;
}

/** Receives the archiver's and the scanner's callbacks; owns the summary and the status timer. */
export class Progress {
  readonly summary: BackupStats = emptyBackupStats();
  readonly totals: ScanTotals = { files: 0, dirs: 0, others: 0, bytes: 0 };
  private readonly processed = { files: 0, dirs: 0, bytes: 0 };
  private readonly current = new Set<string>();
  private scanFinished = false;
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = performance.now();

  constructor(private readonly listeners: ProgressListeners = {}) {}

  /** Starts periodic status updates (when someone listens). */
  start(): void {
    if (!this.listeners.onStatus) return;
    this.timer = setInterval(() => {
      if (this.started) this.emit();
    }, this.listeners.statusIntervalMs ?? 100);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  private touch(): void {
    if (this.started) return;
    this.started = true;
    // The first update goes out at once, so even a short backup reports once.
    if (this.timer) this.emit();
  }

  status(): BackupStatus {
    const secs = Math.floor(this.elapsedMs() / 1000);
    let remaining = 0;
    const todo = this.totals.bytes - this.processed.bytes;
    if (this.scanFinished && this.processed.bytes > 0 && todo > 0) remaining = Math.floor((secs / this.processed.bytes) * todo);
    return {
      secondsElapsed: secs,
      secondsRemaining: remaining,
      percentDone: this.totals.bytes > 0 ? this.processed.bytes / this.totals.bytes : 0,
      totalFiles: this.totals.files,
      filesDone: this.processed.files,
      totalBytes: this.totals.bytes,
      bytesDone: this.processed.bytes,
      errorCount: this.summary.errors,
      currentFiles: [...this.current].sort(),
      scanFinished: this.scanFinished,
    };
  }

  private emit(): void {
    this.listeners.onStatus?.(this.status());
  }

  startFile(item: string): void {
    this.current.add(item);
    this.touch();
  }

  completeBlob(bytes: number): void {
    this.processed.bytes += bytes;
    this.touch();
  }

  scanUpdated(): void {
    this.touch();
  }

  scanDone(): void {
    this.scanFinished = true;
    this.listeners.onScanFinished?.({ ...this.totals }, this.elapsedMs());
  }

  error(item: string, error: ItemError, during: 'scan' | 'archival'): void {
    if (during === 'archival') this.summary.errors++;
    this.listeners.onError?.({ item, error, during });
    this.touch();
  }

  /** restic's CompleteItem: `current` undefined only for the snapshot root (adds its tree stats). */
  completeItem(item: string, previous: Node | undefined, current: Node | undefined, stats: ItemStats, durationMs: number): void {
    addItemStats(this.summary, stats);
    if (!current) return;
    this.summary.processedBytes += current.size ?? 0;
    if (current.type !== 'file' && current.type !== 'dir') return;
    if (current.type === 'file') {
      this.processed.files++;
      this.current.delete(item);
    } else this.processed.dirs++;
    const counts = current.type === 'file' ? this.summary.files : this.summary.dirs;
    let action: BackupItemEvent['action'];
    if (!previous) {
      action = 'new';
      counts.new++;
    } else if (nodesEqual(previous, current)) {
      action = 'unchanged';
      counts.unmodified++;
    } else {
      action = 'modified';
      counts.changed++;
    }
    this.listeners.onItem?.({ action, type: current.type, item, durationMs, stats });
    this.touch();
  }

  /** A file that could not be saved leaves the list of files being read. */
  fileFailed(item: string): void {
    this.current.delete(item);
  }
}

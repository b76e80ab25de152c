// `restic backup` output as restic 0.14 prints it: a status area on a terminal, messages by verbosity,
// the summary; or, with --json, "status" / "verbose_status" / "error" / "summary" JSON lines.
import type { BackupErrorEvent, BackupItemEvent, BackupResult, BackupStatus, ScanTotals } from '../commands/backup.js';
import { formatBytes, formatPercent, formatSeconds, goJSON, padLeft, padRight } from './format.js';
import type { StatusTerminal } from './terminal.js';

export interface BackupPrinterOptions {
  json: boolean;
  /** 0 --quiet, 1 default, 2 -v, 3 -vv (restic's verbosity levels). */
  verbosity: number;
}

export class BackupPrinter {
  constructor(
    private readonly term: StatusTerminal,
    private readonly opts: BackupPrinterOptions,
  ) {}

  /** Normal messages (hidden by --quiet). */
  p(message: string): void {
    if (this.opts.verbosity >= 1) this.term.print(message);
  }

  /** -v messages. */
  v(message: string): void {
    if (this.opts.verbosity >= 2) this.term.print(message);
  }

  /** -vv messages. */
  vv(message: string): void {
    if (this.opts.verbosity >= 3) this.term.print(message);
  }

  status(s: BackupStatus): void {
    if (this.opts.json) {
      const line: Record<string, unknown> = { message_type: 'status' };
      if (s.secondsElapsed) line.seconds_elapsed = s.secondsElapsed;
      if (s.secondsRemaining) line.seconds_remaining = s.secondsRemaining;
      line.percent_done = s.percentDone;
      if (s.totalFiles) line.total_files = s.totalFiles;
      if (s.filesDone) line.files_done = s.filesDone;
      if (s.totalBytes) line.total_bytes = s.totalBytes;
      if (s.bytesDone) line.bytes_done = s.bytesDone;
      if (s.errorCount) line.error_count = s.errorCount;
      if (s.currentFiles.length) line.current_files = s.currentFiles;
      this.term.print(goJSON(line));
      return;
    }
    // Small files wait for their blobs in numbers; like restic's two readers, show two at most.
    this.term.setStatus([statusLine(s), ...s.currentFiles.slice(0, 2)]);
  }

  error(e: BackupErrorEvent): void {
    if (this.opts.json) {
      this.term.error(goJSON({ message_type: 'error', error: e.error.json, during: e.during, item: e.item }));
    } else if (e.during === 'archival') this.term.error(`error: ${e.error.message}`);
    else this.v(`scan: ${e.error.message}`);
  }

  item(e: BackupItemEvent): void {
    const secs = e.durationMs / 1000;
    if (this.opts.json) {
      if (this.opts.verbosity < 2) return;
      const line: Record<string, unknown> = { message_type: 'verbose_status', action: e.action, item: e.item, duration: 0, data_size: 0, data_size_in_repo: 0, metadata_size: 0, metadata_size_in_repo: 0, total_files: 0 };
      if (e.action !== 'unchanged') {
        line.duration = secs;
        line.data_size = e.stats.dataSize;
        line.data_size_in_repo = e.stats.dataSizeInRepo;
        if (e.type === 'dir') {
          line.metadata_size = e.stats.treeSize;
          line.metadata_size_in_repo = e.stats.treeSizeInRepo;
        }
      }
      this.term.print(goJSON(line));
      return;
    }
    const s = e.stats;
    const saved = `saved in ${secs.toFixed(3)}s (${formatBytes(s.dataSize)} added`;
    if (e.action === 'unchanged') this.vv(`unchanged ${e.item}`);
    else if (e.type === 'dir') this.vv(`${padRight(e.action, 9)} ${e.item}, ${saved}, ${formatBytes(s.dataSizeInRepo)} stored, ${formatBytes(s.treeSizeInRepo)} metadata)`);
    else if (e.action === 'new') this.vv(`new       ${e.item}, ${saved})`);
    else this.vv(`modified  ${e.item}, ${saved}, ${formatBytes(s.dataSizeInRepo)} stored)`);
  }

  scanFinished(totals: ScanTotals, durationMs: number): void {
    if (this.opts.json) {
      if (this.opts.verbosity >= 2) {
        this.term.print(goJSON({ message_type: 'status', action: 'scan_finished', item: '', duration: durationMs / 1000, data_size: totals.bytes, data_size_in_repo: 0, metadata_size: 0, metadata_size_in_repo: 0, total_files: totals.files }));
      }
      return;
    }
    this.v(`scan finished in ${(durationMs / 1000).toFixed(3)}s: ${totals.files} files, ${formatBytes(totals.bytes)}`);
  }

  /** The closing summary (text: hidden by --quiet; JSON: always). */
  finish(r: BackupResult): void {
    this.term.finish();
    const st = r.stats;
    const filesTotal = st.files.new + st.files.changed + st.files.unmodified;
    if (this.opts.json) {
      const summary: Record<string, unknown> = {
        message_type: 'summary',
        files_new: st.files.new,
        files_changed: st.files.changed,
        files_unmodified: st.files.unmodified,
        dirs_new: st.dirs.new,
        dirs_changed: st.dirs.changed,
        dirs_unmodified: st.dirs.unmodified,
        data_blobs: st.dataBlobs,
        tree_blobs: st.treeBlobs,
        data_added: st.dataSize + st.treeSize,
        total_files_processed: filesTotal,
        total_bytes_processed: st.processedBytes,
        total_duration: Math.round(r.durationMs * 1e6) / 1e9,
        snapshot_id: r.snapshot.id.slice(0, 8),
      };
      if (r.dryRun) summary.dry_run = true;
      this.term.print(goJSON(summary));
      return;
    }
    const counts = (c: { new: number; changed: number; unmodified: number }) => `${padLeft(c.new, 5)} new, ${padLeft(c.changed, 5)} changed, ${padLeft(c.unmodified, 5)} unmodified`;
    this.p('');
    this.p(`Files:       ${counts(st.files)}`);
    this.p(`Dirs:        ${counts(st.dirs)}`);
    this.v(`Data Blobs:  ${padLeft(st.dataBlobs, 5)} new`);
    this.v(`Tree Blobs:  ${padLeft(st.treeBlobs, 5)} new`);
    const added = padRight(formatBytes(st.dataSize + st.treeSize), 5);
    const stored = padRight(formatBytes(st.dataSizeInRepo + st.treeSizeInRepo), 5);
    this.p(`${r.dryRun ? 'Would add' : 'Added'} to the repository: ${added} (${stored} stored)`);
    this.p('');
    this.p(`processed ${filesTotal} files, ${formatBytes(st.processedBytes)} in ${formatSeconds(r.durationMs / 1000)}`);
    if (!r.dryRun) this.p(`snapshot ${r.snapshot.id.slice(0, 8)} saved`);
  }
}

/** restic's status line: "[0:05] 12.34%  3 files 1.000 MiB, total 10 files 8.000 MiB, 0 errors ETA 0:30". */
export function statusLine(s: BackupStatus): string {
  const elapsed = formatSeconds(s.secondsElapsed);
  const processed = `${s.filesDone} files ${formatBytes(s.bytesDone)}`;
  if (s.totalFiles === 0 && s.totalBytes === 0 && !s.scanFinished) {
    return `[${elapsed}] ${s.filesDone} files, ${formatBytes(s.bytesDone)}, ${s.errorCount} errors`;
  }
  let eta = '';
  let percent = '';
  if (s.secondsRemaining > 0 && s.bytesDone < s.totalBytes) {
    eta = ` ETA ${formatSeconds(s.secondsRemaining)}`;
    percent = formatPercent(s.bytesDone, s.totalBytes) + '  ';
  }
  return `[${elapsed}] ${percent}${processed}, total ${s.totalFiles} files ${formatBytes(s.totalBytes)}, ${s.errorCount} errors${eta}`;
}

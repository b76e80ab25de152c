// Counts what a backup will cover (files, directories, bytes) while the archiver runs, so progress can
// show totals and an ETA. Applies the same exclusion rules; never reads file contents.
import { lstat, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { mapLimit } from '../util/concurrency.js';
import type { Excluder } from './exclude.js';
import { pathError } from './item-error.js';
import { baseName, joinPath, parentDir } from './paths.js';
import type { Progress } from './progress.js';
import { sortedNames, type TargetTree } from './targets.js';

/** lstat calls in flight while scanning one directory. */
const STAT_CONCURRENCY = 16;
export class Scanner {
  private stopped = false;

  constructor(
    private readonly excluder: Excluder,
    private readonly progress: Progress,
    private readonly cwd: string,
  ) {}

  /** Ends the scan early (the backup finished or failed first). */
  stop(): void {
    this.stopped = true;
  }

  async scan(tree: TargetTree): Promise<void> {
    await this.scanTree(tree);
    if (!this.stopped) this.progress.scanDone();
  }

  private async scanTree(tree: TargetTree): Promise<void> {
    for (const name of sortedNames(tree)) {
      if (this.stopped) return;
      const sub = tree.nodes.get(name)!;
      if (sub.path === undefined) {
        await this.scanTree(sub);
        continue;
      }
      const abs = Buffer.from(resolve(this.cwd, sub.path));
      await this.scanDirEntries(parentDir(abs), [baseName(abs)]);
    }
  }

  private async scanDirEntries(dir: Buffer, names: Buffer[]): Promise<void> {
    const tags = await this.excluder.dirTags(dir);
    const subdirs = await mapLimit(names, STAT_CONCURRENCY, async (name): Promise<Buffer | undefined> => {
      const path = joinPath(dir, name);
      if (this.stopped || this.excluder.rejectByName(path, name, tags)) return undefined;
      let st;
      try {
        st = await lstat(path);
      } catch (err) {
        this.progress.error(path.toString(), pathError('lstat', path.toString(), err), 'scan');
        return undefined;
      }
      if (this.excluder.needsInfo && (this.excluder.rejectByInfo(path, { isDir: st.isDirectory(), size: st.size, dev: st.dev }))) return undefined;
      if (st.isFile()) {
        this.progress.totals.files++;
        this.progress.totals.bytes += st.size;
      } else if (st.isDirectory()) return path;
      else this.progress.totals.others++;
      this.progress.scanUpdated();
      return undefined;
    });
    for (const sub of subdirs) {
      if (!sub || this.stopped) continue;
      let entries: Buffer[];
      try {
        entries = await readdir(sub, { encoding: 'buffer' });
      } catch (err) {
        this.progress.error(sub.toString(), pathError('open', sub.toString(), err, 'Open'), 'scan');
        continue;
      }
      await this.scanDirEntries(sub, entries.sort(Buffer.compare));
      this.progress.totals.dirs++;
      this.progress.scanUpdated();
    }
  }
}

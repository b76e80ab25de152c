// Counts what a backup will cover (files, directories, bytes) while the archiver runs, so progress can
// show totals and an ETA. Applies the same exclusion rules; never reads file contents. Each directory
// is listed and stat'ed synchronously (cheap for cached metadata), then the scanner lets the
// archiver's pending work run before the next one. It stays ahead of the archiver that way: waiting
// for a turn of the event loop per directory instead, it fell behind whenever the archiver had no I/O
// to wait on (totals smaller than what was already saved).
import { lstatSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { yieldToEventLoop } from './event-loop.js';
import type { Excluder } from './exclude.js';
import { pathError } from './item-error.js';
import { baseName, joinPath, parentDir } from './paths.js';
import type { Progress } from './progress.js';
import { sortedNames, type TargetTree } from './targets.js';

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
      await this.scanEntries(parentDir(abs), [baseName(abs)]);
    }
  }

  /** Depth-first over the entries of `dir` and everything below them, one directory per turn. */
  private async scanEntries(dir: Buffer, names: Buffer[]): Promise<void> {
    const totals = this.progress.totals;
    const pending: { dir: Buffer; names: Buffer[] }[] = [{ dir, names }];
    while (pending.length && !this.stopped) {
      const { dir: d, names: entries } = pending.pop()!;
      const tags = await this.excluder.dirTags(d);
      const subdirs: Buffer[] = [];
      for (let i = 0; i < entries.length; i++) {
        if (i > 0 && i % 1024 === 0) await yieldToEventLoop();
        const name = entries[i]!;
        const path = joinPath(d, name);
        if (this.excluder.rejectByName(path, name, tags)) continue;
        let st;
        try {
          st = lstatSync(path);
        } catch (err) {
          this.progress.error(path.toString(), pathError('lstat', path.toString(), err), 'scan');
          continue;
        }
        if (this.excluder.needsInfo && this.excluder.rejectByInfo(path, { isDir: st.isDirectory(), size: st.size, dev: st.dev })) continue;
        if (st.isFile()) {
          totals.files++;
          totals.bytes += st.size;
        } else if (st.isDirectory()) subdirs.push(path);
        else totals.others++;
      }
      // Pushed in reverse so that directories are visited in name order.
      for (const sub of subdirs.reverse()) {
        let children: Buffer[];
        try {
          children = readdirSync(sub, { encoding: 'buffer' });
        } catch (err) {
          this.progress.error(sub.toString(), pathError('open', sub.toString(), err, 'Open'), 'scan');
          continue;
        }
        totals.dirs++;
        pending.push({ dir: sub, names: children.sort(Buffer.compare) });
      }
      this.progress.scanUpdated();
      await yieldToEventLoop();
    }
  }
}

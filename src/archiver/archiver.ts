import { promises as fs } from 'node:fs';
import { hostname as osHostname, userInfo } from 'node:os';
import { Chunker, parsePolynomial } from '../chunker/index.js';
import { nodeFromPath } from '../fs/node.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { nowGoTime } from '../repo/clock.js';
import { Semaphore } from '../util/concurrency.js';
import { saveFileContent } from './file-saver.js';
import { emptyStats, type BackupStats } from './stats.js';
import { buildTargetTree, isLeaf, type TargetDir } from './targets.js';
import { saveTree } from './tree-saver.js';

export interface BackupOptions {
  /** Files and directories to back up; relative paths are resolved against `cwd`. */
  paths: readonly string[];
  /** Directory relative paths start from (default: the process's current directory). */
  cwd?: string;
  hostname?: string;
  tags?: readonly string[];
  /** Snapshot time as a Go RFC3339Nano string; defaults to now. */
  time?: string;
  /** Files read at once (each holds up to one 8 MiB chunk in memory). */
  fileConcurrency?: number;
}

export interface BackupResult {
  snapshot: Snapshot;
  stats: BackupStats;
}

/** Walks the targets, stores file content and trees, then the snapshot. */
export class Archiver {
  private readonly chunker: Chunker;
  private readonly files: Semaphore;
  readonly stats = emptyStats();

  constructor(
    private readonly repo: Repository,
    options: { fileConcurrency?: number } = {},
  ) {
    this.chunker = new Chunker(parsePolynomial(repo.config.chunkerPolynomial));
    this.files = new Semaphore(options.fileConcurrency ?? 2);
  }

  async backup(options: BackupOptions): Promise<BackupResult> {
    await this.repo.loadIndex();
    const { top, absolutePaths } = buildTargetTree(options.paths, options.cwd);
    const tree = await saveTree(this.repo, await this.dirEntries(top), this.stats);
    await this.repo.flush();
    const user = userInfo();
    const snapshot = await this.repo.saveSnapshot({
      time: options.time ?? nowGoTime(),
      tree,
      paths: absolutePaths,
      hostname: options.hostname ?? osHostname(),
      username: user.username,
      uid: user.uid,
      gid: user.gid,
      tags: options.tags ? [...options.tags] : undefined,
    });
    return { snapshot, stats: this.stats };
  }

  /** Nodes of a virtual directory: its targets, intermediate directories and, for ".", real entries. */
  private async dirEntries(dir: TargetDir): Promise<Node[]> {
    const nodes = await Promise.all(
      [...dir.children].map(async ([name, entry]): Promise<Node | undefined> => {
        if (isLeaf(entry)) return this.saveNode(entry.target, Buffer.from(name));
        const node = await nodeFromPath(entry.fsPath!, Buffer.from(name));
        node.subtree = await saveTree(this.repo, await this.dirEntries(entry), this.stats);
        this.stats.dirs++;
        return node;
      }),
    );
    const all = nodes.filter((n): n is Node => n !== undefined);
    if (dir.contentsOf) all.push(...(await this.readDir(Buffer.from(dir.contentsOf))));
    return all;
  }

  /** Backs up one filesystem entry (recursively for directories); sockets are skipped, as restic does. */
  private async saveNode(path: string | Buffer, name: Buffer): Promise<Node | undefined> {
    const node = await nodeFromPath(path, name);
    if (node.type === 'socket') return undefined;
    if (node.type === 'file') {
      node.content = await this.files.run(() => saveFileContent(this.repo, this.chunker, path, this.stats));
      this.stats.files++;
    } else if (node.type === 'dir') {
      node.subtree = await saveTree(this.repo, await this.readDir(path), this.stats);
      this.stats.dirs++;
    }
    return node;
  }

  private async readDir(path: string | Buffer): Promise<Node[]> {
    const dirPath = Buffer.isBuffer(path) ? path : Buffer.from(path);
    const names = await fs.readdir(dirPath, { encoding: 'buffer' });
    const base = dirPath[dirPath.length - 1] === 0x2f ? dirPath : Buffer.concat([dirPath, Buffer.from('/')]);
    const nodes = await Promise.all(names.map((name) => this.saveNode(Buffer.concat([base, name]), name)));
    return nodes.filter((n): n is Node => n !== undefined);
  }
}

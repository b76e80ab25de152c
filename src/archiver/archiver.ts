// restic 0.14's archiver: walks the targets depth-first, reuses the content of files unchanged since
// the parent snapshot, hands other files to the file saver and stores one tree blob per directory.
// The walk of a directory (readdir, lstat of its entries) runs ahead of the saving: a directory's tree
// is stored once its files are, while the walk already continues with its siblings.
import { readdirSync, type BigIntStats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Chunker, parsePolynomial } from '../chunker/index.js';
import { yieldToEventLoop } from './event-loop.js';
import { ResticError, UsageError } from '../errors.js';
import { goClean } from '../filter/gomatch.js';
import { nodeFromPath } from '../fs/node.js';
import { formatGoTime } from '../repo/gotime.js';
import { nowNs } from '../repo/clock.js';
import type { Id } from '../repo/id.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import { Semaphore } from '../util/concurrency.js';
import type { BlobSaver } from './blob-saver.js';
import type { Excluder } from './exclude.js';
import { FileSaver } from './file-saver.js';
import { isErrnoError, ItemError, pathError } from './item-error.js';
import { lstatEntry, nodeFromLstat, OwnerNames } from './node-stat.js';
import { encodesEqual, fileChanged, nameKey, ParentTreeLoader, type ChangeOptions, type ParentDir } from './parent.js';
import { joinPath, parentDir } from './paths.js';
import type { Progress } from './progress.js';
import { emptyItemStats } from './stats.js';
import { sortedNames, type TargetTree } from './targets.js';
import { saveTree } from './tree-saver.js';

/** Parent-snapshot trees being loaded ahead of the walk. */
const TREE_LOADS = 8;
/** Entries stat'ed between two turns of the event loop. */
const STAT_SLICE = 1024;
/** Go's os.ModeDir. */
const MODE_DIR = 0x80000000;

export interface ArchiverOptions {
  /** Resolves relative targets. */
  cwd: string;
  excluder: Excluder;
  blobs: BlobSaver;
  progress: Progress;
  /** Files read at once (default 2, as restic). */
  fileConcurrency?: number;
  /** Record access times (restic's --with-atime); otherwise atime = mtime. */
  withAtime?: boolean;
  change?: ChangeOptions;
  /** Counts the bytes read from files. */
  onRead?: (bytes: number) => void;
}

/**
 * A node whose saving may still be under way (undefined: the item was skipped). Wrapped in an object
 * because an async function returning a bare promise would wait for it.
 */
interface Future {
  done: Promise<Node | undefined>;
}

function ready(node: Node): Future {
  return { done: Promise.resolve(node) };
}

/** The new entries of a directory are those of its parent tree, field for field. */
function sameNodes(nodes: readonly Node[], old: ParentDir): boolean {
  if (!old.reusable || nodes.length !== old.byName.size) return false;
  return nodes.every((n) => {
    const o = old.byName.get(nameKey(n.rawName));
    return o !== undefined && encodesEqual(n, o);
  });
}

function snJoin(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export class Archiver {
  private readonly fileSaver: FileSaver;
  private readonly chunker: Chunker;
  private readonly treeLoads = new Semaphore(TREE_LOADS);
  private readonly owners = new OwnerNames();
  private readonly parentTrees: ParentTreeLoader;
  /** The first error that aborts the backup (repository or backend failure). */
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly opts: ArchiverOptions,
  ) {
    this.chunker = new Chunker(parsePolynomial(repo.config.chunkerPolynomial));
    this.parentTrees = new ParentTreeLoader(repo);
    this.fileSaver = new FileSaver(opts.blobs, this.chunker, { concurrency: opts.fileConcurrency ?? 2, onRead: opts.onRead });
  }

  /** Saves everything below `atree`; returns the snapshot's root tree id. */
  async saveTargets(atree: TargetTree, parentTree: Id | undefined): Promise<Id> {
    const start = performance.now();
    const previous = parentTree ? await this.loadTree(parentTree, '/') : undefined;
    const nodes = await this.saveTargetTree('/', atree, previous);
    return this.saveRoot(nodes, start);
  }

  /**
   * `restic backup --stdin`: one file, read from `source`, at `filename` below the root; it and the
   * directories leading to it get the metadata restic gives them (mode 0644 / 0755, owner 0).
   */
  async saveStdin(source: AsyncIterable<Uint8Array>, filename: string, timeNs: bigint): Promise<Id> {
    const start = performance.now();
    const path = goClean('/' + filename);
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0) throw new UsageError(`invalid --stdin-filename "${filename}"`);
    const p = this.opts.progress;
    const fileName = parts[parts.length - 1]!;
    const rawName = Buffer.from(fileName);
    let child: Node | undefined;
    if (!this.opts.excluder.rejectByName(Buffer.from(path), rawName, [])) {
      const t = formatGoTime(timeNs);
      const node: Node = { rawName, name: fileName, type: 'file', mode: 0o644, mtime: t, atime: t, ctime: t, uid: 0, gid: 0, content: [] };
      p.startFile(path);
      let size = 0;
      const counted = async function* (src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
        for await (const b of src) {
          size += b.length;
          yield b;
        }
      };
      const saved = await this.fileSaver.storeChunks(this.chunker.chunks(counted(source)), (n) => p.completeBlob(n));
      this.opts.onRead?.(size);
      if (size === 0) {
        p.fileFailed(path);
        this.report(path, new ItemError(`read ${path}: no data read`));
      } else {
        node.content = saved.content;
        node.size = size;
        p.completeItem(path, undefined, node, saved.stats, performance.now() - start);
        child = node;
      }
    }
    for (let i = parts.length - 2; i >= 0 && child; i--) {
      const now = formatGoTime(nowNs());
      const { id, stats } = await saveTree(this.opts.blobs, [child]);
      const dir: Node = { rawName: Buffer.from(parts[i]!), name: parts[i]!, type: 'dir', mode: (MODE_DIR | 0o755) >>> 0, mtime: now, atime: now, ctime: now, uid: 0, gid: 0, content: null, subtree: id };
      p.completeItem('/' + parts.slice(0, i + 1).join('/') + '/', undefined, dir, stats, performance.now() - start);
      child = dir;
    }
    return this.saveRoot(child ? [child] : [], start);
  }

  private async saveRoot(nodes: Node[], start: number): Promise<Id> {
    this.throwIfFailed();
    if (nodes.length === 0) throw new ResticError('snapshot is empty');
    const { id, stats } = await saveTree(this.opts.blobs, nodes);
    this.opts.progress.completeItem('/', undefined, undefined, stats, performance.now() - start);
    return id;
  }

  private report(item: string, error: ItemError): void {
    this.opts.progress.error(item, error, 'archival');
  }

  /** Remembers the first fatal error of work running in the background. */
  private guard<T>(work: Promise<T>): Promise<T> {
    work.catch((error: unknown) => {
      this.failure ??= { error };
    });
    return work;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /** A directory of the parent snapshot; a tree that cannot be loaded is reported and treated as absent. */
  private loadTree(id: Id, item: string): Promise<ParentDir | undefined> {
    return this.treeLoads.run(async () => {
      try {
        return await this.parentTrees.load(id);
      } catch (err) {
        const message = this.repo.index.has('tree', id)
          ? `tree ${id} could not be loaded; the repository could be damaged: ${(err as Error).message}`
          : `tree ${id} is not known; the repository could be damaged, run \`rebuild-index\` to try to repair it`;
        this.report(item, new ItemError(message));
        return undefined;
      }
    });
  }

  /** restic's SaveTree: targets are saved where they are, intermediate directories get stat metadata. */
  private async saveTargetTree(snPath: string, atree: TargetTree, previous: ParentDir | undefined): Promise<Node[]> {
    const futures: Future[] = [];
    for (const name of sortedNames(atree)) {
      this.throwIfFailed();
      const sub = atree.nodes.get(name)!;
      const rawName = Buffer.from(name);
      const item = snJoin(snPath, name);
      const old = previous?.byName.get(nameKey(rawName));
      if (sub.path !== undefined) {
        const abs = Buffer.from(resolve(this.opts.cwd, sub.path));
        const [node] = await this.inspect([abs], [rawName], await this.opts.excluder.dirTags(parentDir(abs)));
        const future = node && (await this.dispatch(item, abs, node, old, undefined));
        if (future) futures.push(future);
        continue;
      }
      const start = performance.now();
      const oldTree = old?.type === 'dir' && old.subtree ? await this.loadTree(old.subtree, item) : undefined;
      const { id, stats } = await saveTree(this.opts.blobs, await this.saveTargetTree(item, sub, oldTree));
      const node = await this.intermediateNode(sub.fileInfoPath!, rawName);
      node.subtree = id;
      futures.push(ready(node));
      this.opts.progress.completeItem(item + '/', old, node, stats, performance.now() - start);
    }
    return this.settle(futures);
  }

  private async settle(futures: Future[]): Promise<Node[]> {
    return (await Promise.all(futures.map((f) => f.done))).filter((n): n is Node => n !== undefined);
  }

  /** Metadata of a directory that leads to a target (symlinks followed, as restic's Stat does). */
  private async intermediateNode(fileInfoPath: string, rawName: Buffer): Promise<Node> {
    const path = resolve(this.opts.cwd, fileInfoPath);
    let node: Node;
    try {
      node = await nodeFromPath(await realpath(path), rawName, { withAtime: this.opts.withAtime });
    } catch (err) {
      throw new ResticError(pathError('stat', path, err, 'Lstat').message);
    }
    if (node.type !== 'dir') throw new ResticError(`path is not a directory: ${path}`);
    return node;
  }

  /**
   * Exclusion rules and lstat for the entries of one directory; undefined for an entry that is
   * skipped (excluded, a socket, or an error, which is reported).
   */
  private async inspect(paths: readonly Buffer[], names: readonly Buffer[], parentTags: readonly string[]): Promise<(Node | undefined)[]> {
    const ex = this.opts.excluder;
    const stats: (BigIntStats | undefined)[] = [];
    for (let i = 0; i < paths.length; i++) {
      // A huge directory is stat'ed in slices, so that saving and progress are not held up meanwhile.
      if (i > 0 && i % STAT_SLICE === 0) await nextTurn();
      const path = paths[i]!;
      if (ex.rejectByName(path, names[i]!, parentTags)) {
        stats.push(undefined);
        continue;
      }
      try {
        stats.push(lstatEntry(path));
      } catch (err) {
        this.report(path.toString(), pathError('lstat', path.toString(), err));
        stats.push(undefined);
      }
    }
    await this.owners.load(stats);
    return stats.map((st, i) => {
      if (!st) return undefined;
      const path = paths[i]!;
      let node: Node;
      try {
        node = nodeFromLstat(path, names[i]!, st, this.owners, this.opts.withAtime === true);
      } catch (err) {
        this.report(path.toString(), isErrnoError(err) ? pathError(err.syscall ?? 'lstat', path.toString(), err) : new ItemError((err as Error).message));
        return undefined;
      }
      if (ex.needsInfo && ex.rejectByInfo(path, { isDir: node.type === 'dir', size: node.size ?? 0, dev: Number(node.deviceId ?? 0) })) return undefined;
      // restic leaves sockets out of snapshots.
      return node.type === 'socket' ? undefined : node;
    });
  }

  /** Starts saving an inspected item; resolves once the walk below it is done (not its saving). */
  private dispatch(item: string, abs: Buffer, node: Node, previous: Node | undefined, oldTree: Promise<ParentDir | undefined> | undefined): Promise<Future | undefined> {
    if (node.type === 'file') return this.saveFile(item, abs, node, previous);
    if (node.type === 'dir') return this.saveDir(item, abs, node, previous, oldTree);
    return Promise.resolve(ready(node));
  }

  private allBlobsPresent(node: Node): boolean {
    return (node.content ?? []).every((id) => this.repo.index.has('data', id));
  }

  private async saveFile(item: string, abs: Buffer, node: Node, previous: Node | undefined): Promise<Future> {
    await yieldToEventLoop();
    const start = performance.now();
    const p = this.opts.progress;
    if (previous && !fileChanged(node, previous, this.opts.change ?? {})) {
      if (this.allBlobsPresent(previous)) {
        p.completeItem(item, previous, previous, emptyItemStats(), performance.now() - start);
        p.completeBlob(previous.size ?? 0);
        node.content = previous.content;
        return ready(node);
      }
      this.report(abs.toString(), new ItemError(`parts of ${abs.toString()} not found in the repository index; storing the file again`));
    }
    const { done } = await this.fileSaver.enqueue({ path: abs, onStart: () => p.startFile(item), onBlob: (n) => p.completeBlob(n) });
    const saved = done.then(
      (r) => {
        node.content = r.content;
        if (r.size) node.size = r.size;
        else delete node.size;
        p.completeItem(item, previous, node, r.stats, performance.now() - start);
        return node;
      },
      (err: unknown) => {
        p.fileFailed(item);
        if (!(err instanceof ItemError)) throw err;
        this.report(abs.toString(), err);
        return undefined;
      },
    );
    return { done: this.guard(saved) };
  }

  /** restic's SaveDir: entries in byte order, each saved like a target; then the directory's tree. */
  private async saveDir(item: string, abs: Buffer, dirNode: Node, previous: Node | undefined, prefetched: Promise<ParentDir | undefined> | undefined): Promise<Future | undefined> {
    const start = performance.now();
    const shown = abs.toString();
    const oldDir = previous?.type === 'dir' && previous.subtree ? await (prefetched ?? this.loadTree(previous.subtree, shown)) : undefined;
    let names: Buffer[];
    try {
      names = readdirSync(abs, { encoding: 'buffer' });
    } catch (err) {
      this.report(shown, pathError('open', shown, err, 'Open'));
      return undefined;
    }
    names.sort(Buffer.compare);
    const paths = names.map((n) => joinPath(abs, n));
    const nodes = await this.inspect(paths, names, await this.opts.excluder.dirTags(abs));
    // Start loading the parent's trees of the subdirectories while the walk goes on.
    const olds = nodes.map((n, i) => (n ? oldDir?.byName.get(nameKey(names[i]!)) : undefined));
    const trees = olds.map((old, i) => {
      if (nodes[i]?.type !== 'dir' || old?.type !== 'dir' || !old.subtree) return undefined;
      const loading = this.loadTree(old.subtree, paths[i]!.toString());
      loading.catch(() => undefined);
      return loading;
    });
    const futures: Future[] = [];
    for (let i = 0; i < names.length; i++) {
      this.throwIfFailed();
      const node = nodes[i];
      if (!node) continue;
      const future = await this.dispatch(snJoin(item, node.name), paths[i]!, node, olds[i], trees[i]);
      if (future) futures.push(future);
    }
    const done = (async () => {
      const children = await this.settle(futures);
      // Nothing changed in here: the parent's tree blob is exactly what encoding would give.
      const { id, stats } =
        previous?.subtree && oldDir && sameNodes(children, oldDir) ? { id: previous.subtree, stats: emptyItemStats() } : await saveTree(this.opts.blobs, children);
      dirNode.subtree = id;
      this.opts.progress.completeItem(item + '/', previous, dirNode, stats, performance.now() - start);
      return dirNode;
    })();
    return { done: this.guard(done) };
  }
}

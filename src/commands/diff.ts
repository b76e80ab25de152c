import { IntegrityError } from '../errors.js';
import type { Id } from '../repo/id.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { nodesEqual } from '../archiver/parent.js';
import { blobPlainSize } from '../restorer/filerestorer.js';
import { joinRaw, loadTree } from '../walker/walker.js';

export interface DiffChange {
  /** Path inside the snapshots; directories end with "/". For display (invalid UTF-8 as U+FFFD). */
  path: string;
  rawPath: Buffer;
  /**
   * "+" added, "-" removed, "M" file content changed, "T" type changed, "U" metadata changed (with
   * `metadata`); "T" combines with "M" or "U".
   */
  modifier: string;
}

export interface DiffStat {
  files: number;
  dirs: number;
  others: number;
  dataBlobs: number;
  treeBlobs: number;
  /** Plaintext bytes of those blobs. */
  bytes: number;
}

export interface DiffStats {
  changedFiles: number;
  added: DiffStat;
  removed: DiffStat;
}

export interface DiffOptions {
  /** Report nodes whose metadata (times, mode, owner, …) changed ("U"), as restic's --metadata. */
  metadata?: boolean;
  /** Called with both snapshots once they are found, before the first change. */
  onSnapshots?: (source: Snapshot, target: Snapshot) => void | Promise<void>;
  /** Receives the changes in restic's order (awaited); without it they are collected in the result. */
  onChange?: (change: DiffChange) => void | Promise<void>;
  /** Problems restic prints as warnings and goes on (a tree or blob size that cannot be found). */
  onWarning?: (message: string) => void;
}

export interface DiffResult {
  source: Snapshot;
  target: Snapshot;
  /** The changes, unless options.onChange took them. */
  changes: DiffChange[];
  stats: DiffStats;
}

const newStat = (): DiffStat => ({ files: 0, dirs: 0, others: 0, dataBlobs: 0, treeBlobs: 0, bytes: 0 });

/** `restic diff`: what changed from the snapshot `source` to `target` (ids, prefixes or "latest"). */
export async function diff(repo: Repository, source: string, target: string, options: DiffOptions = {}): Promise<DiffResult> {
  const sn1 = await repo.findSnapshot(source);
  const sn2 = await repo.findSnapshot(target);
  await repo.loadIndex();
  await options.onSnapshots?.(sn1, sn2);
  const changes: DiffChange[] = [];
  const emit = options.onChange ?? ((c: DiffChange) => void changes.push(c));
  const warn = options.onWarning ?? (() => undefined);
  const c = new Comparer(repo, options.metadata === true, emit, warn);
  c.before.add(`t${sn1.tree}`);
  c.after.add(`t${sn2.tree}`);
  await c.diffTree(Buffer.from('/'), sn1.tree, sn2.tree);
  const both = new Set([...c.before].filter((h) => c.after.has(h)));
  const only = (set: Set<string>) => [...set].filter((h) => !both.has(h) && !c.common.has(h));
  c.countBlobs(only(c.before), c.stats.removed);
  c.countBlobs(only(c.after), c.stats.added);
  return { source: sn1, target: sn2, changes, stats: c.stats };
}

class Comparer {
  readonly stats: DiffStats = { changedFiles: 0, added: newStat(), removed: newStat() };
  /** Blob handles ("d<id>" data, "t<id>" tree) referenced by either side, and by unchanged subtrees. */
  readonly before = new Set<string>();
  readonly after = new Set<string>();
  readonly common = new Set<string>();

  constructor(
    private readonly repo: Repository,
    private readonly metadata: boolean,
    private readonly emit: (c: DiffChange) => void | Promise<void>,
    private readonly warn: (message: string) => void,
  ) {}

  private async change(rawPath: Buffer, modifier: string): Promise<void> {
    await this.emit({ path: rawPath.toString('utf8'), rawPath, modifier });
  }

  countBlobs(handles: string[], stat: DiffStat): void {
    for (const h of handles) {
      const type = h[0] === 'd' ? 'data' : 'tree';
      if (type === 'data') stat.dataBlobs++;
      else stat.treeBlobs++;
      const loc = this.repo.index.lookup(type, h.slice(1));
      if (!loc) this.warn(`unable to find blob size for ${type} blob ${h.slice(1)}`);
      else stat.bytes += blobPlainSize(loc);
    }
  }

  /** The subtree ids of nested errors are reported and skipped, as restic does. */
  private async tryLoad(id: Id): Promise<Node[] | undefined> {
    try {
      return await loadTree(this.repo, id);
    } catch (err) {
      this.warn(`error: ${(err as Error).message}`);
      return undefined;
    }
  }

  async diffTree(prefix: Buffer, id1: Id, id2: Id): Promise<void> {
    const tree1 = await loadTree(this.repo, id1);
    const tree2 = await loadTree(this.repo, id2);
    const nodes1 = new Map(tree1.map((n) => [n.rawName.toString('latin1'), n]));
    const nodes2 = new Map(tree2.map((n) => [n.rawName.toString('latin1'), n]));
    const names = [...new Set([...nodes1.keys(), ...nodes2.keys()])].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    for (const key of names) {
      const node1 = nodes1.get(key);
      const node2 = nodes2.get(key);
      addBlobs(this.before, node1);
      addBlobs(this.after, node2);
      const name = joinPath(prefix, Buffer.from(key, 'latin1'));
      if (node1 && node2) {
        let mod = '';
        if (node1.type !== node2.type) mod += 'T';
        const shown = node2.type === 'dir' ? withSlash(name) : name;
        if (node1.type === 'file' && node2.type === 'file' && !sameIds(node1.content, node2.content)) {
          mod += 'M';
          this.stats.changedFiles++;
        } else if (this.metadata && !nodesEqual(node1, node2)) mod += 'U';
        if (mod) await this.change(shown, mod);
        if (node1.type === 'dir' && node2.type === 'dir') {
          if (!node1.subtree || !node2.subtree) throw new IntegrityError(`directory ${JSON.stringify(shown.toString())} has no subtree`);
          if (node1.subtree === node2.subtree) await this.collect(node1.subtree);
          else await this.diffTree(shown, node1.subtree, node2.subtree);
        }
      } else if (node1) await this.printNode(name, node1, '-', this.stats.removed, this.before);
      else if (node2) await this.printNode(name, node2, '+', this.stats.added, this.after);
    }
  }

  private async printNode(name: Buffer, node: Node, mode: string, stat: DiffStat, blobs: Set<string>): Promise<void> {
    const shown = node.type === 'dir' ? withSlash(name) : name;
    await this.change(shown, mode);
    addStat(stat, node);
    if (node.type !== 'dir' || !node.subtree) return;
    const nodes = await this.tryLoad(node.subtree);
    for (const child of nodes ?? []) {
      addBlobs(blobs, child);
      await this.printNode(joinPath(shown, child.rawName), child, mode, stat, blobs);
    }
  }

  /** Records every blob below an unchanged subtree. */
  private async collect(id: Id): Promise<void> {
    for (const node of (await this.tryLoad(id)) ?? []) {
      addBlobs(this.common, node);
      if (node.type === 'dir' && node.subtree) await this.collect(node.subtree);
    }
  }
}

/** Go's path.Join(prefix, name) where prefix is "/" or ends with "/" for directories. */
function joinPath(prefix: Buffer, name: Buffer): Buffer {
  return prefix[prefix.length - 1] === 0x2f ? Buffer.concat([prefix, name]) : joinRaw(prefix, name);
}

function withSlash(p: Buffer): Buffer {
  return Buffer.concat([p, Buffer.from('/')]);
}

function addStat(stat: DiffStat, node: Node): void {
  if (node.type === 'file') stat.files++;
  else if (node.type === 'dir') stat.dirs++;
  else stat.others++;
}

function addBlobs(set: Set<string>, node: Node | undefined): void {
  if (!node) return;
  if (node.type === 'file') for (const id of node.content ?? []) set.add(`d${id}`);
  else if (node.type === 'dir' && node.subtree) set.add(`t${node.subtree}`);
}

/** restic compares content lists with reflect.DeepEqual and sameContent: a null list equals only null. */
function sameIds(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

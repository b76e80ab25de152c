import { constants as fsc, promises as fs } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { restoreMetadata } from '../fs/node.js';
import { IntegrityError, NotFoundError, ResticError, UsageError } from '../errors.js';
import type { Node } from '../repo/node.js';
import type { Id } from '../repo/id.js';
import type { Repository } from '../repo/repository.js';
import { loadTree, walkTree, type WalkEntry } from '../walker/walker.js';
import { RangeDispatcher } from './decode.js';
import { restoreFileContents, type FileToRestore } from './filerestorer.js';
import { verifyFiles } from './verify.js';

/** restic's SelectFilter result for one node. */
export interface Selection {
  /** Restore this node. */
  selected: boolean;
  /** Look at the content of this directory (ignored for other nodes). */
  childMayBeSelected: boolean;
}

/**
 * Decides per node what to restore, by its path inside the restored tree ("/dir/file"; `rawLocation`
 * holds the exact bytes, names need not be UTF-8).
 */
export type SelectFn = (location: string, node: Node, rawLocation: Buffer) => Selection;

export interface RestoreOptions {
  /** Directory to restore into; created when missing. */
  target: string;
  /** Path inside the snapshot whose contents are restored (restic's `snapshot:subfolder`). */
  subfolder?: string;
  /** What to restore; everything when omitted. See selectByPatterns for restic's --include/--exclude. */
  select?: SelectFn;
  /** Leave all-zero blocks of files as holes (restic's --sparse). */
  sparse?: boolean;
  /** Re-read every restored file and check it against its blob ids (restic's --verify). */
  verify?: boolean;
  /** Only decide what would be restored: nothing is written, not even the target directory. */
  dryRun?: boolean;
  /** Pack ranges downloaded and written at once. */
  packConcurrency?: number;
  /** Called for every node restored (or that would be, with dryRun), parents before children. */
  onItem?: (location: string, node: Node, rawLocation: Buffer) => void;
  /** Called when verification starts (after everything is in place). */
  onVerifyStart?: () => void;
  /**
   * Problems restic reports as "ignoring error for …" and restores the rest: invalid names in a
   * tree, special files or metadata that cannot be created. Counted in stats.errors.
   */
  onWarning?: (location: string, message: string) => void;
}

export interface RestoreStats {
  /** Regular files, hard links included. */
  files: number;
  dirs: number;
  /** Symlinks, fifos and device nodes. */
  others: number;
  /** Bytes of file content (hard-linked content counted once). */
  bytes: number;
  /** Warnings reported through onWarning. */
  errors: number;
  /** Files checked by verify. */
  verified: number;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const SLASH = 0x2f;

/** Walks a tree path like "home/user/dir" from `treeId` and returns the subtree id of its last element. */
export async function resolveSubtree(repo: Repository, treeId: Id, subfolder: string): Promise<Id> {
  let id = treeId;
  let walked = '';
  for (const part of subfolder.split('/').filter((p) => p !== '' && p !== '.')) {
    const raw = Buffer.from(part);
    const node = (await loadTree(repo, id)).find((n) => n.rawName.equals(raw));
    walked += `/${part}`;
    if (!node) throw new NotFoundError(`path ${walked} not found in snapshot`);
    if (node.type !== 'dir' || !node.subtree) throw new UsageError(`path ${walked} in snapshot is not a directory`);
    id = node.subtree;
  }
  return id;
}

/** What restic refuses as a node name: anything that is not exactly one path element. */
export function isInvalidName(raw: Buffer): boolean {
  return raw.length === 0 || raw.includes(SLASH) || raw.includes(0) || raw.equals(DOT) || raw.equals(DOTDOT);
}

interface PlannedDir {
  rel: Buffer;
  node: Node;
  location: string;
  /** Created because selected, or because something below it is restored. */
  keep: boolean;
  parent?: PlannedDir;
}

type ItemKind = 'content' | 'empty' | 'hardlink' | 'symlink' | 'fifo' | 'device';

interface PlannedItem {
  kind: ItemKind;
  rel: Buffer;
  node: Node;
  location: string;
  /** For hardlinks: the item whose file they link to. */
  linkTo?: PlannedItem;
}

/** Everything a restore will create, decided from the trees before anything is written. */
interface Plan {
  /** Directories to create, parents before children. */
  dirs: PlannedDir[];
  items: PlannedItem[];
  /** Directories (kept or not) and items in walk order. */
  order: (PlannedDir | PlannedItem)[];
  stats: RestoreStats;
}

/** Decides what to restore from the trees; `onBytes` follows the growing amount of file content. */
async function makePlan(
  repo: Repository,
  root: Id,
  options: RestoreOptions,
  warn: (location: string, message: string) => void,
  onBytes: (bytes: number) => void,
): Promise<Plan> {
  const select = options.select ?? (() => ({ selected: true, childMayBeSelected: true }));
  const stats: RestoreStats = { files: 0, dirs: 0, others: 0, bytes: 0, errors: 0, verified: 0 };
  const dirs: PlannedDir[] = [];
  const dirByPath = new Map<string, PlannedDir>();
  const items: PlannedItem[] = [];
  const order: (PlannedDir | PlannedItem)[] = [];
  const hardlinks = new Map<string, PlannedItem>();
  const decisions = new Map<WalkEntry, Selection>();
  const decide = (e: WalkEntry): Selection | undefined => {
    let d = decisions.get(e);
    if (d) return d;
    if (isInvalidName(e.node.rawName) || e.node.type === 'socket') return undefined;
    d = select(e.path, e.node, e.rawPath);
    decisions.set(e, d);
    return d;
  };
  const keep = (dir: PlannedDir | undefined) => {
    for (let d = dir; d && !d.keep; d = d.parent) d.keep = true;
  };

  const seen = new Set<string>();
  const walk = walkTree(repo, root, { descend: (e) => decide(e)?.childMayBeSelected === true });
  for await (const e of walk) {
    const { node, rawPath } = e;
    const key = rawPath.toString('latin1');
    // Two nodes of one name would be written into each other.
    if (seen.has(key)) throw new IntegrityError(`tree ${e.parentTree} holds ${JSON.stringify(node.name)} twice`);
    seen.add(key);
    const parent = dirByPath.get(rawPath.subarray(0, rawPath.length - node.rawName.length - 1).toString('latin1'));
    if (isInvalidName(node.rawName)) {
      warn(parent?.location ?? '/', `invalid child node name ${JSON.stringify(node.name)}`);
      continue;
    }
    // Sockets belong to a running process; restic does not restore them.
    if (node.type === 'socket') continue;
    const d = decide(e)!;
    decisions.delete(e);
    if (node.type === 'dir') {
      if (!node.subtree) throw new IntegrityError(`tree ${e.parentTree}: directory ${JSON.stringify(e.path)} has no subtree`);
      const dir: PlannedDir = { rel: rawPath, node, location: e.path, keep: false, parent };
      dirs.push(dir);
      order.push(dir);
      dirByPath.set(rawPath.toString('latin1'), dir);
      if (d.selected) keep(dir);
      continue;
    }
    if (!d.selected) continue;
    keep(parent);
    const item: PlannedItem = { kind: 'content', rel: rawPath, node, location: e.path };
    switch (node.type) {
      case 'file': {
        stats.files++;
        const linkKey = (node.links ?? 0) > 1 ? `${node.deviceId ?? 0}:${node.inode ?? 0}` : undefined;
        const first = linkKey !== undefined ? hardlinks.get(linkKey) : undefined;
        if (first) {
          item.kind = 'hardlink';
          item.linkTo = first;
        } else {
          if (linkKey !== undefined) hardlinks.set(linkKey, item);
          if ((node.size ?? 0) === 0 || (node.content ?? []).length === 0) item.kind = 'empty';
          else onBytes((stats.bytes += node.size ?? 0));
        }
        break;
      }
      case 'symlink':
        item.kind = 'symlink';
        stats.others++;
        break;
      case 'fifo':
        item.kind = 'fifo';
        stats.others++;
        break;
      default:
        item.kind = 'device';
        stats.others++;
    }
    items.push(item);
    order.push(item);
  }
  const kept = dirs.filter((d) => d.keep);
  stats.dirs = kept.length;
  return { dirs: kept, items, order, stats };
}

/**
 * Restores a snapshot's tree (or the subtree `subfolder`) into `target`, as restic does: content
 * is read pack by pack (the needed part of each pack once, in requests of up to 16 MiB) and each
 * blob is written to all files that need it, on worker threads for large restores. Everything is first
 * written into a staging directory inside the target and moved into place only once complete, so a
 * failure (damaged pack, full disk) leaves nothing behind in the target. Names that would leave the
 * target (`..`, `/` inside a name) are reported through onWarning and never written.
 */
export async function restoreTree(repo: Repository, treeId: Id, options: RestoreOptions): Promise<RestoreStats> {
  await repo.loadIndex();
  const root = options.subfolder ? await resolveSubtree(repo, treeId, options.subfolder) : treeId;
  let errors = 0;
  const warn = (location: string, message: string) => {
    errors++;
    options.onWarning?.(location, message);
  };
  // Threads start as soon as the content to restore is known to be worth them, so that their start-up
  // overlaps with reading the trees.
  let dispatcher: RangeDispatcher | undefined;
  const startThreads = (bytes: number) => {
    if (dispatcher || options.dryRun) return;
    const threads = RangeDispatcher.threadsFor(bytes);
    if (threads > 0) dispatcher = new RangeDispatcher(repo.key, options.sparse === true, threads);
  };
  let plan: Plan;
  try {
    plan = await makePlan(repo, root, options, warn, startThreads);
  } catch (err) {
    await dispatcher?.close().catch(() => undefined);
    throw err;
  }
  const report = () => {
    for (const x of plan.order) if (!('keep' in x) || x.keep) options.onItem?.(x.location, x.node, x.rel);
  };
  if (options.dryRun) {
    report();
    return { ...plan.stats, errors };
  }

  // The restored tree grows in <staging>/t; <staging> also holds temporary names for special files.
  let staging: Buffer | undefined;
  let createdTarget = false;
  const target = Buffer.from(options.target.replace(/\/+$/, '') || '/');
  try {
    createdTarget = await ensureDir(target);
    staging = Buffer.concat([target, Buffer.from(`/.restic-ts-restore-${randomBytes(6).toString('hex')}`)]);
    const tree = Buffer.concat([staging, Buffer.from('/t')]);
    const inTree = (rel: Buffer) => Buffer.concat([tree, rel]);
    try {
      await fs.mkdir(staging, { mode: 0o700 });
    } catch (err) {
      staging = undefined;
      throw new UsageError(`cannot write to target ${target.toString()}: ${errnoText(err)}`);
    }
    await fs.mkdir(tree, { mode: 0o700 });
    for (const d of plan.dirs) await fs.mkdir(inTree(d.rel), { mode: 0o700 });
    const contentItems = plan.items.filter((i) => i.kind === 'content');
    const files: FileToRestore[] = contentItems.map((i) => ({ path: inTree(i.rel), location: i.location, size: i.node.size ?? 0, content: i.node.content ?? [] }));
    // A file's metadata is set as soon as its content is complete, while other files are still written.
    await restoreFileContents(repo, files, {
      sparse: options.sparse,
      concurrency: options.packConcurrency,
      dispatcher,
      onFileDone: (i) => applyMetadata(files[i]!.path, contentItems[i]!.node, contentItems[i]!.location, warn),
    });
    await createItems(plan.items, staging, tree, warn);
    await checkConflicts(tree, target);
    for (const name of await fs.readdir(tree, { encoding: 'buffer' })) {
      await moveInto(join(tree, name), join(target, name));
    }
    await fs.rm(staging, { recursive: true });
  } catch (err) {
    await dispatcher?.close().catch(() => undefined);
    if (staging) await fs.rm(staging, { recursive: true, force: true });
    if (createdTarget) await fs.rmdir(target).catch(() => undefined);
    throw err;
  }
  // Directory metadata last and deepest first: creating their children changes their times.
  for (const d of [...plan.dirs].reverse()) {
    applyMetadata(Buffer.concat([target, d.rel]), d.node, d.location, warn);
  }
  report();
  const stats = { ...plan.stats, errors };
  if (options.verify) {
    options.onVerifyStart?.();
    const checks = plan.items.filter((i) => i.node.type === 'file').map((i) => ({ path: Buffer.concat([target, i.rel]), location: i.location, node: i.node }));
    stats.verified = await verifyFiles(repo, checks);
  }
  return stats;
}

/** Creates everything but file content: empty files, hard links, symlinks, special files; then metadata. */
async function createItems(items: readonly PlannedItem[], staging: Buffer, tree: Buffer, warn: (location: string, message: string) => void): Promise<void> {
  const inTree = (rel: Buffer) => Buffer.concat([tree, rel]);
  let specials = 0;
  // mkfifo/mknod take their path as a string argument, which cannot carry every byte sequence:
  // create under a plain name, then rename.
  const special = async (path: Buffer, cmd: string, args: (tmp: string) => string[]) => {
    // The staging path comes from the target option, a string.
    const tmp = `${staging.toString()}/.special-${specials++}`;
    run(cmd, args(tmp));
    await fs.rename(tmp, path);
  };
  const create = async (item: PlannedItem): Promise<void> => {
    const path = inTree(item.rel);
    const node = item.node;
    try {
      switch (item.kind) {
        case 'content':
          return; // metadata set when its content was complete
        case 'empty':
          await (await fs.open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600)).close();
          break;
        case 'hardlink':
          await fs.link(inTree(item.linkTo!.rel), path);
          break;
        case 'symlink':
          await fs.symlink(node.linktarget ?? '', path);
          break;
        case 'fifo':
          await special(path, 'mkfifo', (tmp) => ['-m', '600', tmp]);
          break;
        case 'device':
          await special(path, 'mknod', (tmp) => ['-m', '600', tmp, node.type === 'dev' ? 'b' : 'c', String(major(node.device ?? 0)), String(minor(node.device ?? 0))]);
          break;
      }
    } catch (err) {
      // A content file that fails is fatal (restoreFileContents threw already); the rest is reported.
      warn(item.location, errnoText(err));
      return;
    }
    applyMetadata(path, node, item.location, warn);
  };
  // Hard links after the files they point to.
  let next = 0;
  const ordered = [...items.filter((i) => i.kind !== 'hardlink'), ...items.filter((i) => i.kind === 'hardlink')];
  const worker = async () => {
    while (next < ordered.length) await create(ordered[next++]!);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** restoreMetadata, with a failure reported as a warning for `location` (restic goes on, too). */
function applyMetadata(path: string | Buffer, node: Node, location: string, warn: (location: string, message: string) => void): void {
  try {
    restoreMetadata(path, node);
  } catch (err) {
    warn(location, errnoText(err));
  }
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code && e.syscall ? `${e.syscall}: ${e.code}` : (e.message ?? String(err)).split('\n')[0]!;
}

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

/** Creates the directory if missing; returns whether it did. */
async function ensureDir(path: Buffer): Promise<boolean> {
  try {
    const st = await fs.stat(path);
    if (!st.isDirectory()) throw new UsageError(`target ${path.toString()} exists and is not a directory`);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof ResticError) throw err;
      throw new UsageError(`cannot use target ${path.toString()}: ${errnoText(err)}`);
    }
  }
  try {
    await fs.mkdir(path, { recursive: true });
  } catch (err) {
    throw new UsageError(`cannot create target ${path.toString()}: ${errnoText(err)}`);
  }
  return true;
}

/**
 * Fails before anything is moved when a restored entry would meet an existing one it cannot replace
 * (a directory against a non-directory), so the move below does not stop half-way.
 */
async function checkConflicts(src: Buffer, dst: Buffer): Promise<void> {
  for (const name of await fs.readdir(src, { encoding: 'buffer' })) {
    const to = join(dst, name);
    const existing = await fs.lstat(to).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!existing) continue;
    const srcIsDir = (await fs.lstat(join(src, name))).isDirectory();
    if (srcIsDir && existing.isDirectory()) await checkConflicts(join(src, name), to);
    else if (srcIsDir || existing.isDirectory()) {
      throw new ResticError(`cannot restore ${to.toString()}: a ${existing.isDirectory() ? 'directory' : 'file'} of that name exists in the target`);
    }
  }
}

/** Moves a restored entry into place, merging into existing directories and replacing other files. */
async function moveInto(src: Buffer, dst: Buffer): Promise<void> {
  const existing = await fs.lstat(dst).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing?.isDirectory() && (await fs.lstat(src)).isDirectory()) {
    for (const name of await fs.readdir(src, { encoding: 'buffer' })) await moveInto(join(src, name), join(dst, name));
    await fs.rmdir(src);
    return;
  }
  await fs.rename(src, dst);
}

function run(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args);
  if (res.status !== 0) throw new ResticError(`${cmd}: ${res.stderr?.toString().trim() || res.error?.message}`);
}

// Linux dev_t encoding (glibc's gnu_dev_major/minor).
function major(dev: number): number {
  return ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
}
function minor(dev: number): number {
  return (dev & 0xff) | ((dev >>> 12) & ~0xff);
}

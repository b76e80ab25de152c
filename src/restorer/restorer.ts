import { promises as fs } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { restoreMetadata } from '../fs/node.js';
import { IntegrityError, NotFoundError, ResticError, UsageError } from '../errors.js';
import type { Node } from '../repo/node.js';
import type { Id } from '../repo/id.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot.js';
import { decodeTree } from '../repo/tree.js';
import { Semaphore } from '../util/concurrency.js';

export interface RestoreOptions {
  /** Directory to restore into; created when missing. */
  target: string;
  /** Path inside the snapshot whose contents are restored (restic's `snapshot:subfolder`). */
  subfolder?: string;
  /** Files written at once. */
  fileConcurrency?: number;
}

export interface RestoreStats {
  files: number;
  dirs: number;
  bytes: number;
}

const SLASH = 0x2f;

/** Walks a tree path like "home/user/dir" from `treeId` and returns the subtree id of its last element. */
export async function resolveSubtree(repo: Repository, treeId: Id, subfolder: string): Promise<Id> {
  let id = treeId;
  let walked = '';
  for (const part of subfolder.split('/').filter((p) => p !== '' && p !== '.')) {
    const raw = Buffer.from(part);
    const node = decodeTree(await repo.loadBlob('tree', id)).find((n) => n.rawName.equals(raw));
    walked += `/${part}`;
    if (!node) throw new NotFoundError(`path ${walked} not found in snapshot`);
    if (node.type !== 'dir' || !node.subtree) throw new UsageError(`path ${walked} in snapshot is not a directory`);
    id = node.subtree;
  }
  return id;
}

/**
 * Restores a snapshot (or one directory of it) into `target`. Everything is first written into a
 * staging directory inside the target and moved into place only once complete, so a failure (damaged
 * pack, full disk) leaves no partial files behind.
 */
export async function restoreSnapshot(repo: Repository, snapshot: Snapshot, options: RestoreOptions): Promise<RestoreStats> {
  await repo.loadIndex();
  const root = options.subfolder ? await resolveSubtree(repo, snapshot.tree, options.subfolder) : snapshot.tree;
  const target = Buffer.from(options.target.replace(/\/+$/, '') || '/');
  const createdTarget = await ensureDir(target);
  const staging = join(target, Buffer.from(`.restic-ts-restore-${randomBytes(6).toString('hex')}`));
  const restorer = new TreeRestorer(repo, options.fileConcurrency ?? 4);
  try {
    await fs.mkdir(staging, { mode: 0o700 });
    await restorer.restoreTree(root, staging, target);
    for (const name of await fs.readdir(staging, { encoding: 'buffer' })) {
      await moveInto(join(staging, name), join(target, name));
    }
    await fs.rmdir(staging);
    // Directory times last and deepest first: creating their children changes them.
    for (const { path, node } of restorer.dirs.reverse()) await restoreMetadata(path, node);
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true });
    if (createdTarget) await fs.rmdir(target).catch(() => undefined);
    throw err;
  }
  return restorer.stats;
}

class TreeRestorer {
  readonly stats: RestoreStats = { files: 0, dirs: 0, bytes: 0 };
  /** Directories with their final paths, in creation order. */
  readonly dirs: { path: Buffer; node: Node }[] = [];
  private readonly hardlinks = new Map<string, Buffer>();
  private readonly files: Semaphore;

  constructor(
    private readonly repo: Repository,
    concurrency: number,
  ) {
    this.files = new Semaphore(concurrency);
  }

  async restoreTree(treeId: Id, stagingDir: Buffer, finalDir: Buffer): Promise<void> {
    const nodes = decodeTree(await this.repo.loadBlob('tree', treeId));
    await Promise.all(
      nodes.map((node) => {
        checkName(node, treeId);
        return this.restoreNode(node, join(stagingDir, node.rawName), join(finalDir, node.rawName));
      }),
    );
  }

  private async restoreNode(node: Node, path: Buffer, finalPath: Buffer): Promise<void> {
    switch (node.type) {
      case 'dir':
        await fs.mkdir(path, { mode: 0o700 });
        this.dirs.push({ path: finalPath, node });
        this.stats.dirs++;
        if (node.subtree) await this.restoreTree(node.subtree, path, finalPath);
        return;
      case 'file':
        await this.files.run(() => this.restoreFile(node, path));
        break;
      case 'symlink':
        await fs.symlink(node.linktarget ?? '', path);
        break;
      case 'fifo':
        run('mkfifo', [path]);
        break;
      case 'dev':
      case 'chardev':
        run('mknod', [path, node.type === 'dev' ? 'b' : 'c', String(major(node.device ?? 0)), String(minor(node.device ?? 0))]);
        break;
      case 'socket':
        return; // sockets belong to a running process; restic does not restore them either
    }
    await restoreMetadata(path, node);
  }

  private async restoreFile(node: Node, path: Buffer): Promise<void> {
    const linkKey = (node.links ?? 1) > 1 && node.inode ? `${node.deviceId ?? 0}:${node.inode}` : undefined;
    const first = linkKey && this.hardlinks.get(linkKey);
    if (first) {
      await fs.link(first, path);
      return;
    }
    if (linkKey) this.hardlinks.set(linkKey, path);
    const fh = await fs.open(path, 'wx', 0o600);
    try {
      for (const id of node.content ?? []) {
        const data = await this.repo.loadBlob('data', id);
        await fh.write(data);
        this.stats.bytes += data.length;
      }
    } finally {
      await fh.close();
    }
    this.stats.files++;
  }
}

function checkName(node: Node, treeId: Id): void {
  const raw = node.rawName;
  if (raw.length === 0 || raw.includes(SLASH) || raw.equals(Buffer.from('.')) || raw.equals(Buffer.from('..'))) {
    throw new IntegrityError(`tree ${treeId} contains an invalid file name ${JSON.stringify(node.name)}; refusing to restore it`);
  }
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
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await fs.mkdir(path, { recursive: true });
  } catch (err) {
    throw new UsageError(`cannot create target ${path.toString()}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return true;
}

/** Moves a restored entry into place, merging into existing directories and replacing other files. */
async function moveInto(src: Buffer, dst: Buffer): Promise<void> {
  let existing;
  try {
    existing = await fs.lstat(dst);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.rename(src, dst);
    return;
  }
  const srcIsDir = (await fs.lstat(src)).isDirectory();
  if (srcIsDir && existing.isDirectory()) {
    for (const name of await fs.readdir(src, { encoding: 'buffer' })) await moveInto(join(src, name), join(dst, name));
    await fs.rmdir(src);
    return;
  }
  if (srcIsDir || existing.isDirectory()) {
    throw new ResticError(`cannot restore ${dst.toString()}: a ${existing.isDirectory() ? 'directory' : 'file'} of that name exists in the target`);
  }
  await fs.rename(src, dst);
}

function run(cmd: string, args: (string | Buffer)[]): void {
  const res = spawnSync(cmd, args.map((a) => a.toString()));
  if (res.status !== 0) throw new ResticError(`${cmd} ${args[0]!.toString()} failed: ${res.stderr?.toString().trim() || res.error?.message}`);
}

// Linux dev_t encoding (glibc's gnu_dev_major/minor).
function major(dev: number): number {
  return ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
}
function minor(dev: number): number {
  return (dev & 0xff) | ((dev >>> 12) & ~0xff);
}

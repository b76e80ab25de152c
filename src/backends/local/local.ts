import { promises as fs, constants as fsc, type Stats } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Backend, FileInfo, FileType } from '../backend.js';
import { listConfig } from '../backend.js';
import { NotFoundError, PermanentError, ResticError } from '../../errors.js';

const DIRS: FileType[] = ['data', 'index', 'keys', 'locks', 'snapshots'];

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

/** A repository in a directory of the local filesystem, laid out as restic's local backend does. */
export class LocalBackend implements Backend {
  readonly location: string;

  constructor(readonly root: string) {
    this.location = root;
  }

  private filename(type: FileType, name: string): string {
    if (type === 'config') return join(this.root, 'config');
    if (type === 'data') return join(this.root, 'data', name.slice(0, 2), name);
    return join(this.root, type, name);
  }

  async create(): Promise<void> {
    try {
      await fs.access(join(this.root, 'config'));
      throw new ResticError(`repository at ${this.root} already exists (config file present)`);
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
    for (const dir of DIRS) await fs.mkdir(join(this.root, dir), { recursive: true, mode: 0o700 });
    for (let i = 0; i < 256; i++) {
      await fs.mkdir(join(this.root, 'data', i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 });
    }
  }

  async save(type: FileType, name: string, data: Uint8Array): Promise<void> {
    const final = this.filename(type, name);
    // Write under a temporary name, then hard-link into place: the link is atomic and refuses to
    // overwrite, so readers never see a partial file and an existing file is never clobbered.
    const tmp = `${final}-tmp-${randomBytes(8).toString('hex')}`;
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new NotFoundError(`repository directory missing for ${type}/${name} at ${this.root}`);
      throw err;
    }
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await fs.link(tmp, final);
    } catch (err) {
      if (isCode(err, 'EEXIST')) throw new ResticError(`${type}/${name} already exists`);
      throw err;
    } finally {
      await fs.unlink(tmp).catch(() => undefined);
    }
    await fs.chmod(final, 0o400).catch(() => undefined);
  }

  async load(type: FileType, name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const file = this.filename(type, name);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new NotFoundError(`${type}/${name} does not exist`);
      throw err;
    }
    try {
      const size = (await fh.stat()).size;
      const len = length ?? size - offset;
      if (offset < 0 || len < 0 || offset + len > size) {
        throw new PermanentError(`${type}/${name}: range ${offset}+${len} is past the end of the file (size ${size})`);
      }
      const buf = Buffer.allocUnsafe(len);
      let done = 0;
      while (done < len) {
        const { bytesRead } = await fh.read(buf, done, len - done, offset + done);
        if (bytesRead === 0) throw new ResticError(`${type}/${name}: file shrank while reading`);
        done += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  async stat(type: FileType, name: string): Promise<FileInfo> {
    try {
      const st = await fs.stat(this.filename(type, name));
      return { name, size: st.size };
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new NotFoundError(`${type}/${name} does not exist`);
      throw err;
    }
  }

  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    if (type === 'config') {
      yield* listConfig(this);
      return;
    }
    const top = join(this.root, type);
    const dirs = type === 'data' ? (await readdirOrEmpty(top)).map((d) => join(top, d)) : [top];
    for (const dir of dirs) {
      const names = (await readdirOrEmpty(dir)).filter((name) => !name.includes('-tmp-'));
      // A few stats run ahead of the consumer: a directory of thousands of snapshots or packs is not
      // listed one stat round trip at a time, and an early stop leaves at most STAT_AHEAD behind.
      const stats: (Promise<Stats | undefined> | undefined)[] = [];
      for (let i = 0; i < names.length; i++) {
        while (stats.length < Math.min(names.length, i + STAT_AHEAD)) {
          const st = statOrMissing(join(dir, names[stats.length]!));
          st.catch(() => undefined);
          stats.push(st);
        }
        if (signal?.aborted) return;
        const st = await stats[i];
        stats[i] = undefined;
        if (st?.isFile()) yield { name: names[i]!, size: st.size };
      }
    }
  }

  async remove(type: FileType, name: string): Promise<void> {
    try {
      await fs.unlink(this.filename(type, name));
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
  }

  async close(): Promise<void> {}
}

const STAT_AHEAD = 32;

/** A file's stats, or undefined when it was removed since its directory was read. */
async function statOrMissing(path: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(path);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch (err) {
    if (isCode(err, 'ENOENT')) return [];
    throw err;
  }
}

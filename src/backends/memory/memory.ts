import type { Backend, FileInfo, FileType } from '../backend.js';
import { NotFoundError, PermanentError, ResticError } from '../../errors.js';

/** Keeps a repository in process memory: for tests and for staging small repositories. */
export class MemoryBackend implements Backend {
  readonly location = 'memory:';
  private readonly files = new Map<string, Uint8Array>();

  private key(type: FileType, name: string): string {
    return type === 'config' ? 'config' : `${type}/${name}`;
  }

  async create(): Promise<void> {
    if (this.files.has('config')) throw new ResticError('repository in memory already exists (config file present)');
  }

  async save(type: FileType, name: string, data: Uint8Array): Promise<void> {
    const key = this.key(type, name);
    if (this.files.has(key)) throw new ResticError(`${key} already exists`);
    this.files.set(key, Uint8Array.from(data));
  }

  async load(type: FileType, name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const data = this.files.get(this.key(type, name));
    if (!data) throw new NotFoundError(`${this.key(type, name)} does not exist`);
    const len = length ?? data.length - offset;
    if (offset < 0 || len < 0 || offset + len > data.length) {
      throw new PermanentError(`${this.key(type, name)}: range ${offset}+${len} is past the end of the file (size ${data.length})`);
    }
    return data.slice(offset, offset + len);
  }

  async stat(type: FileType, name: string): Promise<FileInfo> {
    const data = this.files.get(this.key(type, name));
    if (!data) throw new NotFoundError(`${this.key(type, name)} does not exist`);
    return { name, size: data.length };
  }

  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    const prefix = type === 'config' ? 'config' : `${type}/`;
    for (const [key, data] of [...this.files]) {
      if (signal?.aborted) return;
      if (type === 'config' ? key === 'config' : key.startsWith(prefix)) {
        yield { name: type === 'config' ? 'config' : key.slice(prefix.length), size: data.length };
      }
    }
  }

  async remove(type: FileType, name: string): Promise<void> {
    this.files.delete(this.key(type, name));
  }

  async close(): Promise<void> {}
}

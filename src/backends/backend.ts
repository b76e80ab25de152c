/** Kinds of files in a repository; each maps to a directory (config is a single file). */
export type FileType = 'config' | 'data' | 'index' | 'keys' | 'locks' | 'snapshots';

export const FILE_TYPES: readonly FileType[] = ['config', 'data', 'index', 'keys', 'locks', 'snapshots'];

export interface FileInfo {
  name: string;
  size: number;
}

/**
 * A plain storage backend: no encryption, no caching, no retries (those are wrappers).
 * Names are the 64-hex file names; for `config` the name is ignored.
 * Errors: a missing file throws NotFoundError; everything else throws a ResticError naming the file.
 */
export interface Backend {
  /** Human-readable location, as given by the user (no secrets). */
  readonly location: string;
  /** Creates the repository layout; fails if a config already exists. */
  create(): Promise<void>;
  /**
   * Stores a file atomically: readers never observe a partial file. Names are content hashes, so a
   * name that exists already holds the same bytes; backends may reject such a save or store it again.
   */
  save(type: FileType, name: string, data: Uint8Array): Promise<void>;
  /**
   * Reads `length` bytes from `offset` (the whole rest of the file when length is omitted).
   * A range past the end of the file is an error (not NotFoundError).
   */
  load(type: FileType, name: string, offset?: number, length?: number): Promise<Uint8Array>;
  stat(type: FileType, name: string): Promise<FileInfo>;
  /** Lists files of one type; stops early when `signal` aborts. */
  list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo>;
  /** Removes a file; removing a missing file is not an error. */
  remove(type: FileType, name: string): Promise<void>;
  close(): Promise<void>;
}

/** Listing of `config` for backends that store it as a plain file: the file if it exists, else nothing. */
export async function* listConfig(backend: Backend): AsyncIterable<FileInfo> {
  try {
    yield await backend.stat('config', 'config');
  } catch (err) {
    if ((err as Error).name !== 'NotFoundError') throw err;
  }
}

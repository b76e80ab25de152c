import { hostname, userInfo } from 'node:os';
import type { Backend, FileType } from '../backends/backend.js';
import { decrypt, encrypt, newMasterKey, randomBytes, sha256Hex, CiphertextError, type MasterKey } from '../crypto/index.js';
import { formatPolynomial, randomPolynomial } from '../chunker/index.js';
import { IntegrityError, NotFoundError, UsageError } from '../errors.js';
import { decompress, initCompression, type CompressionMode } from './compression.js';
import { createBlobEncoder, type BlobEncoder } from './blob-encoder.js';
import { decodeConfig, encodeConfig, type Config } from './config.js';
import { toHex, type Id } from './id.js';
import { decodeIndexFile, encodeIndexFile, MasterIndex, type IndexFile } from './index-file.js';
import { createKeyFile, unlockKey, type UnlockedKey } from './keyfile.js';
import { readPackHeader, type BlobType, type PackedBlob } from './pack.js';
import { Packer } from './packer.js';
import { decodeSnapshot, encodeSnapshot, type NewSnapshot, type Snapshot } from './snapshot.js';
import { SnapshotQuery, type SnapshotFilter } from './snapshot-filter.js';
import { packUnpacked, unpackUnpacked } from './unpacked.js';
import { mapLimit } from '../util/concurrency.js';

export type UnpackedType = 'snapshots' | 'index' | 'locks';

export interface RepositoryOptions {
  /** v2 only: how blobs are compressed (restic's --compression). Default auto. */
  compression?: CompressionMode;
  /** Target pack size in bytes (restic's --pack-size). Default 16 MiB. */
  packSize?: number;
  /** Threads that compress and encrypt new blobs (0: the calling thread). Default: cores, at most 4. */
  encoderThreads?: number;
}

export interface InitOptions extends RepositoryOptions {
  /** Repository format version; 2 (compression) is the default, as in restic ≥ 0.14. */
  version?: 1 | 2;
  /** Chunker polynomial (hex) to reuse, e.g. to share chunking with another repository. */
  chunkerPolynomial?: string;
}

export interface SaveBlobResult {
  id: Id;
  /** True when the blob was already in the repository (or queued), so nothing new was stored. */
  known: boolean;
  /** Bytes newly stored for this blob (0 when known). */
  storedSize: number;
}

/** restic writes an index file once it holds this many blobs (and at the end of each operation). */
const INDEX_FULL_BLOBS = 50_000;

/**
 * An open restic repository: the master key, the config and the blob index, on top of a plain backend.
 * Saving blobs goes through a packer; call flush() to store open packs and the index that references them.
 */
export class Repository {
  readonly index = new MasterIndex();
  private indexLoaded = false;
  private readonly pendingBlobs = new Set<string>();
  private unsavedPacks: { id: Id; blobs: PackedBlob[] }[] = [];
  private readonly packer: Packer;
  private readonly compression: CompressionMode;
  private readonly encoder: BlobEncoder;

  private constructor(
    readonly backend: Backend,
    readonly key: MasterKey,
    readonly keyId: Id,
    readonly config: Config,
    options: RepositoryOptions,
  ) {
    this.compression = config.version === 1 ? 'off' : (options.compression ?? 'auto');
    this.encoder = createBlobEncoder(key, options.encoderThreads);
    this.packer = new Packer(backend, key, { targetSize: options.packSize ?? 16 * 1024 * 1024, maxUploads: 2 }, (id, blobs) => {
      this.index.addPack(id, blobs);
      this.unsavedPacks.push({ id, blobs });
      for (const b of blobs) this.pendingBlobs.delete(pendingKey(b.type, b.id));
    });
  }

  get version(): 1 | 2 {
    return this.config.version;
  }

  /** Creates a new repository: layout, config and a first key for `password`. */
  static async init(backend: Backend, password: string, options: InitOptions = {}): Promise<Repository> {
    await initCompression();
    if (!password) throw new UsageError('an empty password is not allowed');
    const version = options.version ?? 2;
    if (version !== 1 && version !== 2) throw new UsageError(`unsupported repository version ${String(version)}`);
    await backend.create();
    const key = newMasterKey();
    const config: Config = {
      version,
      id: toHex(randomBytes(32)),
      chunkerPolynomial: options.chunkerPolynomial ?? formatPolynomial(randomPolynomial()),
    };
    const keyId = await addKey(backend, key, password);
    await backend.save('config', 'config', encrypt(key, encodeConfig(config)));
    return new Repository(backend, key, keyId, config, options);
  }

  /**
   * Opens a repository by trying `password` against every key file, or with a key unlocked (or being
   * unlocked) by unlockKey(). The config and the zstd module load while scrypt runs.
   */
  static async open(backend: Backend, password: string | UnlockedKey | Promise<UnlockedKey>, options: RepositoryOptions = {}): Promise<Repository> {
    const unlocking = typeof password === 'string' ? unlockKey(backend, password) : Promise.resolve(password);
    // Reported after a missing config, if at all: never an unhandled rejection.
    unlocking.catch(() => undefined);
    const compressionReady = initCompression();
    let stored: Uint8Array;
    try {
      stored = await backend.load('config', 'config');
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`unable to open repository at ${backend.location}: no config file found (is this a restic repository?)`);
      throw err;
    }
    const { key, keyId } = await unlocking;
    let config: Config;
    try {
      config = decodeConfig(decrypt(key, stored));
    } catch (err) {
      throw new IntegrityError(`config: ${(err as Error).message}`);
    }
    await compressionReady;
    return new Repository(backend, key, keyId, config, options);
  }

  /** Adds a key file for another password; returns its id. */
  addKey(password: string): Promise<Id> {
    return addKey(this.backend, this.key, password);
  }

  /** Loads a stored file and checks that its content hashes to its name. */
  async loadVerified(type: Exclude<FileType, 'config'>, id: Id): Promise<Uint8Array> {
    const data = await this.backend.load(type, id);
    if (sha256Hex(data) !== id) throw new IntegrityError(`${type}/${id}: stored data does not match its name (file damaged)`);
    return data;
  }

  /** Loads and decrypts a snapshot, index or lock file; returns its JSON bytes. */
  async loadUnpacked(type: UnpackedType, id: Id): Promise<Uint8Array> {
    const stored = await this.loadVerified(type, id);
    let plain: Uint8Array;
    try {
      plain = decrypt(this.key, stored);
    } catch (err) {
      if (err instanceof CiphertextError) throw new IntegrityError(`${type}/${id}: ciphertext verification failed`);
      throw err;
    }
    return unpackUnpacked(plain, this.version, `${type}/${id}`);
  }

  async saveUnpacked(type: UnpackedType, json: Uint8Array): Promise<Id> {
    const stored = encrypt(this.key, packUnpacked(json, this.version, this.compression !== 'off'));
    const id = sha256Hex(stored);
    await this.backend.save(type, id, stored);
    return id;
  }

  async *listIds(type: Exclude<FileType, 'config'>): AsyncGenerator<Id> {
    for await (const f of this.backend.list(type)) yield f.name;
  }

  /** Reads every index file into `index` (once). */
  async loadIndex(): Promise<MasterIndex> {
    if (this.indexLoaded) return this.index;
    const ids: Id[] = [];
    for await (const id of this.listIds('index')) ids.push(id);
    await mapLimit(ids, 4, async (id) => {
      const file = decodeIndexFile(await this.loadUnpacked('index', id), id);
      for (const p of file.packs) this.index.addPack(p.id, p.blobs);
    });
    this.indexLoaded = true;
    return this.index;
  }

  async saveIndexFile(file: IndexFile): Promise<Id> {
    return this.saveUnpacked('index', encodeIndexFile(file));
  }

  /** Loads, decrypts, decompresses and verifies one blob. */
  async loadBlob(type: BlobType, id: Id): Promise<Uint8Array> {
    const loc = this.index.lookup(type, id);
    if (!loc) throw new NotFoundError(`${type} blob ${id} not found in index`);
    const stored = await this.backend.load('data', loc.packId, loc.offset, loc.length);
    return this.decodeBlob(loc, loc.packId, stored);
  }

  /** Turns a stored blob into its plaintext, checking MAC and content hash. */
  decodeBlob(blob: PackedBlob, packId: Id, stored: Uint8Array): Uint8Array {
    let plain: Uint8Array;
    try {
      plain = decrypt(this.key, stored);
    } catch (err) {
      if (err instanceof CiphertextError) throw new IntegrityError(`pack ${packId}: ${blob.type} blob ${blob.id}: ciphertext verification failed`);
      throw err;
    }
    if (blob.uncompressedLength !== undefined) plain = decompress(plain, blob.uncompressedLength);
    if (sha256Hex(plain) !== blob.id) throw new IntegrityError(`pack ${packId}: ${blob.type} blob ${blob.id}: content does not match its id`);
    return plain;
  }

  /** Stores a blob unless the repository already has it. `id` may be passed when already computed. */
  async saveBlob(type: BlobType, plaintext: Uint8Array, id: Id = sha256Hex(plaintext)): Promise<SaveBlobResult> {
    const key = pendingKey(type, id);
    if (this.index.has(type, id) || this.pendingBlobs.has(key)) return { id, known: true, storedSize: 0 };
    this.pendingBlobs.add(key);
    let encoded;
    try {
      encoded = await this.encoder.encode(plaintext, this.compression);
      await this.packer.add(type, id, encoded.stored, encoded.uncompressedLength);
    } catch (err) {
      this.pendingBlobs.delete(key);
      throw err;
    }
    if (this.unsavedBlobCount() >= INDEX_FULL_BLOBS) await this.writeIndex();
    return { id, known: false, storedSize: encoded.stored.length };
  }

  /** Releases the encoder threads. Unflushed blobs are dropped: call flush() first. */
  async close(): Promise<void> {
    await this.encoder.close();
  }

  /** Stores all open packs, then an index file referencing them. */
  async flush(): Promise<void> {
    await this.packer.flush();
    await this.writeIndex();
  }

  private unsavedBlobCount(): number {
    return this.unsavedPacks.reduce((n, p) => n + p.blobs.length, 0);
  }

  private async writeIndex(): Promise<void> {
    if (this.unsavedPacks.length === 0) return;
    const packs = this.unsavedPacks;
    this.unsavedPacks = [];
    await this.saveIndexFile({ packs });
  }

  /** Lists the blobs of a pack from its header. */
  async listPack(packId: Id): Promise<PackedBlob[]> {
    const { size } = await this.backend.stat('data', packId);
    return readPackHeader(this.key, packId, size, (offset, length) => this.backend.load('data', packId, offset, length));
  }

  async loadSnapshot(id: Id): Promise<Snapshot> {
    return decodeSnapshot(await this.loadUnpacked('snapshots', id), id);
  }

  async saveSnapshot(snapshot: NewSnapshot): Promise<Snapshot> {
    const id = await this.saveUnpacked('snapshots', encodeSnapshot(snapshot));
    return { ...snapshot, id };
  }

  /**
   * Snapshots matching `filter`: `for await (const s of repo.snapshots({ host, tags, paths }))` streams them
   * in listing order; `await repo.snapshots()` gives all of them, oldest first (by time, then id).
   */
  snapshots(filter: SnapshotFilter = {}): SnapshotQuery {
    return new SnapshotQuery(() => this.loadAllSnapshots(), filter);
  }

  /** Loads every snapshot file, a few at a time, yielding them in listing order. */
  private async *loadAllSnapshots(): AsyncGenerator<Snapshot> {
    const ids: Id[] = [];
    for await (const id of this.listIds('snapshots')) ids.push(id);
    const window: Promise<Snapshot>[] = [];
    let next = 0;
    while (next < ids.length || window.length) {
      while (window.length < 8 && next < ids.length) {
        const p = this.loadSnapshot(ids[next++]!);
        // Loads still in the window when iteration stops early must not become unhandled rejections.
        p.catch(() => undefined);
        window.push(p);
      }
      yield await window.shift()!;
    }
  }

  /**
   * Resolves `latest` (the newest snapshot matching `filter`), a full id or a unique id prefix;
   * `filter` applies to `latest` only.
   */
  async findSnapshot(ref: string, filter: SnapshotFilter = {}): Promise<Snapshot> {
    if (ref === 'latest') {
      const all = await this.snapshots(filter);
      const last = all[all.length - 1];
      if (!last) throw new NotFoundError('no snapshot found');
      return last;
    }
    return this.loadSnapshot(await this.resolveId('snapshots', ref));
  }

  /** Resolves a full id or a unique prefix of a stored file's name. */
  async resolveId(type: Exclude<FileType, 'config'>, prefix: string): Promise<Id> {
    if (!/^[0-9a-f]+$/.test(prefix)) throw new UsageError(`invalid id "${prefix}"`);
    const matches: Id[] = [];
    for await (const id of this.listIds(type)) if (id.startsWith(prefix)) matches.push(id);
    const what = type === 'snapshots' ? 'snapshot' : `${type} file`;
    if (matches.length === 0) throw new NotFoundError(`no ${what} matches "${prefix}"`);
    if (matches.length > 1) throw new UsageError(`prefix "${prefix}" is ambiguous: it matches ${matches.length} ${what}s`);
    return matches[0]!;
  }
}

function pendingKey(type: BlobType, id: Id): string {
  return type === 'data' ? id : `t${id}`;
}

async function addKey(backend: Backend, key: MasterKey, password: string): Promise<Id> {
  const info = userInfo();
  const bytes = await createKeyFile(key, password, { username: info.username, hostname: hostname() });
  const id = sha256Hex(bytes);
  await backend.save('keys', id, bytes);
  return id;
}

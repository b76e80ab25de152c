import type { Backend } from '../backends/backend.js';
import { sha256Hex, type MasterKey } from '../crypto/index.js';
import type { Id } from './id.js';
import { PackBuilder, type BlobType, type PackedBlob } from './pack.js';

export interface PackerOptions {
  /** A pack is finished and uploaded once it reaches this size (restic's --pack-size, default 16 MiB). */
  targetSize: number;
  /** Uploads in flight before add() waits (bounds memory to about targetSize × (this + 4)). */
  maxUploads: number;
}

/**
 * Groups encrypted blobs into packs and uploads them. Keeps two open packs per blob type and puts each
 * blob into a random one, so pack boundaries leak less about file sizes (as restic does since 0.18).
 */
export class Packer {
  private readonly open: Record<BlobType, PackBuilder[]> = { data: [], tree: [] };
  private readonly uploads = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly backend: Backend,
    private readonly key: MasterKey,
    private readonly options: PackerOptions,
    /** Called once a pack is fully stored: only then may an index reference its blobs. */
    private readonly onSaved: (packId: Id, blobs: PackedBlob[]) => void,
  ) {}

  async add(type: BlobType, id: Id, stored: Uint8Array, uncompressedLength?: number): Promise<void> {
    this.throwIfFailed();
    const builders = this.open[type];
    if (builders.length < 2) builders.push(new PackBuilder());
    const index = builders.length === 1 ? 0 : Math.floor(Math.random() * builders.length);
    const builder = builders[index]!;
    builder.add(type, id, stored, uncompressedLength);
    if (builder.size >= this.options.targetSize) {
      builders.splice(index, 1);
      this.upload(builder);
      while (this.uploads.size >= this.options.maxUploads) await Promise.race(this.uploads);
      this.throwIfFailed();
    }
  }

  /** Uploads every open pack and waits for all uploads. */
  async flush(): Promise<void> {
    for (const type of ['data', 'tree'] as const) {
      for (const builder of this.open[type].splice(0)) this.upload(builder);
    }
    await Promise.all(this.uploads);
    this.throwIfFailed();
  }

  private upload(builder: PackBuilder): void {
    if (builder.blobs.length === 0) return;
    const task = (async () => {
      const bytes = builder.finish(this.key);
      const packId = sha256Hex(bytes);
      await this.backend.save('data', packId, bytes);
      this.onSaved(packId, builder.blobs);
    })()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.uploads.delete(task));
    this.uploads.add(task);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

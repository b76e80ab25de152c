import { IntegrityError } from '../errors.js';
import { isId, type Id } from './id.js';
import type { BlobType, PackedBlob } from './pack.js';

/** Contents of one `index/<id>` file. */
export interface IndexFile {
  supersedes?: Id[];
  packs: { id: Id; blobs: PackedBlob[] }[];
}

export function encodeIndexFile(index: IndexFile): Uint8Array {
  const json: Record<string, unknown> = {};
  if (index.supersedes?.length) json.supersedes = index.supersedes;
  json.packs = index.packs.map((p) => ({
    id: p.id,
    blobs: p.blobs.map((b) => {
      const blob: Record<string, unknown> = { id: b.id, type: b.type, offset: b.offset, length: b.length };
      if (b.uncompressedLength !== undefined) blob.uncompressed_length = b.uncompressedLength;
      return blob;
    }),
  }));
  return Buffer.from(JSON.stringify(json));
}

/** Parses an index file; unknown fields are ignored (other implementations add some). */
export function decodeIndexFile(json: Uint8Array, name: string): IndexFile {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(json).toString('utf8'));
  } catch {
    throw new IntegrityError(`index ${name}: not valid JSON`);
  }
  const bad = (what: string) => new IntegrityError(`index ${name}: ${what}`);
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const obj = raw as { supersedes?: unknown; packs?: unknown };
  const packsRaw = obj.packs ?? [];
  if (!Array.isArray(packsRaw)) throw bad('"packs" is not a list');
  const packs = packsRaw.map((p: { id?: unknown; blobs?: unknown }) => {
    if (typeof p?.id !== 'string' || !isId(p.id)) throw bad('pack with invalid id');
    if (!Array.isArray(p.blobs)) throw bad(`pack ${p.id} has no blob list`);
    const blobs = p.blobs.map((b: Record<string, unknown>): PackedBlob => {
      const { id, type, offset, length, uncompressed_length: ul } = b;
      if (typeof id !== 'string' || !isId(id)) throw bad(`pack ${String(p.id)}: blob with invalid id`);
      if (type !== 'data' && type !== 'tree') throw bad(`blob ${id}: invalid type`);
      if (typeof offset !== 'number' || typeof length !== 'number') throw bad(`blob ${id}: invalid offset/length`);
      const blob: PackedBlob = { id, type: type as BlobType, offset, length };
      if (typeof ul === 'number' && ul > 0) blob.uncompressedLength = ul;
      return blob;
    });
    return { id: p.id, blobs };
  });
  const supersedes = Array.isArray(obj.supersedes) ? obj.supersedes.filter((s): s is string => typeof s === 'string') : undefined;
  return supersedes?.length ? { supersedes, packs } : { packs };
}

/** Where a blob lives. */
export interface BlobLocation extends PackedBlob {
  packId: Id;
}

/** All index files of a repository merged: blob id → location, pack id → blobs. */
export class MasterIndex {
  private readonly blobs = new Map<string, BlobLocation>();
  readonly packs = new Map<Id, PackedBlob[]>();

  /** Adds every pack of an index file (first location of a duplicated blob wins). */
  addPack(packId: Id, blobs: readonly PackedBlob[]): void {
    const list = this.packs.get(packId) ?? [];
    for (const b of blobs) {
      list.push(b);
      const key = blobKey(b.type, b.id);
      if (!this.blobs.has(key)) this.blobs.set(key, { ...b, packId });
    }
    this.packs.set(packId, list);
  }

  lookup(type: BlobType, id: Id): BlobLocation | undefined {
    return this.blobs.get(blobKey(type, id));
  }

  has(type: BlobType, id: Id): boolean {
    return this.blobs.has(blobKey(type, id));
  }

  get blobCount(): number {
    return this.blobs.size;
  }

  *allBlobs(): IterableIterator<BlobLocation> {
    yield* this.blobs.values();
  }
}

function blobKey(type: BlobType, id: Id): string {
  return type === 'data' ? id : `t${id}`;
}

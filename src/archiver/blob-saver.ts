import { CRYPTO_OVERHEAD, sha256Hex } from '../crypto/index.js';
import { compress } from '../repo/compression.js';
import type { Id } from '../repo/id.js';
import type { BlobType } from '../repo/pack.js';
import type { Repository } from '../repo/repository.js';

export interface SavedBlob {
  id: Id;
  /** Already in the repository (or saved earlier in this run): nothing added. */
  known: boolean;
  /** Plaintext length. */
  length: number;
  /** Bytes added to the repository (0 when known). */
  sizeInRepo: number;
}

/** Stores blobs through the repository (which hashes, deduplicates, compresses, encrypts and packs). */
export interface BlobSaver {
  save(type: BlobType, data: Uint8Array): Promise<SavedBlob>;
  /** Writes open packs and the index. */
  flush(): Promise<void>;
}

export function repositoryBlobSaver(repo: Repository): BlobSaver {
  return {
    async save(type, data) {
      const r = await repo.saveBlob(type, data);
      return { id: r.id, known: r.known, length: data.length, sizeInRepo: r.storedSize };
    },
    flush: () => repo.flush(),
  };
}

/**
 * --dry-run: decides what would be stored without writing anything. The size in the repository is
 * estimated with the default compression (Repository has no write-free mode to ask).
 */
export function dryRunBlobSaver(repo: Repository): BlobSaver {
  const seen = new Set<string>();
  return {
    async save(type, data) {
      const id = sha256Hex(data);
      const key = type + id;
      if (repo.index.has(type, id) || seen.has(key)) return { id, known: true, length: data.length, sizeInRepo: 0 };
      seen.add(key);
      let stored = data.length;
      if (repo.version === 2) stored = Math.min(stored, compress(data, 'auto').length);
      return { id, known: false, length: data.length, sizeInRepo: stored + CRYPTO_OVERHEAD };
    },
    flush: () => Promise.resolve(),
  };
}

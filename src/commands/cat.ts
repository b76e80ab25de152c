import { masterKeyToJSON } from '../crypto/index.js';
import { NotFoundError, UsageError } from '../errors.js';
import { isId } from '../repo/id.js';
import { parseKeyFile } from '../repo/keyfile.js';
import type { Repository } from '../repo/repository.js';
import { snapshotToJSON } from '../repo/snapshot.js';
import { resolveSubtree } from '../restorer/restorer.js';
import { splitSnapshotRef } from './restore.js';

export const CAT_KINDS = ['config', 'masterkey', 'snapshot', 'index', 'key', 'blob', 'tree', 'pack', 'lock'] as const;
export type CatKind = (typeof CAT_KINDS)[number];

/**
 * `restic cat`: the decrypted content of one repository object. JSON objects come back pretty-printed
 * as restic prints them; blobs and packs as raw bytes.
 */
export async function cat(repo: Repository, kind: CatKind, arg?: string): Promise<Uint8Array> {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, '  ') + '\n');
  const needArg = () => {
    if (!arg) throw new UsageError(`cat ${kind} needs an ID`);
    return arg;
  };
  switch (kind) {
    case 'config':
      return json({ version: repo.config.version, id: repo.config.id, chunker_polynomial: repo.config.chunkerPolynomial });
    case 'masterkey':
      return json(masterKeyToJSON(repo.key));
    case 'snapshot':
      return json(snapshotToJSON(await repo.findSnapshot(needArg())));
    case 'index':
      return repo.loadUnpacked('index', await repo.resolveId('index', needArg()));
    case 'lock':
      return repo.loadUnpacked('locks', await repo.resolveId('locks', needArg()));
    case 'key': {
      const id = await repo.resolveId('keys', needArg());
      return json(parseKeyFile(await repo.loadVerified('keys', id)));
    }
    case 'pack':
      return repo.backend.load('data', await repo.resolveId('data', needArg()));
    case 'blob': {
      const id = needArg();
      if (!isId(id)) throw new UsageError(`invalid blob id "${id}": expected 64 hex characters`);
      await repo.loadIndex();
      for (const type of ['data', 'tree'] as const) {
        if (repo.index.has(type, id)) return repo.loadBlob(type, id);
      }
      throw new NotFoundError(`blob ${id} not found`);
    }
    case 'tree': {
      await repo.loadIndex();
      const { ref, subfolder } = splitSnapshotRef(needArg());
      const snapshot = await repo.findSnapshot(ref);
      const tree = subfolder ? await resolveSubtree(repo, snapshot.tree, subfolder) : snapshot.tree;
      return repo.loadBlob('tree', tree);
    }
  }
}

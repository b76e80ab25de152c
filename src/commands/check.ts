import { ResticError } from '../errors.js';
import { sha256Hex } from '../crypto/index.js';
import type { Id } from '../repo/id.js';
import type { PackedBlob } from '../repo/pack.js';
import type { Repository } from '../repo/repository.js';
import { decodeTree } from '../repo/tree.js';
import { mapLimit } from '../util/concurrency.js';

export interface CheckOptions {
  /** Also download every pack and verify every blob (restic's --read-data). */
  readData?: boolean;
  /** Called with each phase name as restic prints it ("load indexes", ...). */
  onPhase?: (phase: string) => void;
}

export interface CheckResult {
  /** Problems that make the repository unusable in part. */
  errors: string[];
  /** Harmless findings, such as packs no index references. */
  warnings: string[];
}

/** `restic check`: structure (index ↔ packs, snapshots → trees → blobs) and optionally all data. */
export async function check(repo: Repository, options: CheckOptions = {}): Promise<CheckResult> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const phase = options.onPhase ?? (() => undefined);
  const describe = (err: unknown) => (err instanceof ResticError ? err.message : String(err));

  phase('load indexes');
  await repo.loadIndex();

  phase('check all packs');
  const stored = new Map<Id, number>();
  for await (const f of repo.backend.list('data')) stored.set(f.name, f.size);
  for (const [packId, blobs] of repo.index.packs) {
    const size = stored.get(packId);
    if (size === undefined) {
      errors.push(`pack ${packId}: does not exist`);
      continue;
    }
    const expected = expectedPackSize(blobs);
    if (size < expected) errors.push(`pack ${packId}: file is ${size} bytes, index expects at least ${expected}`);
  }
  for (const packId of stored.keys()) {
    if (!repo.index.packs.has(packId)) warnings.push(`pack ${packId}: not referenced in any index`);
  }
  await mapLimit([...repo.index.packs.keys()].filter((id) => stored.has(id)), 4, async (packId) => {
    try {
      const header = await repo.listPack(packId);
      const indexed = new Set(repo.index.packs.get(packId)!.map((b) => `${b.type}:${b.id}:${b.offset}:${b.length}`));
      for (const b of header) {
        if (!indexed.has(`${b.type}:${b.id}:${b.offset}:${b.length}`)) errors.push(`pack ${packId}: blob ${b.id} in header does not match the index`);
      }
    } catch (err) {
      errors.push(describe(err));
    }
  });

  phase('check snapshots, trees and blobs');
  const seenTrees = new Set<Id>();
  const visitTree = async (treeId: Id, where: string): Promise<void> => {
    if (seenTrees.has(treeId)) return;
    seenTrees.add(treeId);
    let nodes;
    try {
      nodes = decodeTree(await repo.loadBlob('tree', treeId));
    } catch (err) {
      errors.push(`tree ${treeId} (${where}): ${describe(err)}`);
      return;
    }
    for (const node of nodes) {
      const path = `${where}/${node.name}`;
      if (node.type === 'file') {
        for (const id of node.content ?? []) {
          if (!repo.index.has('data', id)) errors.push(`tree ${treeId}: file ${JSON.stringify(path)}: data blob ${id} not found in index`);
        }
      } else if (node.type === 'dir') {
        if (!node.subtree) errors.push(`tree ${treeId}: dir ${JSON.stringify(path)} has no subtree`);
        else await visitTree(node.subtree, path);
      }
    }
  };
  for await (const id of repo.listIds('snapshots')) {
    try {
      const snap = await repo.loadSnapshot(id);
      await visitTree(snap.tree, `snapshot ${id.slice(0, 8)}`);
    } catch (err) {
      errors.push(`snapshot ${id}: ${describe(err)}`);
    }
  }

  if (options.readData) {
    phase('read all data');
    await mapLimit([...repo.index.packs.keys()].filter((id) => stored.has(id)), 2, async (packId) => {
      try {
        await readPack(repo, packId, repo.index.packs.get(packId)!);
      } catch (err) {
        errors.push(describe(err));
      }
    });
  }
  return { errors, warnings };
}

function expectedPackSize(blobs: readonly PackedBlob[]): number {
  return blobs.reduce((end, b) => Math.max(end, b.offset + b.length), 0);
}

/** Downloads one pack and verifies its hash and every blob in it. */
async function readPack(repo: Repository, packId: Id, blobs: readonly PackedBlob[]): Promise<void> {
  const data = await repo.backend.load('data', packId);
  if (sha256Hex(data) !== packId) throw new ResticError(`pack ${packId}: content does not match its name (file damaged)`);
  for (const blob of blobs) repo.decodeBlob(blob, packId, data.subarray(blob.offset, blob.offset + blob.length));
}

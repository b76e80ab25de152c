import { constants as fsc, promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { IntegrityError, NotFoundError } from '../errors.js';
import type { Node } from '../repo/node.js';
import type { Repository } from '../repo/repository.js';
import { blobPlainSize } from './filerestorer.js';

export interface FileToVerify {
  /** The restored file. */
  path: Buffer;
  /** Path inside the snapshot, for messages. */
  location: string;
  node: Node;
}

// Files read at once; each worker reuses one buffer (restic's nVerifyWorkers is 8, but Node's file
// I/O runs on a 4-thread pool).
const WORKERS = 4;

/**
 * restic's --verify: re-reads every restored file and checks its size and that each range hashes to
 * the blob id the snapshot names. Throws on the first mismatch; returns the number of files checked.
 */
export async function verifyFiles(repo: Repository, files: readonly FileToVerify[]): Promise<number> {
  let next = 0;
  let checked = 0;
  let failed = false;
  const worker = async () => {
    let buf: Buffer = Buffer.alloc(0);
    while (!failed && next < files.length) {
      const f = files[next++]!;
      try {
        buf = await verifyFile(repo, f, buf);
      } catch (err) {
        failed = true;
        throw err;
      }
      checked++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(WORKERS, files.length) }, worker));
  return checked;
}

async function verifyFile(repo: Repository, f: FileToVerify, scratch: Buffer): Promise<Buffer> {
  const fh = await fs.open(f.path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const size = (await fh.stat()).size;
    const want = f.node.size ?? 0;
    if (size !== want) throw new IntegrityError(`verify ${f.location}: size is ${size}, expected ${want}`);
    let offset = 0;
    for (const id of f.node.content ?? []) {
      const loc = repo.index.lookup('data', id);
      if (!loc) throw new NotFoundError(`verify ${f.location}: data blob ${id} not found in index`);
      const length = blobPlainSize(loc);
      if (scratch.length < length) scratch = Buffer.alloc(Math.max(length, 2 * scratch.length));
      let bytesRead = 0;
      for (let n = -1; n !== 0 && bytesRead < length; bytesRead += n) {
        n = (await fh.read(scratch, bytesRead, length - bytesRead, offset + bytesRead)).bytesRead;
      }
      const got = createHash('sha256').update(scratch.subarray(0, bytesRead)).digest('hex');
      if (bytesRead !== length || got !== id) throw new IntegrityError(`verify ${f.location}: unexpected content at offset ${offset}`);
      offset += length;
    }
  } finally {
    await fh.close();
  }
  return scratch;
}

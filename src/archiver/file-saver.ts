import { createReadStream } from 'node:fs';
import { Chunker } from '../chunker/index.js';
import type { Repository } from '../repo/repository.js';
import type { Id } from '../repo/id.js';
import type { BackupStats } from './stats.js';

/** Reads size: large enough to keep syscalls rare, small next to the chunker's 8 MiB maximum. */
const READ_SIZE = 1024 * 1024;

/** Chunks one file's content and stores its data blobs; returns the ordered blob ids. */
export async function saveFileContent(repo: Repository, chunker: Chunker, path: string | Buffer, stats: BackupStats): Promise<Id[]> {
  const content: Id[] = [];
  const stream = createReadStream(path, { highWaterMark: READ_SIZE });
  for await (const chunk of chunker.chunks(stream)) {
    const saved = await repo.saveBlob('data', chunk);
    content.push(saved.id);
    stats.bytesProcessed += chunk.length;
    if (saved.known) continue;
    stats.dataBlobs++;
    stats.dataAdded += saved.storedSize;
  }
  return content;
}

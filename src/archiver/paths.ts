// Absolute paths as raw bytes: file names need not be valid UTF-8.
const SLASH = Buffer.from('/');

export function joinPath(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, dir.length === 1 && dir[0] === 0x2f ? Buffer.alloc(0) : SLASH, name]);
}

export function parentDir(p: Buffer): Buffer {
  const i = p.lastIndexOf(0x2f);
  return i <= 0 ? SLASH : p.subarray(0, i);
}

export function baseName(p: Buffer): Buffer {
  return p.subarray(p.lastIndexOf(0x2f) + 1);
}

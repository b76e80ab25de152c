/** Node types as restic writes them in trees. */
export type NodeType = 'file' | 'dir' | 'symlink' | 'dev' | 'chardev' | 'fifo' | 'socket';

/**
 * One entry of a restic tree, mirroring restic's Node struct.
 * Times are kept as the exact strings restic stores (Go RFC3339Nano, e.g. "2026-11-27T21:00:10.102349882Z")
 * so that a tree read and written again is byte-identical.
 */
export interface Node {
  /** File name as raw bytes: names need not be valid UTF-8. */
  rawName: Buffer;
  /** `rawName` decoded as UTF-8 (invalid bytes become U+FFFD); for display only. */
  name: string;
  type: NodeType;
  /** Go os.FileMode bits (type bits high, e.g. dir = 0x80000000), not POSIX st_mode. */
  mode?: number;
  mtime: string;
  atime: string;
  ctime: string;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  /** bigint only above Number.MAX_SAFE_INTEGER (hashed inode numbers of FUSE/CIFS, other OSes' st_dev). */
  inode?: number | bigint;
  deviceId?: number | bigint;
  size?: number;
  links?: number;
  linktarget?: string;
  /** Extended attributes (restic's `extended_attributes`); values are raw bytes. */
  extendedAttributes?: { name: string; value: Buffer }[];
  /** st_rdev for device nodes. */
  device?: number;
  /** Data blob ids (hex) for files; restic writes `null` for non-files. */
  content: string[] | null;
  /** Tree blob id (hex) for directories. */
  subtree?: string;
  error?: string;
}

// Constants of restic's REST protocol shared by our client and server.

/** Media types of a listing: v1 is a JSON array of names, v2 an array of {name, size}. */
export const MIME_V1 = 'application/vnd.x.restic.rest.v1';
export const MIME_V2 = 'application/vnd.x.restic.rest.v2';

/** Directories of a repository that hold content-named files. */
export const OBJECT_TYPES = ['data', 'index', 'keys', 'locks', 'snapshots'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

export function isObjectType(s: string): s is ObjectType {
  return (OBJECT_TYPES as readonly string[]).includes(s);
}

/** A file name of an object: the lowercase hex SHA-256 of its content. */
export const OBJECT_NAME = /^[0-9a-f]{64}$/;

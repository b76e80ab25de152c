import { getSystemErrorMap } from 'node:util';

let errnoText: Map<number, [string, string]> | undefined;

/** The C library's text for an errno (as Go's syscall.Errno prints it), e.g. "permission denied". */
function describe(err: NodeJS.ErrnoException): string {
  if (typeof err.errno === 'number') {
    errnoText ??= getSystemErrorMap();
    const text = errnoText.get(err.errno)?.[1];
    if (text) return text;
  }
  return err.code ?? err.message;
}

export function isErrnoError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z0-9]+$/.test((err as NodeJS.ErrnoException).code!);
}

/**
 * A problem with one file or directory: reported, the item skipped, the backup goes on. `json` is how
 * restic 0.14's --json output encodes the Go error: {Op, Path, Err: errno} for an *os.PathError, {}
 * for wrapped errors.
 */
export class ItemError extends Error {
  override name = 'ItemError';
  constructor(
    message: string,
    readonly json: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Go's *os.PathError text, "open /x: permission denied"; `wrap` prefixes it like errors.Wrap. */
export function pathError(op: string, path: string, err: unknown, wrap?: string): ItemError {
  if (!isErrnoError(err)) return new ItemError(err instanceof Error ? err.message : String(err));
  const text = `${op} ${path}: ${describe(err)}`;
  if (wrap) return new ItemError(`${wrap}: ${text}`);
  return new ItemError(text, { Op: op, Path: path, Err: Math.abs(err.errno ?? 0) });
}

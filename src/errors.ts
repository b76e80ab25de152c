/** Base class of every error restic-ts throws on purpose; `message` is one line meant for users. */
export class ResticError extends Error {
  override name = 'ResticError';
}

/** A repository file or blob that should exist does not. */
export class NotFoundError extends ResticError {
  override name = 'NotFoundError';
}

/** Stored bytes failed their MAC or hash check, or could not be parsed. */
export class IntegrityError extends ResticError {
  override name = 'IntegrityError';
}

/** No key file could be opened with the given password. */
export class WrongPasswordError extends ResticError {
  override name = 'WrongPasswordError';
  constructor() {
    super('wrong password or no key found');
  }
}

/** The caller passed something unusable (bad flag, bad id, bad path). */
export class UsageError extends ResticError {
  override name = 'UsageError';
}

/** A backend failure that retrying cannot fix (bad credentials, refused by policy, range past the end). */
export class PermanentError extends ResticError {
  override name = 'PermanentError';
}

// API errors carry the `Status` object the real API server would send, so the HTTP layer can
// return it verbatim and kubectl prints its familiar `Error from server (Reason): …` lines.
import { ResticError } from '../errors.js';
import type { JsonObject } from './types.js';

export type StatusReason =
  | 'BadRequest'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'Forbidden'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'Expired'
  | 'Gone'
  | 'RequestEntityTooLarge'
  | 'InternalError';

const CODES: Record<StatusReason, number> = {
  BadRequest: 400,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Invalid: 422,
  Forbidden: 403,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  UnsupportedMediaType: 415,
  Expired: 410,
  Gone: 410,
  RequestEntityTooLarge: 413,
  InternalError: 500,
};

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
}

/** A failed API call; `status()` is the wire form. */
export class KubeApiError extends ResticError {
  override name = 'KubeApiError';
  readonly code: number;
  constructor(
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.code = CODES[reason];
  }

  status(): JsonObject {
    const s: JsonObject = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) s.details = JSON.parse(JSON.stringify(this.details)) as JsonObject;
    return s;
  }
}

/** The resource as it appears in messages: `secrets`, `foos.example.com`. */
export interface QualifiedResource {
  group: string;
  plural: string;
}

function qualified(r: QualifiedResource): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

export function notFound(r: QualifiedResource, name: string): KubeApiError {
  return new KubeApiError('NotFound', `${qualified(r)} "${name}" not found`, { name, group: r.group || undefined, kind: r.plural });
}

export function alreadyExists(r: QualifiedResource, name: string): KubeApiError {
  return new KubeApiError('AlreadyExists', `${qualified(r)} "${name}" already exists`, { name, group: r.group || undefined, kind: r.plural });
}

export function conflict(r: QualifiedResource, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): KubeApiError {
  return new KubeApiError('Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, {
    name,
    group: r.group || undefined,
    kind: r.plural,
  });
}

export function badRequest(message: string): KubeApiError {
  return new KubeApiError('BadRequest', message);
}

/** One field error in the shape apimachinery's field.Error prints. */
export interface FieldError {
  field: string;
  /** FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueForbidden, FieldValueTooLong, … */
  type: string;
  /** Detail text after the type prefix, e.g. `Required value` or `Invalid value: "x": must be …`. */
  detail: string;
}

/** 422 Invalid: `Kind.group "name" is invalid: field: detail` (several errors are bracketed). */
export function invalid(kind: string, group: string, name: string, errors: FieldError[]): KubeApiError {
  const parts = errors.map((e) => `${e.field}: ${e.detail}`);
  const joined = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  const qkind = group ? `${kind}.${group}` : kind;
  return new KubeApiError('Invalid', `${qkind} "${name}" is invalid: ${joined}`, {
    name,
    group: group || undefined,
    kind,
    causes: errors.map((e) => ({ reason: e.type, message: e.detail, field: e.field })),
  });
}

/**
 * Engine errors: one class with a kind (after containerd's errdefs) and a stable code.
 * Kinds are turned into HTTP status codes in exactly one place (api/errors.ts) and into
 * CLI exit codes in cli/. Code never reformats error strings; wrapping keeps the kind.
 */
export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'already-exists'
  | 'conflict'
  | 'failed-precondition'
  | 'not-modified'
  | 'unauthenticated'
  | 'permission-denied'
  | 'unavailable'
  | 'resource-exhausted'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'not-implemented'
  | 'internal';

export interface EngineErrorOptions {
  code?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** An error that knows what kind of failure it is. */
export class EngineError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(kind: ErrorKind, message: string, opts: EngineErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'EngineError';
    this.kind = kind;
    this.code = opts.code ?? kind.toUpperCase().replace(/-/g, '_');
    this.details = opts.details;
  }
}

/** True when err (or anything in its cause chain) is an EngineError of kind k. */
export function isKind(err: unknown, k: ErrorKind): boolean {
  let e: unknown = err;
  for (let i = 0; i < 16 && e; i++) {
    if (e instanceof EngineError && e.kind === k) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The kind of err, 'internal' when it is not an EngineError. */
export function kindOf(err: unknown): ErrorKind {
  if (err instanceof EngineError) return err.kind;
  if (err && (err as { name?: string }).name === 'AbortError') return 'cancelled';
  return 'internal';
}

export const isNotFound = (err: unknown): boolean => isKind(err, 'not-found');

export function invalidArgument(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('invalid-argument', message, opts);
}
/** Docker wording: "No such container: x", "No such image: x". */
export function notFound(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('not-found', message, opts);
}
export function alreadyExists(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('already-exists', message, opts);
}
export function conflict(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('conflict', message, opts);
}
export function failedPrecondition(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('failed-precondition', message, opts);
}
export function notModified(message = 'not modified'): EngineError {
  return new EngineError('not-modified', message);
}
export function unavailable(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('unavailable', message, opts);
}
export function notImplemented(message: string): EngineError {
  return new EngineError('not-implemented', message);
}
export function internal(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('internal', message, opts);
}
export function permissionDenied(message: string, opts?: EngineErrorOptions): EngineError {
  return new EngineError('permission-denied', message, opts);
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The error a non-2xx daemon response becomes: it carries the HTTP status and the daemon's message.
 */
import { EngineError, type ErrorKind } from '../base/errors.js';

/** Map an HTTP status back to an error kind (the inverse of api/errors.ts, for the client side). */
export function kindForStatus(status: number): ErrorKind {
  switch (status) {
    case 304: return 'not-modified';
    case 400: return 'invalid-argument';
    case 401: return 'unauthenticated';
    case 403: return 'permission-denied';
    case 404: return 'not-found';
    case 409: return 'conflict';
    case 501: return 'not-implemented';
    case 503: return 'unavailable';
    default: return 'internal';
  }
}

/** A daemon error response: status + `{"message"}`. */
export class ApiError extends EngineError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(kindForStatus(status), message, { code: `HTTP_${status}` });
    this.name = 'ApiError';
    this.status = status;
  }
}

/** A failure to reach the daemon at all (ENOENT, ECONNREFUSED…). */
export class ConnectionError extends EngineError {
  readonly address: string;
  constructor(address: string, cause: unknown) {
    super(
      'unavailable',
      `Cannot connect to the berth daemon at ${address}. Is the berth daemon running?`,
      { cause, code: 'CANNOT_CONNECT' },
    );
    this.name = 'ConnectionError';
    this.address = address;
  }
}

/** Decode an error body: JSON `{"message"}` when possible, else the raw text. */
export function errorMessageFromBody(status: number, body: string): string {
  const t = body.trim();
  if (t) {
    try {
      const j = JSON.parse(t) as { message?: unknown };
      if (j && typeof j.message === 'string') return j.message;
    } catch {
      /* not JSON */
    }
    return t;
  }
  return `HTTP ${status}`;
}

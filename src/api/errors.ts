/**
 * The ONLY place that turns an EngineError kind into an HTTP status (house-style §3).
 * Body shape is Docker's `{"message": "…"}`. Unexpected (non-EngineError) failures are logged with
 * their stack and answered with a generic message; cancellations are never logged as failures.
 */
import type { ServerResponse } from 'node:http';

import { EngineError, kindOf, messageOf, type ErrorKind } from '../base/errors.js';

/** HTTP status for each error kind (moby api/server/httpstatus + house-style §3). */
export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  'invalid-argument': 400,
  unauthenticated: 401,
  'permission-denied': 403,
  'not-found': 404,
  'already-exists': 409,
  conflict: 409,
  'failed-precondition': 409,
  'not-modified': 304,
  'not-implemented': 501,
  unavailable: 503,
  'resource-exhausted': 500,
  cancelled: 500,
  'deadline-exceeded': 500,
  internal: 500,
};

/** The generic wire message for unexpected failures. */
export const INTERNAL_MESSAGE = 'internal server error';

/** How one failure goes on the wire and into the log. */
export interface ErrorReply {
  status: number;
  /** Wire message (`{"message"}`); empty for 304. */
  message: string;
  kind: ErrorKind;
  /** Log line to write, or undefined when the failure is not worth logging (cancellation, client errors). */
  log?: string;
}

/** HTTP status for an error kind. */
export function statusForKind(kind: ErrorKind): number {
  return STATUS_BY_KIND[kind];
}

/**
 * Classify any thrown value. EngineErrors keep their (engine-authored) message; anything else is a
 * bug or an unclassified foreign error: generic message on the wire, full stack in the log.
 */
export function errorReply(err: unknown): ErrorReply {
  const kind = kindOf(err);
  const status = statusForKind(kind);
  if (!(err instanceof EngineError)) {
    if (kind === 'cancelled') return { status, kind, message: 'request cancelled' };
    const stack = err instanceof Error ? (err.stack ?? err.message) : String(err);
    return { status, kind, message: INTERNAL_MESSAGE, log: `internal error: ${stack}` };
  }
  const reply: ErrorReply = { status, kind, message: kind === 'not-modified' ? '' : err.message };
  if (kind === 'internal') reply.log = `internal error [${err.code}]: ${stackWithCauses(err)}`;
  return reply;
}

function stackWithCauses(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 8 && e; i++) {
    parts.push(e instanceof Error ? (e.stack ?? e.message) : messageOf(e));
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join('\ncaused by: ');
}

/** The JSON line Docker uses for a failure inside an already-started JSON stream. */
export function streamErrorLine(err: unknown): string {
  const { message } = errorReply(err);
  return JSON.stringify({ errorDetail: { message }, error: message }) + '\n';
}

/**
 * Write an error as a complete response (headers not yet sent). 304 has no body. When the headers
 * are already out, the response is just ended.
 */
export function writeErrorResponse(res: ServerResponse, err: unknown, log: (msg: string) => void, reqTag: string): void {
  const reply = errorReply(err);
  if (reply.log) log(`${reqTag} ${reply.log}`);
  if (res.headersSent) {
    res.end();
    return;
  }
  if (reply.status === 304) {
    res.writeHead(304);
    res.end();
    return;
  }
  const body = JSON.stringify({ message: reply.message }) + '\n';
  res.writeHead(reply.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

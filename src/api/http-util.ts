/**
 * Small response/request helpers for the API edge: JSON bodies, streamed responses that flush
 * their headers at once, and backpressure-aware writes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';

import { EngineError, invalidArgument } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import { checkBodyTypes, type Schema } from '../wire/body-types.js';

/** Largest JSON request body accepted (create bodies are a few KiB; this guards memory). */
export const MAX_JSON_BODY = 64 << 20;

/** Read a whole request body (chunked or not; Node's parser de-chunks). */
export async function readBody(req: IncomingMessage, limit = MAX_JSON_BODY): Promise<Buffer> {
  const tooLarge = (): EngineError => invalidArgument(`request body too large (limit ${limit} bytes)`);
  // Refuse at once what could never fit (e.g. a 10 GB Content-Length), without waiting for it.
  const declared = Number(req.headers['content-length'] ?? 0);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw tooLarge();
      parts.push(chunk);
    }
  } catch (e) {
    if (e instanceof EngineError) throw e;
    // The client went away mid-body ("aborted", ECONNRESET): a cancellation, not a daemon fault.
    throw new EngineError('cancelled', 'request cancelled: the client closed the connection', { cause: e });
  }
  return Buffer.concat(parts);
}

/** Parse JSON bytes; empty (or whitespace) gives undefined; malformed gives invalid-argument (400). */
export function parseJsonBody(buf: Buffer): unknown {
  const text = buf.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw invalidArgument(`invalid JSON in request body: ${(e as Error).message}`);
  }
}

/**
 * Read and parse a JSON request body; undefined when empty. With a schema, field types are checked
 * as moby's decoder does (wrong type → 400 with Go's wording; unknown fields ignored).
 */
export async function readJson(req: IncomingMessage, schema?: Schema): Promise<unknown> {
  const v = parseJsonBody(await readBody(req));
  if (schema) checkBodyTypes(v, schema);
  return v;
}

/** Read a JSON body that must be an object (or empty/null → `{}`), optionally type-checked. */
export async function readJsonObject(req: IncomingMessage, schema?: Schema): Promise<Json> {
  return asObject(await readJson(req, schema));
}

/** Coerce a parsed body to an object: undefined/null → `{}`, non-object → invalid-argument. */
export function asObject(v: unknown): Json {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidArgument('invalid JSON in request body: expected an object');
  return v as Json;
}

/** Send a complete JSON response (moby's encoder ends with a newline). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Send a response with no body (204, 201, 200). */
export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, status === 204 || status === 304 ? {} : { 'Content-Length': 0 });
  res.end();
}

/** Send a plain-text response. */
export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Write the status line and headers now (streaming responses, compat §2 / podman #23712). */
export function startStream(res: ServerResponse, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(200, { 'Content-Type': contentType, ...extra });
  res.flushHeaders();
}

/**
 * Write with backpressure: resolves once the chunk is accepted (drained), or when the stream is
 * closed/destroyed (returns false then, so callers stop producing).
 */
export function writeChunk(out: Writable, chunk: Buffer | string): Promise<boolean> {
  if (out.destroyed || out.writableEnded) return Promise.resolve(false);
  if (out.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onClose);
  });
}

/** Serialize one NDJSON line. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value) + '\n';
}

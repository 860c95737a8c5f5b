/**
 * Serve an async iterable of JSON messages as an NDJSON response (progress, events, stats).
 */
import type { ServerResponse } from 'node:http';

import { messageOf } from '../base/errors.js';
import { streamErrorLine } from './errors.js';
import { jsonLine, startStream, writeChunk } from './http-util.js';

/** Options of streamJson. */
export interface StreamJsonOptions {
  signal: AbortSignal;
  /**
   * How long to wait for the first message before flushing the headers anyway. Waiting lets an
   * error raised before any output become a proper HTTP status (e.g. 404); 0 flushes at once.
   */
  primeMs: number;
  log?: (msg: string) => void;
  contentType?: string;
}

/**
 * Stream `iterable` as one JSON value per line. Errors before the headers are sent are thrown
 * (the caller maps them to a status); errors after are written as Docker's errorDetail line.
 */
export async function streamJson(res: ServerResponse, iterable: AsyncIterable<unknown>, opts: StreamJsonOptions): Promise<void> {
  const it = iterable[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<unknown>> | undefined;
  let first: IteratorResult<unknown> | undefined;
  if (opts.primeMs > 0) {
    pending = it.next();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), opts.primeMs);
    });
    try {
      first = await Promise.race([pending, timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (first) pending = undefined;
    else pending.catch(() => undefined);
  }
  startStream(res, opts.contentType ?? 'application/json');
  try {
    let next = first ?? (await (pending ?? it.next()));
    while (!next.done) {
      if (!(await writeChunk(res, jsonLine(next.value)))) break;
      next = await it.next();
    }
  } catch (e) {
    if (!opts.signal.aborted) {
      opts.log?.(`stream failed: ${messageOf(e)}`);
      await writeChunk(res, streamErrorLine(e));
    }
  } finally {
    try {
      await it.return?.();
    } catch {
      /* already failed */
    }
  }
  res.end();
}

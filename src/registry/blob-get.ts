/**
 * A blob GET over `node:http`/`node:https` instead of `fetch`: the body arrives as the socket's own
 * Buffers (no web-stream copies), which is what the pull's layer worker reads. Redirects are
 * followed (up to 10; the authorization header is dropped when one leaves the origin, as `fetch`
 * does). Auth is the caller's: it passes the headers {@link RegistryClient.blobTarget} gives.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

import { EngineError } from '../base/errors.js';

/** A registry that could not be reached, in Docker's wording (`Get "<url>": <code> <message>`). */
export function unreachable(url: string, why: { code?: string; message?: string }, cause: unknown): EngineError {
  return new EngineError('unavailable', `Get "${url}": ${why.code ?? ''} ${why.message ?? ''}`.replace(/\s+/g, ' ').trim(), { cause, code: 'REGISTRY_UNREACHABLE' });
}

/** Options of {@link getBlobResponse}. */
export interface BlobGetOptions {
  /** No response head within this long fails with deadline-exceeded (REGISTRY_STALLED). */
  headTimeoutMs: number;
  signal?: AbortSignal;
}

/** The response to a blob GET: the body is unread (the caller consumes or destroys it). */
export interface BlobGetResult {
  status: number;
  statusText: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: IncomingMessage;
}

function once(url: URL, headers: Record<string, string>, opts: BlobGetOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers, ...(opts.signal ? { signal: opts.signal } : {}) });
    const timer = setTimeout(() => {
      req.destroy(new EngineError('deadline-exceeded', `GET ${url.toString()}: no response from the registry within ${Math.round(opts.headTimeoutMs / 1000)}s`, { code: 'REGISTRY_STALLED' }));
    }, opts.headTimeoutMs);
    timer.unref?.();
    req.on('response', (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err instanceof EngineError || err.name === 'AbortError') reject(err);
      else reject(unreachable(url.toString(), err, err));
    });
    req.end();
  });
}

/** GET `url` with `headers`, following redirects. */
export async function getBlobResponse(url: string, headers: Record<string, string>, opts: BlobGetOptions): Promise<BlobGetResult> {
  let u = new URL(url);
  let h = { ...headers };
  for (let hop = 0; ; hop++) {
    const res = await once(u, h, opts);
    const status = res.statusCode ?? 0;
    const loc = res.headers.location;
    if (status >= 300 && status < 400 && status !== 304 && loc && hop < 10) {
      res.resume();
      const next = new URL(loc, u);
      if (next.origin !== u.origin) {
        const { authorization: _a, ...rest } = h;
        void _a;
        h = rest;
      }
      u = next;
      continue;
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
    return { status, statusText: res.statusMessage ?? '', headers: out, body: res };
  }
}

/**
 * berthd's HTTP edge: the Docker Engine API on a UNIX socket, programmed only against the Engine
 * interface (engine/services.ts). Owns transport rules (compat §2), API version rules (§1), the
 * route table, hijacked attach/exec (§3) and per-request cancellation.
 */
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { Readable, type Duplex } from 'node:stream';

import { invalidArgument, notFound } from '../base/errors.js';
import type { Engine } from '../engine/services.js';
import { buildRoutes } from './compat/build.js';
import { containerRoutes, execRoutes } from './compat/containers.js';
import { imageRoutes } from './compat/images.js';
import { networkRoutes } from './compat/networks.js';
import { systemRoutes } from './compat/system.js';
import { volumeRoutes } from './compat/volumes.js';
import { writeErrorResponse } from './errors.js';
import { PlainIO, UpgradeIO, type HijackIO } from './hijack.js';
import { sendJson } from './http-util.js';
import { Query } from './query.js';
import { matchRoute, type HijackHandler, type RequestContext, type Route } from './router.js';
import { MAX_API_VERSION, splitVersion } from './version.js';

/** Options of createApiServer. */
export interface ApiServerOptions {
  /** Log sink (one line per message). Defaults to discarding. */
  log?: (msg: string) => void;
}

/** A created API server. */
export interface ApiServer {
  /** The underlying Node HTTP server. */
  server: Server;
  /** Listen on a UNIX socket path (a stale socket file there is removed first). */
  listen(socketPath: string): Promise<void>;
  /** Stop accepting, drop open and hijacked connections (aborting their requests), and wait. */
  close(): Promise<void>;
}

/** Every route of the compat API, in match order. */
export const ALL_ROUTES: readonly Route[] = [
  ...systemRoutes,
  ...containerRoutes,
  ...execRoutes,
  ...buildRoutes,
  ...imageRoutes,
  ...volumeRoutes,
  ...networkRoutes,
];

interface Target {
  path: string;
  version: string;
  query: Query;
}

/** Split a request target into decoded, version-stripped path and query. */
export function parseTarget(url: string | undefined): Target {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const rawPath = q < 0 ? raw : raw.slice(0, q);
  const search = q < 0 ? '' : raw.slice(q + 1);
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw invalidArgument(`invalid request path: ${rawPath}`);
  }
  const v = splitVersion(path);
  return { path: v.path, version: v.version, query: Query.parse(search) };
}

/** Build the Docker Engine API server over an engine. */
export function createApiServer(engine: Engine, opts: ApiServerOptions = {}): ApiServer {
  const log = opts.log ?? ((): void => undefined);
  let engineVersion = '0.0.0';
  try {
    const v = engine.system.version().Version;
    if (typeof v === 'string' && v) engineVersion = v;
  } catch {
    /* keep the placeholder */
  }
  const common: Record<string, string> = {
    'Api-Version': MAX_API_VERSION,
    Ostype: 'linux',
    Server: `Docker/${engineVersion} (linux)`,
  };
  const hijacked = new Set<Duplex>();
  let seq = 0;

  const server = createServer({ maxHeaderSize: 1 << 20, keepAliveTimeout: 0, requestTimeout: 0, headersTimeout: 0 });
  // compat §2: no idle timeout (Go's dockerd has none), no header/request deadline.
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.timeout = 0;

  const context = (req: IncomingMessage, t: Target, params: string[], signal: AbortSignal, tag: string): RequestContext => ({
    engine,
    req,
    params,
    query: t.query,
    apiVersion: t.version,
    signal,
    log,
    tag,
  });

  const runHijack = async (handler: HijackHandler, ctx: RequestContext, io: HijackIO): Promise<void> => {
    try {
      await handler(ctx, io);
    } catch (e) {
      if (!io.started) io.fail(e);
      else {
        if (!ctx.signal.aborted) log(`${ctx.tag} hijacked stream failed: ${(e as Error)?.message ?? String(e)}`);
        io.end();
      }
    }
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const tag = `req#${++seq} ${req.method} ${req.url}`;
    for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    void (async (): Promise<void> => {
      try {
        const t = parseTarget(req.url);
        const m = matchRoute(ALL_ROUTES, req.method ?? 'GET', t.path);
        if (!m) {
          sendJson(res, 404, { message: 'page not found' });
          return;
        }
        const ctx = context(req, t, m.params, ac.signal, tag);
        if (m.route.hijack) await runHijack(m.route.hijack, ctx, new PlainIO(req, res, ac.signal, log, tag));
        else await m.route.handler!(ctx, res);
      } catch (e) {
        // A body left unread (too large, malformed, client gone) would keep the connection busy:
        // answer, then close it instead of draining.
        if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
        writeErrorResponse(res, e, log, tag);
      }
    })();
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tag = `req#${++seq} ${req.method} ${req.url} (upgrade)`;
    const sock = socket as Socket;
    hijacked.add(socket);
    const ac = new AbortController();
    socket.on('close', () => {
      hijacked.delete(socket);
      ac.abort();
    });
    socket.on('error', (e) => log(`${tag} socket error: ${e.message}`));
    const io = new UpgradeIO(req, sock, head, common, ac.signal, log, tag);
    void (async (): Promise<void> => {
      let t: Target;
      try {
        t = parseTarget(req.url);
      } catch (e) {
        io.fail(e);
        return;
      }
      const m = matchRoute(ALL_ROUTES, req.method ?? 'GET', t.path);
      if (!m) {
        io.fail(notFound('page not found'));
        return;
      }
      const ctx = context(req, t, m.params, ac.signal, tag);
      if (m.route.hijack) {
        await runHijack(m.route.hijack, ctx, io);
        return;
      }
      // Not a hijack endpoint: answer it as a normal one-shot response on this socket (Go's
      // net/http ignores Upgrade there too). Node does not parse an upgrade request's body, so the
      // handler gets a stand-in request whose body is read from the socket.
      const res = new ServerResponse(req);
      res.assignSocket(sock);
      res.shouldKeepAlive = false;
      for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
      res.on('finish', () => socket.end());
      const body = Readable.from(io.bodyStream(), { objectMode: false });
      body.on('error', () => undefined); // surfaced to the handler that reads it
      const bodyReq = Object.assign(body, {
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
      }) as unknown as IncomingMessage;
      try {
        await m.route.handler!({ ...ctx, req: bodyReq }, res);
      } catch (e) {
        writeErrorResponse(res, e, log, tag);
      }
    })();
  });

  return {
    server,
    async listen(socketPath: string): Promise<void> {
      try {
        if ((await lstat(socketPath)).isSocket()) await unlink(socketPath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    async close(): Promise<void> {
      for (const s of hijacked) s.destroy();
      hijacked.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

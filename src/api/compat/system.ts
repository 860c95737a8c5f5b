/**
 * System endpoints: ping, version, info, events, df, auth; plus the out-of-scope swarm/plugin
 * families answered cleanly (compat §5).
 */
import type { ServerResponse } from 'node:http';

import { notImplemented, unavailable } from '../../base/errors.js';
import type { Json } from '../../engine/services.js';
import { sendJson } from '../http-util.js';
import { streamJson } from '../json-stream.js';
import { route, type RequestContext, type Route } from '../router.js';
import { MAX_API_VERSION, MIN_API_VERSION } from '../version.js';
import { authHandler } from './images.js';

/** Docker's answer for every swarm-mode path on a node without swarm. */
export const SWARM_MESSAGE =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

/** Headers of every /_ping answer (compat §1). */
export const PING_HEADERS: Readonly<Record<string, string>> = {
  'Docker-Experimental': 'false',
  'Builder-Version': '1',
  Swarm: 'inactive',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
};

function ping(_ctx: RequestContext, res: ServerResponse, head: boolean): void {
  res.writeHead(200, { ...PING_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': head ? 0 : 2 });
  res.end(head ? undefined : 'OK');
}

/** engine.system.version() with the API range filled in when the engine leaves it out. */
export function versionBody(v: Json): Json {
  return { ...v, ApiVersion: v.ApiVersion ?? MAX_API_VERSION, MinAPIVersion: v.MinAPIVersion ?? MIN_API_VERSION };
}

async function events(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const q = ctx.query;
  const opts: { since?: number; until?: number; filters: ReturnType<typeof q.filters>; signal: AbortSignal } = {
    filters: q.filters(),
    signal: ctx.signal,
  };
  const since = q.time('since');
  if (since !== undefined) opts.since = since;
  const until = q.time('until');
  if (until !== undefined) opts.until = until;
  // Flush at once: clients block on the headers (podman #23712).
  await streamJson(res, ctx.engine.system.events(opts), { signal: ctx.signal, primeMs: 0, log: (m) => ctx.log(`${ctx.tag} ${m}`) });
}

/** The system routes. */
export const systemRoutes: Route[] = [
  route('GET', /^\/_ping$/, async (ctx, res) => ping(ctx, res, false)),
  route('HEAD', /^\/_ping$/, async (ctx, res) => ping(ctx, res, true)),
  route('GET', /^\/version$/, async (ctx, res) => sendJson(res, 200, versionBody(ctx.engine.system.version()))),
  route('GET', /^\/info$/, async (ctx, res) => sendJson(res, 200, await ctx.engine.system.info())),
  route('GET', /^\/events$/, events),
  route('GET', /^\/system\/df$/, async (ctx, res) => sendJson(res, 200, await ctx.engine.system.df())),
  route('POST', /^\/auth$/, authHandler),
  route('*', /^\/(swarm|nodes|services|tasks|secrets|configs)(\/.*)?$/, async () => {
    throw unavailable(SWARM_MESSAGE);
  }),
  route('GET', /^\/plugins$/, async (_ctx, res) => sendJson(res, 200, [])),
  route('*', /^\/plugins(\/.*)?$/, async () => {
    throw notImplemented('plugins are not supported');
  }),
];

/**
 * Route table: method + path regex (matched on the version-stripped, decoded path). Image names may
 * hold `/` and `:`, so image routes match on the path SUFFIX with a greedy capture
 * (`^/images/(.+)/json$`). Routes may be "hijackable" (attach, exec start): they are also served
 * from the server's 'upgrade' event.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Engine } from '../engine/services.js';
import type { HijackIO } from './hijack.js';
import type { Query } from './query.js';

/** Everything a handler needs for one request. */
export interface RequestContext {
  engine: Engine;
  req: IncomingMessage;
  params: string[];
  query: Query;
  /** The request's API version (prefix or max). */
  apiVersion: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  log: (msg: string) => void;
  /** "req#<n> METHOD path", for log lines. */
  tag: string;
}

/** A regular handler writes a complete (or streamed) response. */
export type Handler = (ctx: RequestContext, res: ServerResponse) => Promise<void>;
/** A hijack handler drives an attach-style session over a HijackIO (upgraded socket or raw 200). */
export type HijackHandler = (ctx: RequestContext, io: HijackIO) => Promise<void>;

/** One entry of the route table. */
export interface Route {
  method: string;
  re: RegExp;
  handler?: Handler;
  hijack?: HijackHandler;
}

/** Result of a route lookup. */
export interface RouteMatch {
  route: Route;
  params: string[];
}

/** Find the first route that matches method (or "*") and path. HEAD matches only routes declared for HEAD. */
export function matchRoute(routes: readonly Route[], method: string, path: string): RouteMatch | undefined {
  for (const route of routes) {
    if (route.method !== method && route.method !== '*') continue;
    const m = route.re.exec(path);
    if (m) return { route, params: m.slice(1).map((p) => p ?? '') };
  }
  return undefined;
}

/** Shorthand to declare a route. */
export function route(method: string, re: RegExp, handler: Handler): Route {
  return { method, re, handler };
}

/** Shorthand to declare a hijackable route. */
export function hijackRoute(method: string, re: RegExp, hijack: HijackHandler): Route {
  return { method, re, hijack };
}

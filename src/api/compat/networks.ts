/**
 * The network routes. With a network service they translate to it; without one (an engine built
 * without networks), the built-in bridge/host/none are listed and every other call answers 501.
 */
import { createHash } from 'node:crypto';

import { notFound, notImplemented } from '../../base/errors.js';
import type { Filters, Json } from '../../engine/services.js';
import { NETWORK_CREATE_BODY } from '../../wire/body-types.js';
import { readJsonObject, sendEmpty, sendJson } from '../http-util.js';
import { route, type Route } from '../router.js';

const CREATED = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');

function networkId(name: string): string {
  return createHash('sha256').update(`berth-builtin-network:${name}`).digest('hex');
}

/** The built-in networks in the GET /networks item shape (engines without a network service). */
export function builtinNetworks(): Json[] {
  const base = (name: string, driver: string, config: Json[], options: Record<string, string>): Json => ({
    Name: name,
    Id: networkId(name),
    Created: CREATED,
    Scope: 'local',
    Driver: driver,
    EnableIPv4: name === 'bridge',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: config },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: options,
    Labels: {},
  });
  return [
    base('bridge', 'bridge', [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }], {
      'com.docker.network.bridge.default_bridge': 'true',
      'com.docker.network.bridge.enable_icc': 'true',
      'com.docker.network.bridge.enable_ip_masquerade': 'true',
      'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
      'com.docker.network.bridge.name': 'docker0',
      'com.docker.network.driver.mtu': '1500',
    }),
    base('host', 'host', [], {}),
    base('none', 'null', [], {}),
  ];
}

/** Find a built-in network by name, full id or id prefix. */
export function findBuiltin(ref: string): Json | undefined {
  const all = builtinNetworks();
  return (
    all.find((n) => n.Name === ref || n.Id === ref) ??
    (ref.length >= 1 ? all.filter((n) => String(n.Id).startsWith(ref)).at(0) : undefined)
  );
}

function matches(n: Json, f: Filters): boolean {
  const name = String(n.Name);
  const id = String(n.Id);
  if (f.name?.length && !f.name.some((v) => name.includes(v))) return false;
  if (f.id?.length && !f.id.some((v) => id.startsWith(v))) return false;
  if (f.driver?.length && !f.driver.includes(String(n.Driver))) return false;
  if (f.type?.length && !f.type.includes('builtin')) return false;
  if (f.label?.length) return false; // built-ins carry no labels
  return true;
}

const NOT_BUILT = 'user-defined networks are not supported by this engine';

/** The network routes. */
export const networkRoutes: Route[] = [
  route('GET', /^\/networks$/, async (ctx, res) => {
    const f = ctx.query.filters();
    if (ctx.engine.networks) return sendJson(res, 200, await ctx.engine.networks.list(f));
    sendJson(res, 200, builtinNetworks().filter((n) => matches(n, f)));
  }),
  route('POST', /^\/networks\/create$/, async (ctx, res) => {
    if (!ctx.engine.networks) throw notImplemented(NOT_BUILT);
    sendJson(res, 201, await ctx.engine.networks.create(await readJsonObject(ctx.req, NETWORK_CREATE_BODY)));
  }),
  route('POST', /^\/networks\/prune$/, async (ctx, res) => {
    if (!ctx.engine.networks) throw notImplemented(NOT_BUILT);
    sendJson(res, 200, await ctx.engine.networks.prune(ctx.query.filters()));
  }),
  route('POST', /^\/networks\/([^/]+)\/connect$/, async (ctx, res) => {
    if (!ctx.engine.networks) throw notImplemented(NOT_BUILT);
    await ctx.engine.networks.connect(decodeURIComponent(ctx.params[0]!), await readJsonObject(ctx.req));
    sendEmpty(res, 200);
  }),
  route('POST', /^\/networks\/([^/]+)\/disconnect$/, async (ctx, res) => {
    if (!ctx.engine.networks) throw notImplemented(NOT_BUILT);
    await ctx.engine.networks.disconnect(decodeURIComponent(ctx.params[0]!), await readJsonObject(ctx.req));
    sendEmpty(res, 200);
  }),
  route('GET', /^\/networks\/([^/]+)$/, async (ctx, res) => {
    const ref = decodeURIComponent(ctx.params[0]!);
    if (ctx.engine.networks) return sendJson(res, 200, await ctx.engine.networks.inspect(ref));
    const n = findBuiltin(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    sendJson(res, 200, n);
  }),
  route('DELETE', /^\/networks\/([^/]+)$/, async (ctx, res) => {
    if (!ctx.engine.networks) throw notImplemented(NOT_BUILT);
    await ctx.engine.networks.remove(decodeURIComponent(ctx.params[0]!));
    sendEmpty(res, 204);
  }),
  route('*', /^\/networks(\/.*)?$/, async () => {
    throw notImplemented(NOT_BUILT);
  }),
];

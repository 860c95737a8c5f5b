/**
 * Volume endpoints (compat §5 "Networks and volumes").
 */
import { unavailable } from '../../base/errors.js';
import { VOLUME_CREATE_BODY } from '../../wire/body-types.js';
import { readJsonObject, sendEmpty, sendJson } from '../http-util.js';
import { route, type Route } from '../router.js';

/** The volume routes. */
export const volumeRoutes: Route[] = [
  route('GET', /^\/volumes$/, async (ctx, res) => {
    const r = await ctx.engine.volumes.list(ctx.query.filters());
    sendJson(res, 200, { Volumes: r.Volumes ?? [], Warnings: r.Warnings ?? null });
  }),
  route('POST', /^\/volumes\/create$/, async (ctx, res) => {
    sendJson(res, 201, await ctx.engine.volumes.create(await readJsonObject(ctx.req, VOLUME_CREATE_BODY)));
  }),
  route('POST', /^\/volumes\/prune$/, async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.volumes.prune(ctx.query.filters()));
  }),
  route('GET', /^\/volumes\/([^/]+)$/, async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.volumes.inspect(ctx.params[0]!));
  }),
  route('DELETE', /^\/volumes\/([^/]+)$/, async (ctx, res) => {
    await ctx.engine.volumes.remove(ctx.params[0]!, ctx.query.bool('force'));
    sendEmpty(res, 204);
  }),
  route('PUT', /^\/volumes\/([^/]+)$/, async () => {
    throw unavailable('volume update only valid for cluster volumes, but swarm is not enabled');
  }),
];

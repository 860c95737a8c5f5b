/**
 * Image endpoints (compat §5 "Images and build"). Image names may hold `/` and `:`, so routes match
 * on the path suffix.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { invalidArgument, notImplemented } from '../../base/errors.js';
import type { CommitOptions, Filters, ImageService, ImportOptions, Json } from '../../engine/services.js';
import { streamErrorLine } from '../errors.js';
import { asObject, jsonLine, readJson, sendEmpty, sendJson, startStream } from '../http-util.js';
import { streamJson } from '../json-stream.js';
import { route, type RequestContext, type Route } from '../router.js';

/** Options the API edge passes to an optional `engine.images.pull` (not yet in services.ts). */
export interface PullOptions {
  platform?: string;
  /** Decoded X-Registry-Auth JSON (AuthConfig), when sent and not empty. */
  auth?: Json;
  /** No tag or digest was given: pull every tag of the repository (moby's behaviour, `docker pull -a`). */
  allTags?: boolean;
  signal: AbortSignal;
}

/** The pull capability the edge looks for on `engine.images`. */
export type PullFn = (ref: string, opts: PullOptions) => AsyncIterable<Json> | Promise<AsyncIterable<Json> | string | void>;

/** Decode a base64url (or base64) JSON header value; undefined when absent/empty/invalid. */
export function decodeAuthHeader(value: string | string[] | undefined): Json | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    const json = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown;
    if (json && typeof json === 'object' && !Array.isArray(json) && Object.keys(json).length) return json as Json;
  } catch {
    /* docker ignores an undecodable auth header for public pulls */
  }
  return undefined;
}

/** Join fromImage and tag the way moby does (`@` for a digest, `:` for a tag). */
export function joinRef(image: string, tag: string | undefined): string {
  if (!tag) return image;
  return tag.includes(':') ? `${image}@${tag}` : `${image}:${tag}`;
}

/** The push capability the edge looks for on `engine.images`. */
export type PushFn = (name: string, opts: { tag?: string; auth?: Json; signal: AbortSignal }) => AsyncIterable<Json>;
/** The save capability: a tar stream of the named images (throws before streaming on a bad name). */
export type SaveFn = (names: string[], opts: { signal: AbortSignal; format?: 'docker' | 'oci' }) => Readable;
/** The load capability: reads a tar, returns the `Loaded image…` lines. */
export type LoadFn = (tar: Readable, opts: { signal: AbortSignal }) => Promise<{ lines: string[] }>;
/** The login capability (POST /auth): checks credentials against the registry. */
export type LoginFn = (auth: Json, opts: { signal: AbortSignal }) => Promise<{ Status: string; IdentityToken: string }>;

/** The search capability (GET /images/search). */
export type SearchFn = (term: string, opts: { limit?: number; filters?: Filters; auth?: Json; signal: AbortSignal }) => Promise<Json[]>;
/** The distribution-inspect capability (GET /distribution/{name}/json). */
export type DistributionFn = (ref: string, opts: { auth?: Json; signal: AbortSignal }) => Promise<Json>;

/** engine.images with the optional registry/archive capabilities. */
type RegistryImages = ImageService & { pull?: PullFn; push?: PushFn; save?: SaveFn; load?: LoadFn; login?: LoginFn; search?: SearchFn; distributionInspect?: DistributionFn };

async function searchImages(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const images = ctx.engine.images as RegistryImages;
  if (typeof images.search !== 'function') throw notImplemented('image search is not supported');
  const term = ctx.query.nonEmpty('term');
  if (term === undefined) throw invalidArgument('term is required');
  const opts: Parameters<SearchFn>[1] = { filters: ctx.query.filters(), signal: ctx.signal };
  const limit = ctx.query.int('limit');
  if (limit !== undefined && limit !== 0) opts.limit = limit;
  const auth = decodeAuthHeader(ctx.req.headers['x-registry-auth']);
  if (auth !== undefined) opts.auth = auth;
  sendJson(res, 200, await images.search.call(images, term, opts));
}

async function distributionInspect(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const images = ctx.engine.images as RegistryImages;
  if (typeof images.distributionInspect !== 'function') throw notImplemented('distribution inspect is not supported');
  const opts: Parameters<DistributionFn>[1] = { signal: ctx.signal };
  const auth = decodeAuthHeader(ctx.req.headers['x-registry-auth']);
  if (auth !== undefined) opts.auth = auth;
  sendJson(res, 200, await images.distributionInspect.call(images, ctx.params[0]!, opts));
}

/** POST /auth: check credentials when the engine can, else accept them (old behaviour). */
export async function authHandler(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const body = asObject(await readJson(ctx.req));
  const images = ctx.engine.images as RegistryImages;
  if (typeof images.login !== 'function') {
    sendJson(res, 200, { Status: 'Login Succeeded', IdentityToken: '' });
    return;
  }
  sendJson(res, 200, await images.login.call(images, body, { signal: ctx.signal }));
}

async function pushImage(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const images = ctx.engine.images as RegistryImages;
  if (typeof images.push !== 'function') throw notImplemented('image push is not supported yet');
  const opts: { tag?: string; auth?: Json; signal: AbortSignal } = { signal: ctx.signal };
  const tag = ctx.query.nonEmpty('tag');
  if (tag !== undefined) opts.tag = tag;
  const auth = decodeAuthHeader(ctx.req.headers['x-registry-auth']);
  if (auth !== undefined) opts.auth = auth;
  const it = images.push.call(images, ctx.params[0]!, opts);
  await streamJson(res, it, { signal: ctx.signal, primeMs: 3000, log: (m) => ctx.log(`${ctx.tag} ${m}`) });
}

async function saveImages(ctx: RequestContext, res: ServerResponse, names: string[]): Promise<void> {
  const images = ctx.engine.images as RegistryImages;
  if (typeof images.save !== 'function') throw notImplemented('image save is not supported yet');
  if (names.length === 0) throw invalidArgument('no images given');
  // berth extension: ?format=oci writes an OCI image layout only
  const format = ctx.query.nonEmpty('format');
  if (format !== undefined && format !== 'docker' && format !== 'oci') throw invalidArgument(`unsupported save format: ${format} (use docker or oci)`);
  const tar = images.save.call(images, names, { signal: ctx.signal, ...(format ? { format } : {}) });
  startStream(res, 'application/x-tar');
  try {
    await pipeline(tar, res, { signal: ctx.signal });
  } catch (e) {
    ctx.log(`${ctx.tag} save failed: ${(e as Error).message}`);
    res.destroy();
  }
}

async function loadImages(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const images = ctx.engine.images as RegistryImages;
  if (typeof images.load !== 'function') throw notImplemented('image load is not supported yet');
  const load = images.load;
  async function* gen(): AsyncGenerator<Json> {
    const r = await load.call(images, ctx.req, { signal: ctx.signal });
    for (const l of r.lines) yield { stream: `${l}\n` };
  }
  await streamJson(res, gen(), { signal: ctx.signal, primeMs: 600_000, log: (m) => ctx.log(`${ctx.tag} ${m}`) });
}

const PULL_UNSUPPORTED = 'registry pulls are not supported yet: import an image with "docker import" or "docker load"';

function isAsyncIterable(v: unknown): v is AsyncIterable<Json> {
  return !!v && typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

async function createImage(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const q = ctx.query;
  const fromSrc = q.nonEmpty('fromSrc');
  const fromImage = q.nonEmpty('fromImage');
  if (fromSrc !== undefined) {
    if (fromSrc !== '-') throw notImplemented('importing from a URL is not supported yet; use fromSrc=-');
    const opts: ImportOptions = { changes: q.all('changes').filter((s) => s !== ''), signal: ctx.signal };
    const repo = q.nonEmpty('repo');
    if (repo !== undefined) opts.repo = repo;
    const tag = q.nonEmpty('tag');
    if (tag !== undefined) opts.tag = tag;
    const message = q.nonEmpty('message');
    if (message !== undefined) opts.message = message;
    const platform = q.nonEmpty('platform');
    if (platform !== undefined) opts.platform = platform;
    startStream(res, 'application/json');
    try {
      const id = await ctx.engine.images.import(ctx.req, opts);
      res.end(jsonLine({ status: id }));
    } catch (e) {
      res.end(streamErrorLine(e));
    }
    return;
  }
  if (fromImage === undefined) throw invalidArgument('fromImage or fromSrc must be set');
  const images = ctx.engine.images as RegistryImages;
  if (typeof images.pull !== 'function') {
    startStream(res, 'application/json');
    res.end(streamErrorLine(notImplemented(PULL_UNSUPPORTED)));
    return;
  }
  const opts: PullOptions = { signal: ctx.signal };
  const platform = q.nonEmpty('platform');
  if (platform !== undefined) opts.platform = platform;
  const auth = decodeAuthHeader(ctx.req.headers['x-registry-auth']);
  if (auth !== undefined) opts.auth = auth;
  const tagParam = q.nonEmpty('tag');
  if (tagParam === undefined && !/@|:[^/]*$/.test(fromImage)) opts.allTags = true;
  const ref = joinRef(fromImage, tagParam);
  const result = await images.pull.call(images, ref, opts);
  if (isAsyncIterable(result)) {
    await streamJson(res, result, { signal: ctx.signal, primeMs: 3000, log: (m) => ctx.log(`${ctx.tag} ${m}`) });
    return;
  }
  startStream(res, 'application/json');
  if (typeof result === 'string') res.write(jsonLine({ status: `Digest: ${result}` }));
  res.end(jsonLine({ status: `Status: Downloaded newer image for ${ref}` }));
}

async function commit(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const q = ctx.query;
  const container = q.nonEmpty('container');
  if (container === undefined) throw invalidArgument('container is required');
  const body = await readJson(ctx.req);
  const opts: CommitOptions = {
    container,
    pause: q.has('pause') && q.str('pause') !== '' ? q.bool('pause') : true,
    changes: q.all('changes').filter((s) => s !== ''),
  };
  for (const k of ['repo', 'tag', 'comment', 'author'] as const) {
    const v = q.nonEmpty(k);
    if (v !== undefined) opts[k] = v;
  }
  if (body && typeof body === 'object' && !Array.isArray(body)) opts.config = body as Json;
  const r = await ctx.engine.commit(opts);
  sendJson(res, 201, { Id: r.Id });
}

const img = (suffix: string): RegExp => new RegExp(`^/images/(.+)${suffix}$`);

/** The image routes (order matters: fixed names before suffix patterns). */
export const imageRoutes: Route[] = [
  route('GET', /^\/images\/json$/, async (ctx, res) => {
    const filters = ctx.query.filters();
    const legacy = ctx.query.nonEmpty('filter');
    if (legacy !== undefined) filters.reference = [...(filters.reference ?? []), legacy];
    sendJson(res, 200, await ctx.engine.images.list({ all: ctx.query.bool('all'), filters, digests: ctx.query.bool('digests') }));
  }),
  route('POST', /^\/images\/create$/, createImage),
  route('POST', /^\/images\/prune$/, async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.images.prune(ctx.query.filters()));
  }),
  route('POST', /^\/images\/load$/, loadImages),
  route('GET', /^\/images\/get$/, async (ctx, res) => saveImages(ctx, res, ctx.query.all('names').filter((n) => n !== ''))),
  route('GET', /^\/images\/search$/, searchImages),
  route('GET', img('/json'), async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.images.inspect(ctx.params[0]!));
  }),
  route('GET', img('/history'), async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.images.history(ctx.params[0]!));
  }),
  route('POST', img('/tag'), async (ctx, res) => {
    const repo = ctx.query.nonEmpty('repo');
    if (repo === undefined) throw invalidArgument('repository name must have at least one component');
    await ctx.engine.images.tag(ctx.params[0]!, repo, ctx.query.nonEmpty('tag'));
    sendEmpty(res, 201);
  }),
  route('POST', img('/push'), pushImage),
  route('GET', img('/get'), async (ctx, res) => saveImages(ctx, res, [ctx.params[0]!])),
  route('DELETE', img(''), async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.images.remove(ctx.params[0]!, { force: ctx.query.bool('force'), noprune: ctx.query.bool('noprune') }));
  }),
  route('POST', /^\/commit$/, commit),
  route('POST', /^\/build$/, async () => {
    throw notImplemented('image build is not supported yet');
  }),
  route('POST', /^\/build\/prune$/, async (_ctx, res) => {
    sendJson(res, 200, { CachesDeleted: [], SpaceReclaimed: 0 });
  }),
  route('GET', /^\/distribution\/(.+)\/json$/, distributionInspect),
];

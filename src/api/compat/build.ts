/**
 * POST /build (the classic builder protocol, compat §6) and POST /build/prune. Contexts may be
 * plain, gzip, bzip2, xz or zstd tars (recognised where the tar is read). The query is parsed
 * leniently (podman #15928, #10663): empty or unknown values are ignored. The stream always ends a
 * failure with both `error` and `errorDetail` (podman #12392), or the docker CLI reports success.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

import { EngineError, invalidArgument, notImplemented } from '../../base/errors.js';
import type { BuildOptions, Json } from '../../engine/services.js';
import { errorReply } from '../errors.js';
import { jsonLine, sendJson, startStream, writeChunk } from '../http-util.js';
import { route, type RequestContext, type Route } from '../router.js';

/** Parse a JSON object query value ("buildargs", "labels"); anything unparsable is ignored. */
function jsonMap(raw: string | undefined): Record<string, string | null> {
  if (!raw) return {};
  try {
    const v: unknown = JSON.parse(raw);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    const out: Record<string, string | null> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = x === null ? null : String(x);
    return out;
  } catch {
    return {};
  }
}

/**
 * Build secrets (berth's extension, for `RUN --mount=type=secret`): header X-Berth-Build-Secrets
 * holds base64 of a JSON object {id: base64 bytes}. A header rather than a query parameter, so
 * secret bytes never appear in request lines or logs of URLs.
 */
function parseSecrets(raw: string | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!raw) return out;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
  } catch {
    throw invalidArgument('invalid X-Berth-Build-Secrets header: not base64 JSON');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidArgument('invalid X-Berth-Build-Secrets header: not a JSON object');
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string') throw invalidArgument(`invalid X-Berth-Build-Secrets header: secret ${k} is not a base64 string`);
    out.set(k, Buffer.from(x, 'base64'));
  }
  return out;
}

function errorLine(e: unknown): string {
  const { message } = errorReply(e);
  const detail: Json = { message };
  const code = e instanceof EngineError ? e.details?.['code'] : undefined;
  if (typeof code === 'number') detail['code'] = code;
  return JSON.stringify({ errorDetail: detail, error: message }) + '\n';
}

async function build(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const builder = ctx.engine.build;
  if (!builder) throw notImplemented('image build is not supported by this engine');
  const q = ctx.query;
  const remote = q.nonEmpty('remote');
  if (remote !== undefined) throw notImplemented('remote build contexts are not supported yet');
  const opts: BuildOptions = {
    // gzip, bzip2, xz and zstd contexts are recognised by magic where the tar is read (readTar)
    context: ctx.req,
    tags: q.all('t').filter((t) => t !== ''),
    buildArgs: jsonMap(q.nonEmpty('buildargs')),
    labels: Object.fromEntries(Object.entries(jsonMap(q.nonEmpty('labels'))).map(([k, v]) => [k, v ?? ''])),
    noCache: q.has('nocache') ? safeBool(() => q.bool('nocache')) : false,
    signal: ctx.signal,
  };
  const df = q.nonEmpty('dockerfile');
  if (df !== undefined) opts.dockerfile = df;
  const target = q.nonEmpty('target');
  if (target !== undefined) opts.target = target;
  const net = q.nonEmpty('networkmode');
  if (net !== undefined) opts.networkMode = net;
  const hosts = q.nonEmpty('extrahosts');
  if (hosts !== undefined) opts.extraHosts = hosts.split(',').filter(Boolean);
  if (q.has('pull') && safeBool(() => q.bool('pull'))) opts.pull = true;
  const platform = q.nonEmpty('platform');
  if (platform !== undefined) opts.platform = platform;
  const shm = q.nonEmpty('shmsize');
  if (shm !== undefined && /^\d+$/.test(shm) && Number(shm) > 0) opts.shmSize = Number(shm);
  const secretHeader = ctx.req.headers['x-berth-build-secrets'];
  const secrets = parseSecrets(Array.isArray(secretHeader) ? secretHeader[0] : secretHeader);
  if (secrets.size) opts.secrets = secrets;
  const quiet = q.has('q') ? safeBool(() => q.bool('q')) : false;
  const it = builder.build(opts)[Symbol.asyncIterator]();
  // errors before the first message (bad Dockerfile, unknown target) become an HTTP status
  let next: IteratorResult<Json>;
  try {
    next = await it.next();
  } catch (e) {
    // read the rest of the upload before answering, or the client gets EPIPE instead of the error
    await drain(opts.context);
    throw e;
  }
  res.setHeader('Builder-Version', '1');
  startStream(res, 'application/json');
  let imageId: string | undefined;
  try {
    while (!next.done) {
      const m = next.value;
      const aux = m['aux'] as Json | undefined;
      if (aux && typeof aux['ID'] === 'string') imageId = aux['ID'];
      if (!quiet || m['aux'] !== undefined || m['errorDetail'] !== undefined) {
        if (!(await writeChunk(res, jsonLine(m)))) break;
      }
      next = await it.next();
    }
    // moby postBuild: with -q the output is just the image id, on stdout
    if (quiet && imageId) await writeChunk(res, jsonLine({ stream: `${imageId}\n` }));
  } catch (e) {
    if (!ctx.signal.aborted) await writeChunk(res, errorLine(e));
  } finally {
    await it.return?.(undefined).catch(() => undefined);
  }
  res.end();
}

/** Consume and drop what is left of a request body (bounded by the client's upload). */
async function drain(req: Readable): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  await new Promise<void>((resolve) => {
    req.on('end', resolve);
    req.on('close', resolve);
    req.on('error', () => resolve());
    req.resume();
  });
}

function safeBool(f: () => boolean): boolean {
  try {
    return f();
  } catch {
    return false;
  }
}

/** The build routes (registered before the image routes). */
export const buildRoutes: Route[] = [
  route('POST', /^\/build$/, build),
  route('POST', /^\/build\/prune$/, async (ctx, res) => {
    const b = ctx.engine.build;
    const r = b ? await b.prune({ all: ctx.query.bool('all') }) : { CachesDeleted: [], SpaceReclaimed: 0 };
    sendJson(res, 200, r);
  }),
];

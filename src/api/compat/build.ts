/**
 * POST /build (the classic builder protocol, compat §6) and POST /build/prune. The query is parsed
 * leniently (podman #15928, #10663): empty or unknown values are ignored. The stream always ends a
 * failure with both `error` and `errorDetail` (podman #12392), or the docker CLI reports success.
 */
import type { ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import { EngineError, notImplemented } from '../../base/errors.js';
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

/** The request body as a plain tar: gzip is detected by its magic bytes (xz/bzip2 are refused). */
async function contextStream(req: Readable): Promise<Readable> {
  const out = new PassThrough();
  let first = true;
  const sniff = new PassThrough();
  const it = req[Symbol.asyncIterator]();
  const head = await it.next();
  if (head.done) {
    out.end();
    return out;
  }
  const buf = head.value as Buffer;
  const gz = buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  if (buf.length >= 3 && buf.subarray(0, 3).toString('latin1') === 'BZh') throw notImplemented('bzip2 build contexts are not supported');
  if (buf.length >= 6 && buf[0] === 0xfd && buf.subarray(1, 6).toString('latin1') === '7zXZ\0') throw notImplemented('xz build contexts are not supported');
  void first;
  first = false;
  (async () => {
    sniff.write(buf);
    for (let n = await it.next(); !n.done; n = await it.next()) {
      if (!sniff.write(n.value as Buffer)) await new Promise((r) => sniff.once('drain', r));
    }
    sniff.end();
  })().catch((e: unknown) => sniff.destroy(e as Error));
  if (!gz) return sniff;
  pipeline(sniff, createGunzip(), out).catch((e: unknown) => out.destroy(e as Error));
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
    context: await contextStream(ctx.req),
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
  const quiet = q.has('q') ? safeBool(() => q.bool('q')) : false;
  const it = builder.build(opts)[Symbol.asyncIterator]();
  // errors before the first message (bad Dockerfile, unknown target) become an HTTP status
  let next = await it.next();
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

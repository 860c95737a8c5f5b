/**
 * POST /build (the classic builder protocol, compat §6) and POST /build/prune. Contexts may be
 * plain, gzip, bzip2 or xz tars. The query is parsed
 * leniently (podman #15928, #10663): empty or unknown values are ignored. The stream always ends a
 * failure with both `error` and `errorDetail` (podman #12392), or the docker CLI reports success.
 */
import type { ServerResponse } from 'node:http';
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

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
 * The request body as a plain tar: gzip, bzip2 and xz are detected by their magic bytes (compat
 * §2). Node has no bzip2/xz decoder, so those go through Debian's `bzip2 -dc` / `xz -dc`.
 */
async function contextStream(req: Readable): Promise<Readable> {
  const it = req[Symbol.asyncIterator]();
  const head = await it.next();
  if (head.done) {
    const out = new PassThrough();
    out.end();
    return out;
  }
  const buf = head.value as Buffer;
  const sniff = new PassThrough();
  (async () => {
    sniff.write(buf);
    for (let n = await it.next(); !n.done; n = await it.next()) {
      if (!sniff.write(n.value as Buffer)) await new Promise((r) => sniff.once('drain', r));
    }
    sniff.end();
  })().catch((e: unknown) => sniff.destroy(e as Error));
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    const out = new PassThrough();
    out.on('error', () => undefined); // kept as stream.errored for the reader (see decompressWith)
    pipeline(sniff, createGunzip(), out).catch((e: unknown) => out.destroy(e as Error));
    return out;
  }
  if (buf.length >= 3 && buf.subarray(0, 3).toString('latin1') === 'BZh') return decompressWith('bzip2', sniff);
  if (buf.length >= 6 && buf[0] === 0xfd && buf.subarray(1, 6).toString('latin1') === '7zXZ\0') return decompressWith('xz', sniff);
  return sniff;
}

/** Pipe `src` through `<tool> -dc`; a failure of the tool fails the returned stream. */
function decompressWith(tool: 'xz' | 'bzip2', src: Readable): Readable {
  const out = new PassThrough();
  // the tool may fail before the builder reads the stream: keep the error for the reader
  // (stream.errored) instead of crashing on an unhandled 'error' event
  out.on('error', () => undefined);
  let child;
  try {
    child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    out.destroy(invalidArgument(`cannot decompress the ${tool} build context: ${(e as Error).message}`));
    return out;
  }
  // the reader gave up (the context is not a tar, the build failed): the tool must not stay blocked
  // on a full stdout pipe
  out.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.on('error', (e) => out.destroy(invalidArgument(`cannot decompress the ${tool} build context: ${e.message} (is ${tool} installed?)`)));
  pipeline(src, child.stdin).catch(() => undefined);
  const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? 1)));
  (async () => {
    for await (const chunk of child.stdout) {
      if (out.destroyed) break;
      if (!out.write(chunk)) await new Promise((r) => (out.once('drain', r), out.once('close', r)));
    }
    const code = await exited;
    if (code !== 0) out.destroy(invalidArgument(`failed to decompress the ${tool} build context: ${err.trim() || `exit status ${code}`}`));
    else out.end();
  })().catch((e: unknown) => out.destroy(e as Error));
  return out;
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

/**
 * Container endpoints (compat §5 "Containers"): translate wire shapes into ContainerService calls.
 */
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';

import { invalidArgument, messageOf } from '../../base/errors.js';
import type { Json, OutputChunk, WaitCondition } from '../../engine/services.js';
import { CONTAINER_CREATE_BODY, CONTAINER_UPDATE_BODY, EXEC_CREATE_BODY, EXEC_START_BODY, checkBodyTypes } from '../../wire/body-types.js';
import { frame, STDERR, STDOUT } from '../../wire/stdcopy.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from '../detach-keys.js';
import { streamErrorLine } from '../errors.js';
import { runSession, MULTIPLEXED_STREAM, RAW_STREAM, UpgradeIO, type HijackIO } from '../hijack.js';
import { WebSocketIO, websocketAccept } from '../websocket-io.js';
import { asObject, jsonLine, parseJsonBody, readJson, readJsonObject, sendEmpty, sendJson, startStream, writeChunk } from '../http-util.js';
import { hijackRoute, route, type RequestContext, type Route } from '../router.js';
import { versionAtLeast } from '../version.js';

const ID = '([^/]+)';
const c = (suffix: string): RegExp => new RegExp(`^/containers/${ID}${suffix}$`);

const WAIT_CONDITIONS: readonly WaitCondition[] = ['not-running', 'next-exit', 'removed'];

/**
 * Format a runtime timestamp as Docker's fixed-width RFC3339Nano
 * (`2024-01-01T00:00:00.123456789Z`, always 9 fractional digits).
 */
export function fixedNano(time: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return time;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}${m[3]}`;
}

/**
 * Prefixes each line of a stream's output with its timestamp, tracking line starts per stream so
 * chunks that split lines are handled.
 */
export class TimestampPrefixer {
  private atLineStart: Record<string, boolean> = { stdout: true, stderr: true };

  /** Return the chunk's data with `<time> ` before each line start. */
  apply(chunk: OutputChunk): Buffer {
    const ts = Buffer.from(fixedNano(chunk.time) + ' ');
    const parts: Buffer[] = [];
    let start = 0;
    const data = chunk.data;
    while (start < data.length) {
      if (this.atLineStart[chunk.stream]) parts.push(ts);
      const nl = data.indexOf(0x0a, start);
      const end = nl < 0 ? data.length : nl + 1;
      parts.push(data.subarray(start, end));
      this.atLineStart[chunk.stream] = nl >= 0;
      start = end;
    }
    return Buffer.concat(parts);
  }
}

function refOf(ctx: RequestContext): string {
  return ctx.params[0]!;
}

function stopOpts(ctx: RequestContext): { timeout?: number; signal?: string } {
  const o: { timeout?: number; signal?: string } = {};
  const t = ctx.query.int('t');
  if (t !== undefined) o.timeout = t;
  const sig = ctx.query.nonEmpty('signal');
  if (sig !== undefined) o.signal = sig;
  return o;
}

async function list(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const q = ctx.query;
  const limit = q.int('limit');
  const filters = q.filters();
  // Pre-1.41 clients may still send before/since as top-level params.
  for (const k of ['before', 'since']) {
    const v = q.nonEmpty(k);
    if (v !== undefined) filters[k] = [...(filters[k] ?? []), v];
  }
  const opts: { all: boolean; limit?: number; size: boolean; filters: typeof filters } = {
    all: q.bool('all'),
    size: q.bool('size'),
    filters,
  };
  if (limit !== undefined && limit > 0) opts.limit = limit;
  sendJson(res, 200, await ctx.engine.containers.list(opts));
}

async function create(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const body = await readJson(ctx.req, CONTAINER_CREATE_BODY);
  if (body === undefined || body === null) throw invalidArgument('config cannot be empty in order to create a container');
  const opts: { name?: string; body: Json; platform?: string } = { body: asObject(body) };
  const name = ctx.query.nonEmpty('name');
  if (name !== undefined) opts.name = name;
  const platform = ctx.query.nonEmpty('platform');
  if (platform !== undefined) opts.platform = platform;
  const r = await ctx.engine.containers.create(opts);
  sendJson(res, 201, { Id: r.Id, Warnings: r.Warnings ?? [] });
}

async function wait(ctx: RequestContext, res: ServerResponse): Promise<void> {
  let condition: WaitCondition = 'not-running';
  const raw = ctx.query.nonEmpty('condition');
  // Before 1.30 the condition is ignored (compat §1).
  if (raw !== undefined && versionAtLeast(ctx.apiVersion, '1.30')) {
    if (!(WAIT_CONDITIONS as readonly string[]).includes(raw)) throw invalidArgument(`invalid condition: "${raw}"`);
    condition = raw as WaitCondition;
  }
  const w = await ctx.engine.containers.wait(refOf(ctx), condition, ctx.signal);
  w.result.catch(() => undefined); // handled below; avoid an unhandled rejection if ready fails
  await w.ready;
  // Headers go out now, before the container exits: `docker run` waits for them before /start.
  startStream(res, 'application/json');
  let body: Json;
  try {
    // The client may hang up early (`docker run -d` abandons its wait): stop waiting then.
    const aborted = new Promise<never>((_, reject) => {
      if (ctx.signal.aborted) reject(ctx.signal.reason);
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    const r = await Promise.race([w.result, aborted]);
    body = { StatusCode: r.StatusCode, Error: r.Error ?? null };
  } catch (e) {
    if (ctx.signal.aborted) return;
    body = { StatusCode: -1, Error: { Message: messageOf(e) } };
  }
  res.end(jsonLine(body));
}

async function logs(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const q = ctx.query;
  const stdout = q.bool('stdout');
  const stderr = q.bool('stderr');
  if (!stdout && !stderr) throw invalidArgument('Bad parameters: you must choose at least one stream');
  const tailRaw = q.nonEmpty('tail');
  let tail: number | undefined;
  if (tailRaw !== undefined && tailRaw !== 'all') {
    const n = Number.parseInt(tailRaw, 10);
    if (Number.isFinite(n) && n >= 0) tail = n;
  }
  const timestamps = q.bool('timestamps');
  const opts: Parameters<typeof ctx.engine.containers.logs>[1] = {
    follow: q.bool('follow'),
    stdout,
    stderr,
    timestamps,
    signal: ctx.signal,
  };
  if (tail !== undefined) opts.tail = tail;
  const since = q.time('since');
  if (since !== undefined && since !== 0) opts.since = since;
  const until = q.time('until');
  if (until !== undefined && until !== 0) opts.until = until;
  const { tty, chunks } = await ctx.engine.containers.logs(refOf(ctx), opts);
  startStream(res, !tty && versionAtLeast(ctx.apiVersion, '1.42') ? MULTIPLEXED_STREAM : RAW_STREAM);
  const prefixer = timestamps ? new TimestampPrefixer() : undefined;
  try {
    for await (const chunk of chunks) {
      const data = prefixer ? prefixer.apply(chunk) : chunk.data;
      const buf = tty ? data : frame(chunk.stream === 'stderr' ? STDERR : STDOUT, data);
      if (!(await writeChunk(res, buf))) break;
    }
  } catch (e) {
    if (!ctx.signal.aborted) ctx.log(`${ctx.tag} logs stream failed: ${messageOf(e)}`);
  }
  res.end();
}

type AttachOpts = Parameters<RequestContext['engine']['containers']['attach']>[1];

/** The attach query (`stdin`, `stdout`, `stderr`, `logs`, `stream`, `detachKeys`) as engine options. */
function attachOptions(ctx: RequestContext): { opts: AttachOpts; detachKeys: Buffer } {
  const q = ctx.query;
  const keysSpec = q.nonEmpty('detachKeys');
  const detachKeys = parseDetachKeys(keysSpec ?? DEFAULT_DETACH_KEYS);
  const opts: AttachOpts = {
    stdin: q.bool('stdin'),
    stdout: q.bool('stdout'),
    stderr: q.bool('stderr'),
    logs: q.bool('logs'),
    stream: q.bool('stream'),
    signal: ctx.signal,
  };
  if (keysSpec !== undefined) opts.detachKeys = keysSpec;
  return { opts, detachKeys };
}

async function attach(ctx: RequestContext, io: HijackIO): Promise<void> {
  const { opts, detachKeys } = attachOptions(ctx);
  if (io.upgraded) await io.readBody(); // e.g. dockerode's chunked "0\r\n\r\n": not stdin
  const session = await ctx.engine.containers.attach(refOf(ctx), opts);
  await runSession(io, session, { apiVersion: ctx.apiVersion, detachKeys, log: ctx.log, tag: ctx.tag });
}

/**
 * GET /containers/{id}/attach/ws: attach over a WebSocket (docker-py `attach_socket(ws=True)`).
 * The stream is never multiplexed: stdout and stderr arrive as they come, one frame per chunk.
 */
async function attachWebSocket(ctx: RequestContext, io: HijackIO): Promise<void> {
  if (!(io instanceof UpgradeIO)) throw invalidArgument('websocket: the client is not using the websocket protocol: \'upgrade\' token not found in \'Connection\' header');
  const accept = websocketAccept(ctx.req);
  const { opts, detachKeys } = attachOptions(ctx);
  const session = await ctx.engine.containers.attach(refOf(ctx), opts);
  const ws = new WebSocketIO(io, accept, versionAtLeast(ctx.apiVersion, '1.28'), (m) => ctx.log(`${ctx.tag} ${m}`));
  await runSession(ws, session, { apiVersion: ctx.apiVersion, raw: true, detachKeys, log: ctx.log, tag: ctx.tag });
}

async function stats(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const stream = ctx.query.bool('stream', true);
  const oneShot = ctx.query.bool('one-shot');
  const iter = ctx.engine.containers.stats(refOf(ctx), { stream, oneShot, signal: ctx.signal })[Symbol.asyncIterator]();
  if (!stream) {
    const first = await iter.next();
    await iter.return?.();
    sendJson(res, 200, first.done ? {} : first.value);
    return;
  }
  // Wait briefly for the first sample so a missing container is a clean 404, but never hold the
  // headers back for long (a created container may have nothing to report yet).
  const firstP = iter.next();
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 1500).unref());
  const first = await Promise.race([firstP, timer]);
  startStream(res, 'application/json');
  try {
    let next = first === 'timeout' ? await firstP : first;
    while (!next.done) {
      if (!(await writeChunk(res, jsonLine(next.value)))) break;
      next = await iter.next();
    }
  } catch (e) {
    if (!ctx.signal.aborted) await writeChunk(res, streamErrorLine(e));
  } finally {
    await iter.return?.();
  }
  res.end();
}

async function archiveStatHeader(stat: Json): Promise<string> {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

function archivePath(ctx: RequestContext): string {
  const p = ctx.query.str('path');
  if (p === undefined || p === '') throw invalidArgument('path cannot be empty');
  return p;
}

async function archiveHead(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const stat = await ctx.engine.containers.statPath(refOf(ctx), archivePath(ctx));
  res.writeHead(200, {
    'X-Docker-Container-Path-Stat': await archiveStatHeader(stat as unknown as Json),
    'Content-Type': 'application/json',
    'Content-Length': 0,
  });
  res.end();
}

async function archiveGet(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const { stat, tar } = await ctx.engine.containers.getArchive(refOf(ctx), archivePath(ctx));
  res.writeHead(200, { 'X-Docker-Container-Path-Stat': await archiveStatHeader(stat), 'Content-Type': 'application/x-tar' });
  res.flushHeaders();
  await pipeline(tar, res, { signal: ctx.signal });
}

async function archivePut(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const q = ctx.query;
  await ctx.engine.containers.putArchive(refOf(ctx), archivePath(ctx), ctx.req, {
    noOverwriteDirNonDir: q.bool('noOverwriteDirNonDir'),
    copyUIDGID: q.bool('copyUIDGID'),
  });
  sendEmpty(res, 200);
}

async function exportContainer(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const tar = await ctx.engine.containers.export(refOf(ctx));
  startStream(res, 'application/x-tar');
  await pipeline(tar, res, { signal: ctx.signal });
}

async function execCreate(ctx: RequestContext, res: ServerResponse): Promise<void> {
  const body = await readJsonObject(ctx.req, EXEC_CREATE_BODY);
  const cmd = typeof body.Cmd === 'string' ? [body.Cmd] : body.Cmd;
  if (!Array.isArray(cmd) || cmd.length === 0) throw invalidArgument('No exec command specified');
  const opts = { ...body, Cmd: cmd.map((x) => String(x)) } as Parameters<typeof ctx.engine.containers.execCreate>[1];
  const r = await ctx.engine.containers.execCreate(refOf(ctx), opts);
  sendJson(res, 201, { Id: r.Id });
}

function size(ctx: RequestContext, key: string): number {
  const v = ctx.query.int(key);
  if (v === undefined || v < 0) throw invalidArgument(`invalid ${key === 'h' ? 'height' : 'width'}: ${ctx.query.str(key) ?? ''}`);
  return v;
}

/** The container routes. */
export const containerRoutes: Route[] = [
  route('GET', /^\/containers\/json$/, list),
  route('POST', /^\/containers\/create$/, create),
  route('POST', /^\/containers\/prune$/, async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.containers.prune(ctx.query.filters()));
  }),
  route('GET', c('/json'), async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.containers.inspect(refOf(ctx), { size: ctx.query.bool('size') }));
  }),
  route('POST', c('/start'), async (ctx, res) => {
    await ctx.engine.containers.start(refOf(ctx));
    sendEmpty(res, 204);
  }),
  route('POST', c('/stop'), async (ctx, res) => {
    await ctx.engine.containers.stop(refOf(ctx), stopOpts(ctx));
    sendEmpty(res, 204);
  }),
  route('POST', c('/restart'), async (ctx, res) => {
    await ctx.engine.containers.restart(refOf(ctx), stopOpts(ctx));
    sendEmpty(res, 204);
  }),
  route('POST', c('/kill'), async (ctx, res) => {
    await ctx.engine.containers.kill(refOf(ctx), ctx.query.nonEmpty('signal'));
    sendEmpty(res, 204);
  }),
  route('DELETE', c(''), async (ctx, res) => {
    if (ctx.query.bool('link')) throw invalidArgument('container links are not supported');
    await ctx.engine.containers.remove(refOf(ctx), { force: ctx.query.bool('force'), volumes: ctx.query.bool('v') });
    sendEmpty(res, 204);
  }),
  route('POST', c('/wait'), wait),
  route('GET', c('/logs'), logs),
  hijackRoute('POST', c('/attach'), attach),
  hijackRoute('GET', c('/attach/ws'), attachWebSocket),
  route('POST', c('/resize'), async (ctx, res) => {
    await ctx.engine.containers.resize(refOf(ctx), size(ctx, 'h'), size(ctx, 'w'));
    sendEmpty(res, 200);
  }),
  route('POST', c('/pause'), async (ctx, res) => {
    await ctx.engine.containers.pause(refOf(ctx));
    sendEmpty(res, 204);
  }),
  route('POST', c('/unpause'), async (ctx, res) => {
    await ctx.engine.containers.unpause(refOf(ctx));
    sendEmpty(res, 204);
  }),
  route('POST', c('/rename'), async (ctx, res) => {
    const name = ctx.query.nonEmpty('name');
    if (name === undefined) throw invalidArgument('name cannot be empty');
    await ctx.engine.containers.rename(refOf(ctx), name);
    sendEmpty(res, 204);
  }),
  route('POST', c('/update'), async (ctx, res) => {
    const r = await ctx.engine.containers.update(refOf(ctx), await readJsonObject(ctx.req, CONTAINER_UPDATE_BODY));
    sendJson(res, 200, { Warnings: r.Warnings ?? [] });
  }),
  route('GET', c('/top'), async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.containers.top(refOf(ctx), ctx.query.nonEmpty('ps_args') ?? '-ef'));
  }),
  route('GET', c('/stats'), stats),
  route('GET', c('/changes'), async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.containers.changes(refOf(ctx)));
  }),
  route('GET', c('/export'), exportContainer),
  route('HEAD', c('/archive'), archiveHead),
  route('GET', c('/archive'), archiveGet),
  route('PUT', c('/archive'), archivePut),
  route('POST', c('/exec'), execCreate),
];

/** The exec routes (start is hijackable). */
export const execRoutes: Route[] = [
  hijackRoute('POST', /^\/exec\/([^/]+)\/start$/, async (ctx, io) => {
    const parsed = parseJsonBody(await io.readBody());
    checkBodyTypes(parsed, EXEC_START_BODY);
    const body = asObject(parsed);
    const id = ctx.params[0]!;
    const opts: Parameters<typeof ctx.engine.containers.execStart>[1] = { Detach: body.Detach === true, signal: ctx.signal };
    if (typeof body.Tty === 'boolean') opts.Tty = body.Tty;
    if (Array.isArray(body.ConsoleSize)) opts.ConsoleSize = body.ConsoleSize as [number, number];
    let keys = DEFAULT_DETACH_KEYS;
    if (!opts.Detach) {
      try {
        const info = await ctx.engine.containers.execInspect(id);
        if (typeof info.DetachKeys === 'string' && info.DetachKeys !== '') keys = info.DetachKeys;
      } catch {
        /* execStart reports a missing exec */
      }
    }
    const detachKeys = parseDetachKeys(keys);
    const session = await ctx.engine.containers.execStart(id, opts);
    if (!session) {
      io.finishEmpty(200);
      return;
    }
    await runSession(io, session, { apiVersion: ctx.apiVersion, detachKeys, log: ctx.log, tag: ctx.tag });
  }),
  route('POST', /^\/exec\/([^/]+)\/resize$/, async (ctx, res) => {
    await ctx.engine.containers.execResize(ctx.params[0]!, size(ctx, 'h'), size(ctx, 'w'));
    sendEmpty(res, 200);
  }),
  route('GET', /^\/exec\/([^/]+)\/json$/, async (ctx, res) => {
    sendJson(res, 200, await ctx.engine.containers.execInspect(ctx.params[0]!));
  }),
];

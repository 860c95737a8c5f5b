/**
 * Hijacked streams for attach and exec start (compat §3). Two transports behind one interface:
 * - UpgradeIO: the socket from the server's 'upgrade' event. The request body (exec-start JSON) is
 *   NOT parsed by Node and arrives in `head` + socket data: exactly Content-Length bytes (or a
 *   chunked body) are the body, the rest is stdin. The head is `HTTP/1.1 101 UPGRADED`, written as
 *   its own write before any stream byte.
 * - PlainIO: a normal request without Upgrade: `200 OK`, raw-stream content type, no chunking,
 *   `Connection: close`, body ends when the connection closes.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

import { invalidArgument, messageOf } from '../base/errors.js';
import type { AttachSession } from '../engine/services.js';
import { frame, STDERR, STDOUT } from '../wire/stdcopy.js';
import { DetachMatcher } from './detach-keys.js';
import { errorReply, writeErrorResponse } from './errors.js';
import { MAX_JSON_BODY, readBody, writeChunk } from './http-util.js';
import { versionAtLeast } from './version.js';

/** Pause between an upgraded response head and the first stream byte (see UpgradeIO.beginWith). */
const HEAD_SETTLE_MS = 10;

/** Content type of raw (TTY) streams. */
export const RAW_STREAM = 'application/vnd.docker.raw-stream';
/** Content type of multiplexed (non-TTY, API ≥ 1.42) streams. */
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

/** The transport a hijack handler talks through. */
export interface HijackIO {
  /** True for the 101 upgrade transport. */
  readonly upgraded: boolean;
  /** True once a response head went out (then errors can only go into the stream). */
  readonly started: boolean;
  /** Aborted when the client connection closes. */
  readonly signal: AbortSignal;
  /** The request body (Content-Length bytes or a de-chunked body). Call at most once, before input(). */
  readBody(): Promise<Buffer>;
  /** Bytes the client sends after the body (stdin); ends on the client's half-close. */
  input(): AsyncIterable<Buffer>;
  /** Answer with an error response (only before begin). */
  fail(err: unknown): void;
  /** Answer with an empty response (detached exec). */
  finishEmpty(status: number): void;
  /** Write the response head for a stream of the given content type. */
  begin(contentType: string): Promise<void>;
  /** Write stream bytes with backpressure; false once the client is gone. */
  write(buf: Buffer): Promise<boolean>;
  /** Finish the output side (FIN on the upgraded socket; end of body otherwise). */
  end(): void;
}

function headerLines(headers: Record<string, string | number>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

/** Reads a byte stream in two phases: body first, then whatever follows. */
class ByteReader {
  private buf: Buffer;
  private done = false;
  constructor(
    head: Buffer,
    private readonly it: AsyncIterator<Buffer>,
  ) {
    this.buf = head;
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    return true;
  }

  async readExact(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (!(await this.fill())) throw invalidArgument('unexpected end of request body');
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async readLine(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const line = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        return line;
      }
      if (this.buf.length > 64 * 1024) throw invalidArgument('malformed chunked request body');
      if (!(await this.fill())) throw invalidArgument('unexpected end of chunked request body');
    }
  }

  async readChunked(limit = MAX_JSON_BODY): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const part of this.streamChunked()) {
      size += part.length;
      if (size > limit) throw invalidArgument(`request body too large (limit ${limit} bytes)`);
      parts.push(part);
    }
    return Buffer.concat(parts);
  }

  /** Stream exactly n bytes as they arrive. */
  async *streamExact(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw invalidArgument('unexpected end of request body');
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      left -= take;
      yield out;
    }
  }

  /** Stream a chunked body, de-chunked. */
  async *streamChunked(): AsyncGenerator<Buffer> {
    for (;;) {
      const sizeLine = (await this.readLine()).split(';')[0]!.trim();
      if (!/^[0-9a-fA-F]{1,15}$/.test(sizeLine)) throw invalidArgument('malformed chunked request body');
      const size = Number.parseInt(sizeLine, 16);
      if (size === 0) {
        while ((await this.readLine()) !== '') {
          /* trailers: ignored */
        }
        return;
      }
      yield* this.streamExact(size);
      if ((await this.readExact(2)).toString('latin1') !== '\r\n') throw invalidArgument('malformed chunked request body');
    }
  }

  async *rest(): AsyncGenerator<Buffer> {
    if (this.buf.length) {
      const b = this.buf;
      this.buf = Buffer.alloc(0);
      yield b;
    }
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return;
      }
      yield r.value;
    }
  }
}

/** Hijack transport over an upgraded socket. */
export class UpgradeIO implements HijackIO {
  readonly upgraded = true;
  private _started = false;
  private readonly reader: ByteReader;
  private bodyRead = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly socket: Socket,
    head: Buffer,
    private readonly headers: Record<string, string>,
    readonly signal: AbortSignal,
    private readonly log: (msg: string) => void,
    private readonly tag: string,
  ) {
    // destroyOnReturn:false: the iterator must not destroy the socket at the client's half-close,
    // because output still flows the other way.
    const it = socket.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.reader = new ByteReader(head, it);
  }

  get started(): boolean {
    return this._started;
  }

  async readBody(): Promise<Buffer> {
    if (this.bodyRead) return Buffer.alloc(0);
    this.bodyRead = true;
    const te = String(this.req.headers['transfer-encoding'] ?? '').toLowerCase();
    if (te.includes('chunked')) return this.reader.readChunked();
    const n = this.contentLength();
    if (n !== undefined) {
      if (n > MAX_JSON_BODY) throw invalidArgument(`request body too large (limit ${MAX_JSON_BODY} bytes)`);
      return this.reader.readExact(n);
    }
    return Buffer.alloc(0);
  }

  private contentLength(): number | undefined {
    const cl = this.req.headers['content-length'];
    if (cl === undefined) return undefined;
    if (!/^\d+$/.test(cl.trim())) throw invalidArgument(`invalid Content-Length: ${cl}`);
    return Number.parseInt(cl, 10);
  }

  /**
   * The request body as a stream (Content-Length bytes or de-chunked), for serving an upgrade
   * request on an endpoint that does not hijack: such a request is answered like a normal one, as
   * Go's net/http does, so its body must reach the handler. Call at most once, instead of readBody.
   */
  async *bodyStream(): AsyncGenerator<Buffer> {
    if (this.bodyRead) return;
    this.bodyRead = true;
    const te = String(this.req.headers['transfer-encoding'] ?? '').toLowerCase();
    if (te.includes('chunked')) {
      yield* this.reader.streamChunked();
      return;
    }
    const n = this.contentLength();
    if (n !== undefined) yield* this.reader.streamExact(n);
  }

  input(): AsyncIterable<Buffer> {
    return this.reader.rest();
  }

  fail(err: unknown): void {
    const reply = errorReply(err);
    if (reply.log) this.log(`${this.tag} ${reply.log}`);
    if (this._started) {
      this.socket.end();
      return;
    }
    this._started = true;
    const body = reply.status === 304 ? '' : JSON.stringify({ message: reply.message }) + '\n';
    const head =
      `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? 'Error'}\r\n` +
      headerLines({
        ...this.headers,
        ...(body ? { 'Content-Type': 'application/json' } : {}),
        'Content-Length': Buffer.byteLength(body),
        Connection: 'close',
      }) +
      '\r\n';
    this.socket.end(head + body);
  }

  finishEmpty(status: number): void {
    this._started = true;
    this.socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        headerLines({ ...this.headers, 'Content-Length': 0, Connection: 'close' }) +
        '\r\n',
    );
  }

  begin(contentType: string): Promise<void> {
    return this.beginWith('101 UPGRADED', { 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp' });
  }

  /** Write a response head with the given status and headers (plus the common ones). */
  beginWith(status: string, headers: Record<string, string>): Promise<void> {
    this._started = true;
    const head = `HTTP/1.1 ${status}\r\n` + headerLines({ ...headers, ...this.headers }) + '\r\n';
    // Its own write, and wait until it reached the kernel, so no stream byte shares its segment
    // (docker-py reads the raw socket under its HTTP reader; compat §3.5). Then a short pause: bytes
    // already queued behind the head (an exec whose output exists before the head is written) could
    // still land in the client's buffered read of the head and be swallowed; the client is blocked
    // reading the head, so a few milliseconds let it take the head alone (dockerd gets the same
    // spacing from the process spawn that follows its head).
    return new Promise((resolve) => {
      this.socket.write(head, () => setTimeout(resolve, HEAD_SETTLE_MS));
    });
  }

  write(buf: Buffer): Promise<boolean> {
    return writeChunk(this.socket, buf);
  }

  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }
}

/** Hijack transport over a normal request/response (no Upgrade header). */
export class PlainIO implements HijackIO {
  readonly upgraded = false;
  private bodyRead = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly signal: AbortSignal,
    private readonly log: (msg: string) => void,
    private readonly tag: string,
  ) {}

  get started(): boolean {
    return this.res.headersSent;
  }

  async readBody(): Promise<Buffer> {
    if (this.bodyRead) return Buffer.alloc(0);
    this.bodyRead = true;
    return readBody(this.req);
  }

  async *input(): AsyncGenerator<Buffer> {
    if (this.bodyRead) return;
    this.bodyRead = true;
    for await (const chunk of this.req as AsyncIterable<Buffer>) yield chunk;
  }

  fail(err: unknown): void {
    writeErrorResponse(this.res, err, this.log, this.tag);
  }

  finishEmpty(status: number): void {
    this.res.writeHead(status, { 'Content-Length': 0 });
    this.res.end();
  }

  async begin(_contentType: string): Promise<void> {
    // moby answers a non-upgraded hijack with a raw 200 whose body ends at connection close.
    this.res.useChunkedEncodingByDefault = false;
    this.res.shouldKeepAlive = false;
    this.res.writeHead(200, { 'Content-Type': RAW_STREAM });
    this.res.flushHeaders();
  }

  write(buf: Buffer): Promise<boolean> {
    return writeChunk(this.res, buf);
  }

  end(): void {
    this.res.end();
  }
}

/** Options of runSession. */
export interface RunSessionOptions {
  apiVersion: string;
  /** Never multiplex, even without a TTY (websocket attach streams are raw). */
  raw?: boolean;
  /** Detach sequence matched on stdin of TTY sessions (moby applies it only with a TTY). */
  detachKeys?: Buffer;
  log: (msg: string) => void;
  tag: string;
}

/**
 * Drive an attach/exec session over a hijack transport: write the head, pump output (framed when
 * no TTY) until it ends, then end the socket; pump stdin into session.stdin concurrently, ending it
 * on the client's half-close while output continues; handle the detach sequence.
 */
export async function runSession(io: HijackIO, session: AttachSession, opts: RunSessionOptions): Promise<void> {
  const multiplexed = !opts.raw && !session.tty && versionAtLeast(opts.apiVersion, '1.42');
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    try {
      session.close();
    } catch (e) {
      opts.log(`${opts.tag} session close failed: ${messageOf(e)}`);
    }
  };
  const onAbort = (): void => finish();
  io.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await io.begin(multiplexed ? MULTIPLEXED_STREAM : RAW_STREAM);

    const pumpIn = (async (): Promise<void> => {
      const stdin = session.stdin;
      const matcher = session.tty && opts.detachKeys?.length ? new DetachMatcher(opts.detachKeys) : undefined;
      try {
        for await (const chunk of io.input()) {
          if (finished) continue; // keep draining; nobody to feed
          if (!stdin) continue;
          let data = chunk;
          if (matcher) {
            const scan = matcher.push(chunk);
            data = scan.data;
            if (scan.detached) {
              if (data.length) await writeChunk(stdin, data);
              finish();
              io.end();
              return;
            }
          }
          if (data.length && !(await writeChunk(stdin, data))) break;
        }
        // Client half-closed: close the process's stdin (StdinOnce), keep sending output.
        if (stdin && !finished && !stdin.writableEnded && !stdin.destroyed) stdin.end();
      } catch (e) {
        if (!finished) opts.log(`${opts.tag} stdin: ${messageOf(e)}`);
      }
    })();

    try {
      for await (const chunk of session.output) {
        if (finished) break;
        const buf = session.tty || opts.raw ? chunk.data : frame(chunk.stream === 'stderr' ? STDERR : STDOUT, chunk.data);
        if (!(await io.write(buf))) break;
      }
    } catch (e) {
      if (!finished && !io.signal.aborted) {
        const text = Buffer.from(`${messageOf(e)}\r\n`);
        await io.write(session.tty || opts.raw ? text : frame(STDOUT, text));
      }
    }
    finish();
    io.end();
    void pumpIn;
  } finally {
    io.signal.removeEventListener('abort', onAbort);
    finish();
  }
}

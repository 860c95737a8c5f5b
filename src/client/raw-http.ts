/**
 * One whole-body HTTP/1.1 exchange over `node:net` (issue 7: CLI start-up). Most CLI commands make
 * one or two small JSON requests; loading `node:http` (agent, parser, outgoing/incoming message
 * classes) costs more of a CLI start than the requests themselves, so those go through this
 * instead, and `node:http` is loaded only for streamed bodies, long responses read as they arrive
 * and hijacked connections.
 *
 * Answers with a Content-Length, chunked answers and answers that end with the connection are
 * read; the request asks for `Connection: close`, and the socket is destroyed once the answer is
 * complete. Interim 1xx answers are skipped.
 */
import * as net from 'node:net';

import type { DaemonAddress } from './host.js';

/** A request with its whole body. */
export interface RawRequest {
  method: string;
  path: string;
  /** Header names as they are to be sent. */
  headers: Record<string, string>;
  body?: Buffer | undefined;
}

/** A complete answer. */
export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", " (as node:http does for most). */
  headers: Record<string, string>;
  body: Buffer;
}

/** Largest response head accepted (node:http's default limit is 16 KiB). */
const MAX_HEAD = 64 * 1024;

/** Methods node:http sends without a body and without Content-Length when none is given. */
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

function hangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

function parseError(what: string): Error {
  return Object.assign(new Error(`invalid HTTP response from the daemon: ${what}`), { code: 'HPE_INVALID' });
}

/** Serialise the request head (and body). */
export function encodeRequest(req: RawRequest): Buffer {
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  let hasLength = false;
  for (const [k, v] of Object.entries(req.headers)) {
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new TypeError(`invalid header ${k}`);
    if (k.toLowerCase() === 'content-length') hasLength = true;
    if (k.toLowerCase() === 'connection') continue;
    head += `${k}: ${v}\r\n`;
  }
  if (!hasLength && (req.body !== undefined || !NO_BODY_METHODS.has(req.method))) head += `Content-Length: ${req.body?.length ?? 0}\r\n`;
  head += 'Connection: close\r\n\r\n';
  const h = Buffer.from(head, 'latin1');
  return req.body?.length ? Buffer.concat([h, req.body]) : h;
}

/**
 * Incremental response parser: feed() chunks; returns the response once complete, else undefined.
 * end() is called when the connection ends and returns the response if ending completes it.
 */
export class ResponseParser {
  private buf: Buffer = Buffer.alloc(0);
  private status = 0;
  private headers: Record<string, string> = {};
  private mode: 'head' | 'length' | 'chunked' | 'eof' = 'head';
  private remaining = 0;
  private readonly parts: Buffer[] = [];

  constructor(private readonly method: string) {}

  feed(chunk: Buffer): RawResponse | undefined {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.mode === 'head') {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.buf.length > MAX_HEAD) throw parseError('head too large');
          return undefined;
        }
        const lines = this.buf.toString('latin1', 0, end).split('\r\n');
        this.buf = this.buf.subarray(end + 4);
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
        if (!m) throw parseError(JSON.stringify((lines[0] ?? '').slice(0, 40)));
        const status = Number(m[1]);
        if (status >= 100 && status < 200 && status !== 101) continue; // interim answer
        this.status = status;
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          if (i <= 0) throw parseError(`header line ${JSON.stringify(line.slice(0, 40))}`);
          const k = line.slice(0, i).trim().toLowerCase();
          const v = line.slice(i + 1).trim();
          this.headers[k] = this.headers[k] === undefined ? v : `${this.headers[k]}, ${v}`;
        }
        const te = this.headers['transfer-encoding'];
        const cl = this.headers['content-length'];
        if (this.method === 'HEAD' || status === 204 || status === 304) return this.done();
        if (te !== undefined && /(^|,)\s*chunked\s*$/i.test(te)) this.mode = 'chunked';
        else if (cl !== undefined) {
          if (!/^\d+$/.test(cl)) throw parseError(`Content-Length ${JSON.stringify(cl)}`);
          this.mode = 'length';
          this.remaining = Number(cl);
        } else this.mode = 'eof';
        continue;
      }
      if (this.mode === 'length') {
        const take = Math.min(this.remaining, this.buf.length);
        if (take) this.parts.push(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        return this.remaining === 0 ? this.done() : undefined;
      }
      if (this.mode === 'chunked') {
        if (this.remaining > 0) {
          // inside a chunk's data plus its CRLF: remaining counts both
          if (this.buf.length < this.remaining) return undefined;
          this.parts.push(this.buf.subarray(0, this.remaining - 2));
          this.buf = this.buf.subarray(this.remaining);
          this.remaining = 0;
          continue;
        }
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) {
          if (this.buf.length > 1024) throw parseError('chunk size line too long');
          return undefined;
        }
        const sizeText = this.buf.toString('latin1', 0, nl).split(';')[0]!.trim();
        if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw parseError(`chunk size ${JSON.stringify(sizeText)}`);
        const size = parseInt(sizeText, 16);
        this.buf = this.buf.subarray(nl + 2);
        if (size === 0) return this.done(); // trailers, if any, are not needed
        this.remaining = size + 2;
        continue;
      }
      // eof: everything until the connection ends
      if (this.buf.length) this.parts.push(this.buf);
      this.buf = Buffer.alloc(0);
      return undefined;
    }
  }

  /** The connection ended: complete for read-until-close answers, else a hang-up. */
  end(): RawResponse {
    if (this.mode === 'eof') return this.done();
    throw hangUp();
  }

  private done(): RawResponse {
    return { status: this.status, headers: this.headers, body: Buffer.concat(this.parts) };
  }
}

/** Send `req` to the daemon and read the whole answer. Connection errors reject with the errno error. */
export function rawExchange(address: DaemonAddress, req: RawRequest): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    let data: Buffer;
    try {
      data = encodeRequest(req);
    } catch (err) {
      reject(err);
      return;
    }
    const parser = new ResponseParser(req.method);
    const sock = address.kind === 'unix' ? net.createConnection(address.socketPath) : net.createConnection(address.port, address.host);
    let settled = false;
    const finish = (err: unknown, res?: RawResponse): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      if (res) resolve(res);
      else reject(err);
    };
    sock.on('connect', () => sock.write(data));
    sock.on('data', (chunk: Buffer) => {
      try {
        const res = parser.feed(chunk);
        if (res) finish(undefined, res);
      } catch (err) {
        finish(err);
      }
    });
    sock.on('end', () => {
      try {
        finish(undefined, parser.end());
      } catch (err) {
        finish(err);
      }
    });
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish(hangUp()));
  });
}

/**
 * A small typed HTTP client for the Docker Engine API served by berthd, over a UNIX socket or TCP.
 * Every call goes to `/v<apiVersion>/<path>`; non-2xx responses become ApiError(status, message).
 */
import * as http from 'node:http';
import type { Duplex, Readable } from 'node:stream';

import { ApiError, ConnectionError, errorMessageFromBody } from './api-error.js';
import { DEFAULT_HOST, parseHost, type DaemonAddress } from './host.js';
import { readNdjson } from './ndjson.js';

/** The API version this client speaks by default. */
export const CLIENT_API_VERSION = '1.51';

/** Query values: arrays repeat the key; undefined values are dropped; objects are JSON-encoded. */
export type QueryValue = string | number | boolean | undefined | null | string[] | Record<string, unknown>;

/** Options of one request. */
export interface RequestOptions {
  query?: Record<string, QueryValue>;
  /** A JSON-able value (sent as application/json), a Buffer/string, or a readable stream (chunked). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Content type for raw/stream bodies (default application/x-tar for streams). */
  contentType?: string;
  /** Skip the `/vX.Y` prefix (for `/_ping`). */
  noVersion?: boolean;
  signal?: AbortSignal;
}

/** Options of an ApiClient. */
export interface ApiClientOptions {
  /** `unix:///path`, `/path` or `tcp://host:port`; default unix:///run/berth/berth.sock. */
  host?: string;
  /** API version for the path prefix; default 1.51. */
  apiVersion?: string;
}

/** Result of `/_ping`. */
export interface PingResult {
  apiVersion: string | undefined;
  osType: string | undefined;
  experimental: boolean;
}

/** A hijacked attach/exec connection. */
export interface HijackedStream {
  /** The raw bidirectional socket (write stdin, read output). Output bytes read before the upgrade are unshifted. */
  socket: Duplex;
  /** True when the daemon said the stream is stdcopy-multiplexed (or, lacking a header, when the caller expects it). */
  multiplexed: boolean | undefined;
  /** Response content type, when given. */
  contentType: string | undefined;
}

/** Encode a query map into `?a=1&b=2` (empty string when nothing remains). */
export function encodeQuery(query: Record<string, QueryValue> | undefined): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    const enc = (s: string): string => `${encodeURIComponent(k)}=${encodeURIComponent(s)}`;
    if (Array.isArray(v)) for (const x of v) parts.push(enc(x));
    else if (typeof v === 'object') parts.push(enc(JSON.stringify(v)));
    else if (typeof v === 'boolean') parts.push(enc(v ? '1' : '0'));
    else parts.push(enc(String(v)));
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function isReadable(x: unknown): x is Readable {
  return !!x && typeof (x as Readable).pipe === 'function' && typeof (x as Readable).on === 'function';
}

/** Read a whole response body as a Buffer. */
export async function readBody(res: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

/** The API client. One instance per CLI process; it keeps no connection pool state beyond node's agent. */
export class ApiClient {
  readonly host: string;
  readonly address: DaemonAddress;
  apiVersion: string;
  private readonly agent: http.Agent;

  constructor(opts: ApiClientOptions = {}) {
    this.host = opts.host ?? DEFAULT_HOST;
    this.address = parseHost(this.host);
    this.apiVersion = opts.apiVersion ?? CLIENT_API_VERSION;
    this.agent = new http.Agent({ keepAlive: false });
  }

  /** The URL path for an API path, with the version prefix. */
  path(p: string, query?: Record<string, QueryValue>, noVersion = false): string {
    const base = noVersion ? p : `/v${this.apiVersion}${p}`;
    return base + encodeQuery(query);
  }

  private baseOptions(method: string, path: string, headers: Record<string, string>): http.RequestOptions {
    const o: http.RequestOptions = { method, path, headers: { Host: 'berth', 'User-Agent': 'berth-cli', ...headers }, agent: this.agent };
    if (this.address.kind === 'unix') {
      o.socketPath = this.address.socketPath;
      // no TLS here: an explicit empty servername stops node's agent from deriving one from the Host
      // header, which compiles net.isIP's IPv6 regex (~4 ms of every CLI start; issue 7)
      (o as http.RequestOptions & { servername?: string }).servername = '';
    } else {
      o.host = this.address.host;
      o.port = this.address.port;
    }
    return o;
  }

  private prepareBody(opts: RequestOptions): { headers: Record<string, string>; data?: Buffer; stream?: Readable } {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const b = opts.body;
    if (b === undefined) return { headers };
    if (isReadable(b)) {
      headers['Content-Type'] = opts.contentType ?? 'application/x-tar';
      return { headers, stream: b };
    }
    let data: Buffer;
    if (Buffer.isBuffer(b)) {
      data = b;
      headers['Content-Type'] = opts.contentType ?? 'application/octet-stream';
    } else if (typeof b === 'string' && opts.contentType) {
      data = Buffer.from(b);
      headers['Content-Type'] = opts.contentType;
    } else {
      data = Buffer.from(JSON.stringify(b));
      headers['Content-Type'] = 'application/json';
    }
    headers['Content-Length'] = String(data.length);
    return { headers, data };
  }

  /**
   * Send a request and return the response once the status is known. Non-2xx (and non-304)
   * responses are read and thrown as ApiError. The caller must consume the returned body.
   */
  async request(method: string, p: string, opts: RequestOptions = {}): Promise<http.IncomingMessage> {
    const { headers, data, stream } = this.prepareBody(opts);
    const ro = this.baseOptions(method, this.path(p, opts.query, opts.noVersion), headers);
    if (opts.signal) ro.signal = opts.signal;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(ro, resolve);
      req.on('error', (err) => reject(this.wrapConnError(err)));
      if (stream) {
        stream.on('error', (err) => req.destroy(err));
        stream.pipe(req);
      } else req.end(data);
    });
    const status = res.statusCode ?? 0;
    if (status >= 400 || status < 200) {
      const body = await readBody(res);
      throw new ApiError(status, errorMessageFromBody(status, body.toString('utf8')));
    }
    return res;
  }

  private wrapConnError(err: unknown): unknown {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') {
      return new ConnectionError(this.host, err);
    }
    return err;
  }

  /** Request and parse a JSON response (undefined for empty bodies, e.g. 204/304). */
  async json<T = unknown>(method: string, p: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, p, opts);
    const body = await readBody(res);
    const t = body.toString('utf8').trim();
    if (!t) return undefined as T;
    return JSON.parse(t) as T;
  }

  /** GET a JSON document. */
  get<T = unknown>(p: string, query?: Record<string, QueryValue>): Promise<T> {
    return this.json<T>('GET', p, query ? { query } : {});
  }

  /** POST (JSON body optional) and parse the JSON answer. */
  post<T = unknown>(p: string, query?: Record<string, QueryValue>, body?: unknown): Promise<T> {
    const o: RequestOptions = {};
    if (query) o.query = query;
    if (body !== undefined) o.body = body;
    return this.json<T>('POST', p, o);
  }

  /** DELETE and parse the JSON answer. */
  delete<T = unknown>(p: string, query?: Record<string, QueryValue>): Promise<T> {
    return this.json<T>('DELETE', p, query ? { query } : {});
  }

  /** Request a newline-delimited JSON stream (events, pull progress, stats). */
  async *ndjson<T = unknown>(method: string, p: string, opts: RequestOptions = {}): AsyncGenerator<T> {
    const res = await this.request(method, p, opts);
    try {
      yield* readNdjson<T>(res);
    } finally {
      res.destroy();
    }
  }

  /** `/_ping` (HEAD, falling back to GET). Throws ConnectionError when nothing answers. */
  async ping(signal?: AbortSignal): Promise<PingResult> {
    const o: RequestOptions = { noVersion: true };
    if (signal) o.signal = signal;
    let res: http.IncomingMessage;
    try {
      res = await this.request('HEAD', '/_ping', o);
    } catch (err) {
      if (err instanceof ConnectionError) throw err;
      res = await this.request('GET', '/_ping', o);
    }
    res.resume();
    const h = (n: string): string | undefined => {
      const v = res.headers[n];
      return Array.isArray(v) ? v[0] : v;
    };
    return { apiVersion: h('api-version'), osType: h('ostype'), experimental: h('docker-experimental') === 'true' };
  }

  /** Ping and lower our API version to the daemon's when it is older (as the docker CLI does). */
  async negotiate(): Promise<PingResult> {
    const p = await this.ping();
    if (p.apiVersion && compareVersions(p.apiVersion, this.apiVersion) < 0) this.apiVersion = p.apiVersion;
    else if (!p.apiVersion) this.apiVersion = '1.24';
    return p;
  }

  /**
   * Hijack: POST with `Connection: Upgrade, Upgrade: tcp`. Resolves with the raw socket on 101.
   * A 200 answer (daemon without upgrade support) is returned as a read-only stream.
   */
  hijack(p: string, opts: RequestOptions = {}): Promise<HijackedStream> {
    const { headers, data } = this.prepareBody(opts);
    headers['Connection'] = 'Upgrade';
    headers['Upgrade'] = 'tcp';
    if (data === undefined) {
      headers['Content-Type'] = 'text/plain';
      headers['Content-Length'] = '0';
    }
    const ro = this.baseOptions('POST', this.path(p, opts.query, opts.noVersion), headers);
    if (opts.signal) ro.signal = opts.signal;
    return new Promise<HijackedStream>((resolve, reject) => {
      const req = http.request(ro);
      req.on('error', (err) => reject(this.wrapConnError(err)));
      req.on('upgrade', (res, socket, head) => {
        if (head.length) socket.unshift(head);
        const ct = res.headers['content-type'];
        resolve({ socket, contentType: ct, multiplexed: multiplexedFromContentType(ct) });
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          const ct = res.headers['content-type'];
          resolve({ socket: res as unknown as Duplex, contentType: ct, multiplexed: multiplexedFromContentType(ct) });
          return;
        }
        readBody(res).then(
          (body) => reject(new ApiError(status, errorMessageFromBody(status, body.toString('utf8')))),
          reject,
        );
      });
      req.end(data);
    });
  }

  /** Release pooled sockets. */
  close(): void {
    this.agent.destroy();
  }
}

/** multiplexed-stream → true, raw-stream → false, anything else → undefined (caller decides). */
export function multiplexedFromContentType(ct: string | undefined): boolean | undefined {
  if (!ct) return undefined;
  if (ct.includes('multiplexed-stream')) return true;
  if (ct.includes('raw-stream')) return false;
  return undefined;
}

/** Compare dotted versions numerically: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

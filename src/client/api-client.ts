/**
 * A small typed HTTP client for the Docker Engine API served by berthd, over a UNIX socket or TCP.
 * Every call goes to `/v<apiVersion>/<path>`; non-2xx responses become ApiError(status, message).
 * Whole-body requests (json(), get(), post(), delete(), ping()) go through raw-http.ts over
 * `node:net`; `node:http` is loaded only for streams and hijacks (issue 7: CLI start-up).
 */
import type * as http from 'node:http';
import type { Duplex, Readable } from 'node:stream';

import { ApiError, ConnectionError, errorMessageFromBody } from './api-error.js';
import { DEFAULT_HOST, parseHost, type DaemonAddress } from './host.js';
import { readNdjson } from './ndjson.js';
import { rawExchange } from './raw-http.js';

/** A whole answer: status, headers (lower-case names) and body. */
interface WholeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

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
  /**
   * Lazy first contact (issue 7: one round trip fewer per CLI command). Without it, callers
   * negotiate() before their first request. With it, the first whole-body request goes straight to
   * `/v<apiVersion>/…`: an older daemon's "client version … is too new. Maximum supported API version
   * is X" answer lowers the version to X and the request is made once more; streamed and hijacked
   * requests negotiate() first, as before.
   */
  lazy?: {
    /** Awaited once when the first request finds nothing listening (it may start a daemon); the request is then made once more. */
    onUnreachable?: () => Promise<void>;
  };
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
  private http: Promise<typeof http> | undefined;
  private agent: http.Agent | undefined;
  private closed = false;
  private readonly lazy: { onUnreachable?: (() => Promise<void>) | undefined } | undefined;
  /** Some answer came back from the daemon. */
  private contacted = false;

  constructor(opts: ApiClientOptions = {}) {
    this.host = opts.host ?? DEFAULT_HOST;
    this.address = parseHost(this.host);
    this.apiVersion = opts.apiVersion ?? CLIENT_API_VERSION;
    if (opts.lazy) this.lazy = { ...opts.lazy };
  }

  /** Lazy mode, before a streamed or hijacked request: negotiate (this may start the daemon). */
  private async contact(): Promise<void> {
    if (this.lazy && !this.contacted) await this.negotiate();
  }

  /** node:http and this client's agent, loaded on first use. */
  private httpModule(): Promise<typeof http> {
    this.http ??= import('node:http').then((m) => {
      this.agent = new m.Agent({ keepAlive: false });
      if (this.closed) this.agent.destroy();
      return m;
    });
    return this.http;
  }

  /** The URL path for an API path, with the version prefix. */
  path(p: string, query?: Record<string, QueryValue>, noVersion = false): string {
    const base = noVersion ? p : `/v${this.apiVersion}${p}`;
    return base + encodeQuery(query);
  }

  private baseOptions(method: string, path: string, headers: Record<string, string>): http.RequestOptions {
    const o: http.RequestOptions = { method, path, headers: { Host: 'berth', 'User-Agent': 'berth-cli', ...headers } };
    if (this.agent) o.agent = this.agent;
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
    await this.contact();
    const httpMod = await this.httpModule();
    const { headers, data, stream } = this.prepareBody(opts);
    const ro = this.baseOptions(method, this.path(p, opts.query, opts.noVersion), headers);
    if (opts.signal) ro.signal = opts.signal;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = httpMod.request(ro, resolve);
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

  /**
   * Send a request and read the whole answer. Without a streamed body or an abort signal it goes
   * over a plain socket (raw-http.ts), else through node:http. Errors as for request().
   */
  private async whole(method: string, p: string, opts: RequestOptions, retried = false): Promise<WholeResponse> {
    if (opts.signal || isReadable(opts.body)) {
      const res = await this.request(method, p, opts);
      return { status: res.statusCode ?? 0, headers: res.headers, body: await readBody(res) };
    }
    const { headers, data } = this.prepareBody(opts);
    let res: WholeResponse;
    try {
      res = await rawExchange(this.address, {
        method,
        path: this.path(p, opts.query, opts.noVersion),
        headers: { Host: 'berth', 'User-Agent': 'berth-cli', ...headers },
        body: data,
      });
    } catch (err) {
      const e = this.wrapConnError(err);
      const start = this.lazy?.onUnreachable;
      if (e instanceof ConnectionError && start && !this.contacted) {
        this.lazy.onUnreachable = undefined;
        await start();
        return this.whole(method, p, opts, retried);
      }
      throw e;
    }
    this.contacted = true;
    if (res.status >= 400 || res.status < 200) {
      const message = errorMessageFromBody(res.status, res.body.toString('utf8'));
      const max = /^client version \S+ is too new\. Maximum supported API version is (\d+\.\d+)/.exec(message)?.[1];
      if (res.status === 400 && this.lazy && !retried && !opts.noVersion && max && compareVersions(max, this.apiVersion) < 0) {
        this.apiVersion = max;
        return this.whole(method, p, opts, true);
      }
      throw new ApiError(res.status, message);
    }
    return res;
  }

  /** Request and parse a JSON response (undefined for empty bodies, e.g. 204/304). */
  async json<T = unknown>(method: string, p: string, opts: RequestOptions = {}): Promise<T> {
    const { body } = await this.whole(method, p, opts);
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
    let res: WholeResponse;
    try {
      res = await this.whole('HEAD', '/_ping', o);
    } catch (err) {
      if (err instanceof ConnectionError) throw err;
      res = await this.whole('GET', '/_ping', o);
    }
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
  async hijack(p: string, opts: RequestOptions = {}): Promise<HijackedStream> {
    await this.contact();
    const httpMod = await this.httpModule();
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
      const req = httpMod.request(ro);
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

  /** Release pooled sockets (and end open streams of node:http requests). */
  close(): void {
    this.closed = true;
    this.agent?.destroy();
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

/**
 * A client of one registry (OCI distribution spec / Docker Registry HTTP API v2): resolve a tag to
 * a manifest, fetch manifests and blobs, check and upload blobs, put manifests. It writes nothing
 * to disk: blob bodies are handed back as streams for the caller's ingester. Authentication
 * (bearer-token or basic) is negotiated on the first 401; bearer tokens are then asked for before
 * a request (one token request per scope at a time, shared by concurrent requests), reused until
 * their `expires_in` runs out, and asked again when the registry refuses one as invalid.
 */
import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';

import { EngineError, invalidArgument } from '../base/errors.js';
import { basicHeader, parseChallenge, requestBearerToken, type Challenge, type RegistryCredentials } from './auth.js';
import { registryError, type ErrorContext } from './errors.js';
import { unreachable } from './blob-get.js';

/** Accept header for manifests: Docker schema2 and OCI, single and index. */
export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/** Options of a {@link RegistryClient}. */
export interface RegistryClientOptions {
  credentials?: RegistryCredentials;
  /** Use plain HTTP (default: only for loopback hosts). */
  plainHttp?: boolean;
  /** A blob transfer that receives nothing for this long fails (default 60 000 ms). */
  idleTimeoutMs?: number;
  /** Injected fetch (tests). */
  fetchFn?: typeof fetch;
  userAgent?: string;
  /** Talk to this endpoint (`http[s]://host[:port]`, a mirror) instead of the domain's own. */
  endpoint?: string;
  /** Registries (`host[:port]`) to use plain HTTP with besides loopback (daemon `insecure-registries`). */
  insecureRegistries?: string[];
}

/** True when `domain` is listed as insecure (exact `host[:port]`, or the host when the entry has no port). */
export function isInsecureRegistry(domain: string, insecure: string[] | undefined): boolean {
  if (!insecure?.length) return false;
  const host = domain.replace(/:\d+$/, '');
  return insecure.some((e) => {
    const x = e.replace(/^https?:\/\//, '').replace(/\/+$/, '');
    return x === domain || x === host;
  });
}

/** A manifest (or index) as fetched: the exact bytes, their digest and media type. */
export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

/** Options shared by requests. */
export interface RequestOptions {
  signal?: AbortSignal;
}

/** Options of {@link RegistryClient.uploadBlob}. */
export interface UploadOptions extends RequestOptions {
  /** Try a cross-repository mount from this repository (same registry) first. */
  mountFrom?: string;
  /** Blobs larger than this go up in chunks of this size (PATCH + Content-Range); default: monolithic. */
  chunkSize?: number;
  /** Called with the bytes the registry has acknowledged so far (after each chunk, or at the end). */
  onChunk?: (bytes: number) => void;
}

/** True for hosts Docker talks to over plain HTTP without configuration (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(domain: string): boolean {
  const host = domain.startsWith('[') ? domain.slice(1, domain.indexOf(']')) : domain.replace(/:\d+$/, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
}

/** The API endpoint host for a registry domain (`docker.io` is served by registry-1.docker.io). */
export function endpointHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

/** A Transform that fails when no data flows for `ms` (a stalled transfer). */
class IdleWatchdog extends Transform {
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly ms: number, private readonly what: string) {
    super();
    this.arm();
  }
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.destroy(new EngineError('deadline-exceeded', `${this.what}: no data received for ${Math.round(this.ms / 1000)}s`, { code: 'REGISTRY_STALLED' })), this.ms);
    this.timer.unref?.();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.arm();
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    clearTimeout(this.timer);
    cb();
  }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(err);
  }
}

/** `ctx` marked when the registry refused a token for lacking rights (not a missing or expired one). */
function withScopeError(res: Response, ctx: ErrorContext): ErrorContext {
  const insufficientScope = res.status === 401 && parseChallenge(res.headers.get('www-authenticate'))?.params['error'] === 'insufficient_scope';
  return insufficientScope ? { ...ctx, insufficientScope } : ctx;
}

/** The distribution client for one registry domain. */
export class RegistryClient {
  /** `http://host:port` or `https://host`. */
  readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly creds: RegistryCredentials | undefined;
  private readonly idleMs: number;
  private readonly ua: string;
  private challenge: Challenge | undefined;
  /** Bearer tokens by scope string (space-separated scopes), with the time they stop being used. */
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  /** Token requests under way by scope, so concurrent requests share one. */
  private readonly pendingTokens = new Map<string, Promise<string>>();

  /** `domain` is a Reference's domain (`docker.io`, `127.0.0.1:5000`). */
  constructor(readonly domain: string, opts: RegistryClientOptions = {}) {
    const plain = opts.plainHttp ?? (isLoopbackHost(domain) || isInsecureRegistry(domain, opts.insecureRegistries));
    this.base = opts.endpoint ? opts.endpoint.replace(/\/+$/, '') : `${plain ? 'http' : 'https'}://${endpointHost(domain)}`;
    this.fetchFn = opts.fetchFn ?? fetch;
    this.creds = opts.credentials;
    this.idleMs = opts.idleTimeoutMs ?? 60_000;
    this.ua = opts.userAgent ?? 'berth/0.1';
  }

  /** The cached bearer token for a scope while it is within its lifetime. */
  private validToken(scope: string): string | undefined {
    const t = this.tokens.get(scope);
    return t && Date.now() < t.expiresAt ? t.token : undefined;
  }

  private authHeader(scope: string): string | undefined {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'bearer') {
      const t = this.validToken(scope);
      return t ? `Bearer ${t}` : undefined;
    }
    if (this.challenge.scheme === 'basic') return basicHeader(this.creds);
    return undefined;
  }

  /** Get a token for `scope` from the bearer challenge's realm; concurrent callers share one request. */
  private tokenFor(scope: string, signal: AbortSignal | undefined): Promise<string> {
    let p = this.pendingTokens.get(scope);
    if (p) return p;
    const ch = this.challenge!;
    p = requestBearerToken({
      challenge: ch,
      scopes: scope ? scope.split(' ') : [],
      fetchFn: this.fetchFn,
      ...(this.creds ? { credentials: this.creds } : {}),
      ...(signal ? { signal } : {}),
    }).then((t) => {
      // stop using a token a little before it runs out (10% of its life, at most 5 s)
      const life = t.expiresInS * 1000;
      this.tokens.set(scope, { token: t.token, expiresAt: Date.now() + life - Math.min(5000, life / 10) });
      return t.token;
    }).finally(() => this.pendingTokens.delete(scope));
    this.pendingTokens.set(scope, p);
    return p;
  }

  /**
   * Answer a 401 challenge: remember it and get a token for the scope. False when retrying cannot
   * help: no usable challenge, basic credentials already sent, or a bearer token refused for
   * `insufficient_scope` (a new one would grant no more).
   */
  private async authenticate(res: Response, scope: string, used: string | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    const ch = parseChallenge(res.headers.get('www-authenticate'));
    if (!ch) return false;
    this.challenge = ch;
    if (ch.scheme === 'bearer') {
      const current = this.validToken(scope);
      if (current && `Bearer ${current}` !== used) return true; // another request got a newer token meanwhile
      if (used && ch.params['error'] === 'insufficient_scope') return false;
      this.tokens.delete(scope);
      await this.tokenFor(scope, signal);
      return true;
    }
    if (ch.scheme !== 'basic' || !this.creds?.username) return false;
    return this.authHeader(scope) !== used;
  }

  /** A refused token request as Docker words it: `Get "<url>": unauthorized: …`. */
  private tokenError(err: unknown, method: string, url: string): unknown {
    if (err instanceof EngineError && err.code === 'REGISTRY_AUTH' && err.kind === 'unauthenticated') {
      const verb = method.charAt(0) + method.slice(1).toLowerCase();
      return new EngineError('unauthenticated', `${verb} "${url}": ${err.message}`, { cause: err, code: 'REGISTRY_AUTH', ...(err.details ? { details: err.details } : {}) });
    }
    return err;
  }

  /**
   * One request with auth: on a 401 the challenge is answered and the request retried once (bodies
   * that are streams are not retried: callers authenticate with a body-less request first).
   */
  async request(method: string, pathOrUrl: string, opts: { scope: string; headers?: Record<string, string>; body?: Buffer | Readable; signal?: AbortSignal; redirect?: 'follow' | 'manual' | 'error' }): Promise<Response> {
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : this.base + pathOrUrl;
    let used: string | undefined;
    const send = async (): Promise<Response> => {
      const headers: Record<string, string> = { 'user-agent': this.ua, ...(opts.headers ?? {}) };
      const auth = this.authHeader(opts.scope);
      used = auth;
      if (auth) headers['authorization'] = auth;
      // a registry that accepts the connection but never answers fails after the idle timeout
      // (the timer only covers the wait for the response head; bodies have their own watchdog).
      // Uploads of a streamed body are not timed: their answer comes after the whole body.
      const headTimer = new AbortController();
      const timer = opts.body instanceof Readable ? undefined : setTimeout(() => headTimer.abort(), this.idleMs);
      timer?.unref?.();
      const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: opts.redirect ?? 'follow' };
      init.signal = opts.signal ? AbortSignal.any([opts.signal, headTimer.signal]) : headTimer.signal;
      if (opts.body !== undefined) {
        init.body = opts.body instanceof Readable ? (opts.body as unknown as ReadableStream) : opts.body;
        if (opts.body instanceof Readable) init.duplex = 'half';
      }
      try {
        return await this.fetchFn(url, init);
      } catch (err) {
        if (headTimer.signal.aborted && !opts.signal?.aborted) {
          throw new EngineError('deadline-exceeded', `${method} ${url}: no response from the registry within ${Math.round(this.idleMs / 1000)}s`, { cause: err, code: 'REGISTRY_STALLED' });
        }
        if ((err as Error).name === 'AbortError' || opts.signal?.aborted) throw err;
        const cause = (err as { cause?: { message?: string; code?: string } }).cause;
        throw unreachable(url, { ...(cause?.code ? { code: cause.code } : {}), message: cause?.message ?? (err as Error).message }, err);
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      // a bearer registry: get the scope's token before the request rather than after a 401
      if (this.challenge?.scheme === 'bearer' && !this.validToken(opts.scope)) await this.tokenFor(opts.scope, opts.signal);
    } catch (err) {
      throw this.tokenError(err, method, url);
    }
    let res = await send();
    if (res.status === 401 && !(opts.body instanceof Readable)) {
      const changed = await this.authenticate(res, opts.scope, used, opts.signal).catch((err: unknown) => {
        throw this.tokenError(err, method, url);
      });
      if (changed) {
        await res.body?.cancel().catch(() => undefined);
        res = await send();
      }
    }
    return res;
  }

  private async fail(res: Response, ctx: ErrorContext): Promise<never> {
    const body = await res.text().catch(() => '');
    throw registryError(res.status, res.statusText, body, withScopeError(res, ctx));
  }

  /** Check the registry answers `/v2/` with these credentials (login). Throws unauthenticated. */
  async ping(opts: RequestOptions = {}): Promise<void> {
    const res = await this.request('GET', '/v2/', { scope: '', ...(opts.signal ? { signal: opts.signal } : {}) });
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 401 || res.status === 403) {
      throw new EngineError('unauthenticated', `login attempt to ${this.base}/v2/ failed with status: ${res.status} ${res.statusText || 'Unauthorized'}`, { code: 'REGISTRY_LOGIN' });
    }
    if (!res.ok) throw new EngineError('unavailable', `${this.base}/v2/ answered ${res.status} ${res.statusText}`, { code: 'REGISTRY_HTTP' });
  }

  /**
   * Get a manifest or index by tag or digest. The bytes are hashed; when asked by digest (or when
   * the registry sends Docker-Content-Digest for a tag) a mismatch is rejected.
   */
  async getManifest(repo: string, tagOrDigest: string, ctx: ErrorContext, opts: RequestOptions & { push?: boolean } = {}): Promise<FetchedManifest> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${tagOrDigest}`, {
      scope: `repository:${repo}:${opts.push ? 'pull,push' : 'pull'}`,
      headers: { accept: MANIFEST_ACCEPT },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (!res.ok) await this.fail(res, ctx);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > 4 << 20) throw invalidArgument(`manifest for ${ctx.ref ?? repo} is too large`);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const expected = tagOrDigest.startsWith('sha256:') ? tagOrDigest : res.headers.get('docker-content-digest') ?? undefined;
    if (expected && expected.startsWith('sha256:') && expected !== digest) {
      throw invalidArgument(`manifest verification failed for digest ${expected}: got ${digest}`, { code: 'DIGEST_MISMATCH' });
    }
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown };
      if (typeof j.mediaType === 'string') mediaType = j.mediaType;
      else if (!mediaType || mediaType === 'application/json') mediaType = Array.isArray(j.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
    } catch {
      throw invalidArgument(`manifest for ${ctx.ref ?? repo} is not JSON`);
    }
    return { bytes, digest, mediaType };
  }

  /**
   * Open a blob for reading. The stream is raw bytes (the caller verifies digest and size) and fails
   * with deadline-exceeded when it stalls for the idle timeout.
   */
  async openBlob(repo: string, digest: string, ctx: ErrorContext, opts: RequestOptions = {}): Promise<{ stream: Readable; size: number | undefined }> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull`, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (!res.ok || !res.body) await this.fail(res, ctx);
    const len = res.headers.get('content-length');
    const src = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    const dog = new IdleWatchdog(this.idleMs, `fetching blob ${digest}`);
    // the caller consumes `dog`; pipeline forwards errors and destroys both stages on failure
    pipeline(src, dog, () => undefined);
    return { stream: dog, size: len !== null ? Number(len) : undefined };
  }

  /**
   * Where and how to GET a blob without this client: the URL and the request headers (user agent,
   * and the authorization already negotiated for the repository's pull scope, if any). A 401 on
   * that request means the caller should go through {@link openBlob}, which answers the challenge.
   */
  blobTarget(repo: string, digest: string): { url: string; headers: Record<string, string>; idleTimeoutMs: number } {
    const headers: Record<string, string> = { 'user-agent': this.ua };
    const auth = this.authHeader(`repository:${repo}:pull`);
    if (auth) headers['authorization'] = auth;
    return { url: `${this.base}/v2/${repo}/blobs/${digest}`, headers, idleTimeoutMs: this.idleMs };
  }

  /** All tags of a repository (`GET /v2/<repo>/tags/list`, following `Link` pagination). */
  async listTags(repo: string, ctx: ErrorContext, opts: RequestOptions = {}): Promise<string[]> {
    const out: string[] = [];
    let next: string | undefined = `/v2/${repo}/tags/list?n=1000`;
    for (let page = 0; next && page < 1000; page++) {
      const res = await this.request('GET', next, { scope: `repository:${repo}:pull`, ...(opts.signal ? { signal: opts.signal } : {}) });
      if (!res.ok) await this.fail(res, ctx);
      const j = (await res.json().catch(() => ({}))) as { tags?: unknown };
      if (Array.isArray(j.tags)) for (const t of j.tags) if (typeof t === 'string') out.push(t);
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '');
      next = link ? new URL(link[1]!, this.base).toString() : undefined;
    }
    return out;
  }

  /** HEAD a blob: true when the registry has it in this repository. */
  async hasBlob(repo: string, digest: string, opts: RequestOptions = {}): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull,push`, ...(opts.signal ? { signal: opts.signal } : {}) });
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 404) return false;
    if (res.ok) return true;
    throw registryError(res.status, res.statusText, '', withScopeError(res, { repo, op: 'push' }));
  }

  /**
   * Upload a blob: POST to start the upload (as a cross-repository mount from `mountFrom` when
   * given: `?mount=<digest>&from=<repo>`; a registry that cannot mount answers 202 and the upload
   * goes on in that session), then either one PUT with the bytes and `?digest=` (monolithic) or,
   * when the blob is larger than `chunkSize`, PATCHes of at most `chunkSize` bytes with
   * `Content-Range` (each answer gives the next Location) and a closing body-less PUT `?digest=`.
   * `body(start, end)` opens the byte range `[start, end)` of the blob. Returns `mounted` when the
   * registry mounted the blob from the other repository.
   */
  async uploadBlob(repo: string, digest: string, size: number, body: (start: number, end: number) => Readable, ctx: ErrorContext, opts: UploadOptions = {}): Promise<'mounted' | 'uploaded'> {
    const scope = `repository:${repo}:pull,push`;
    const sig = opts.signal ? { signal: opts.signal } : {};
    const q = opts.mountFrom ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(opts.mountFrom)}` : '';
    // a mount asks one token for both repositories, as Docker does
    let start = await this.request('POST', `/v2/${repo}/blobs/uploads/${q}`, {
      scope: opts.mountFrom ? `${scope} repository:${opts.mountFrom}:pull` : scope,
      headers: { 'content-length': '0' },
      ...sig,
    });
    await start.body?.cancel().catch(() => undefined);
    if (start.status === 201 && opts.mountFrom) return 'mounted';
    if (opts.mountFrom && (start.status === 401 || start.status === 403)) {
      // the token does not allow reading the source repository: upload instead, as Docker does
      start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { scope, headers: { 'content-length': '0' }, ...sig });
      await start.body?.cancel().catch(() => undefined);
    }
    if (start.status !== 202) await this.fail(start, { ...ctx, op: 'push' });
    let loc = start.headers.get('location');
    if (!loc) throw new EngineError('unavailable', 'registry started an upload without a Location', { code: 'REGISTRY_PROTOCOL' });
    const chunk = opts.chunkSize && opts.chunkSize > 0 ? opts.chunkSize : Infinity;
    if (size > chunk) {
      for (let off = 0; off < size; ) {
        const end = Math.min(size, off + chunk);
        const patch = await this.request('PATCH', new URL(loc, this.base).toString(), {
          scope,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - off), 'content-range': `${off}-${end - 1}` },
          body: body(off, end),
          ...sig,
        });
        await patch.body?.cancel().catch(() => undefined);
        if (patch.status !== 202) await this.fail(patch, { ...ctx, op: 'push' });
        const next = patch.headers.get('location');
        if (!next) throw new EngineError('unavailable', 'registry accepted a chunk without a Location', { code: 'REGISTRY_PROTOCOL' });
        loc = next;
        off = end;
        opts.onChunk?.(off);
      }
      const url = new URL(loc, this.base);
      url.searchParams.set('digest', digest);
      const put = await this.request('PUT', url.toString(), { scope, headers: { 'content-length': '0' }, body: Buffer.alloc(0), ...sig });
      await put.body?.cancel().catch(() => undefined);
      if (put.status !== 201) await this.fail(put, { ...ctx, op: 'push' });
      return 'uploaded';
    }
    const url = new URL(loc, this.base);
    url.searchParams.set('digest', digest);
    const put = await this.request('PUT', url.toString(), {
      scope,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: body(0, size),
      ...sig,
    });
    if (put.status !== 201) await this.fail(put, { ...ctx, op: 'push' });
    await put.body?.cancel().catch(() => undefined);
    opts.onChunk?.(size);
    return 'uploaded';
  }

  /** PUT a manifest by tag (or digest). Returns the digest the registry reports (or computes). */
  async putManifest(repo: string, tagOrDigest: string, bytes: Buffer, mediaType: string, ctx: ErrorContext, opts: RequestOptions = {}): Promise<string> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${tagOrDigest}`, {
      scope: `repository:${repo}:pull,push`,
      headers: { 'content-type': mediaType },
      body: bytes,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (res.status !== 201 && res.status !== 200) await this.fail(res, { ...ctx, op: 'push' });
    await res.body?.cancel().catch(() => undefined);
    return res.headers.get('docker-content-digest') ?? `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  }
}

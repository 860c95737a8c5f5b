/**
 * Registry queries that store nothing: `GET /distribution/{name}/json` (the manifest descriptor
 * and platforms of a remote reference) and `GET /images/search` (a registry's v1 search API).
 */
import { EngineError, invalidArgument, notImplemented, unavailable } from '../base/errors.js';
import { checkFilterKeys } from '../base/filters.js';
import type { Filters, Json } from '../engine/services.js';
import { familiarName, familiarString, parseNormalizedNamed } from '../oci/index.js';
import { RegistryClient } from '../registry/index.js';
import { credentialsFromAuth } from './pull.js';

/** Options shared by the registry queries. */
export interface RegistryQueryOptions {
  /** Docker AuthConfig (decoded X-Registry-Auth). */
  auth?: Json;
  insecureRegistries?: string[];
  signal?: AbortSignal;
  /** For tests: the fetch to use. */
  fetchFn?: typeof fetch;
}

const MAX_CONFIG = 4 << 20;

/** A registry client for `domain` with the request's credentials and the daemon's insecure registries. */
export function clientFor(domain: string, opts: Omit<RegistryQueryOptions, 'signal'>, endpoint?: string): RegistryClient {
  const creds = credentialsFromAuth(opts.auth);
  return new RegistryClient(domain, {
    ...(creds ? { credentials: creds } : {}),
    ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
    ...(opts.fetchFn ? { fetchFn: opts.fetchFn } : {}),
    ...(endpoint ? { endpoint } : {}),
  });
}

function platformOf(p: Record<string, unknown>): Json {
  const out: Json = { architecture: String(p['architecture'] ?? ''), os: String(p['os'] ?? '') };
  if (typeof p['variant'] === 'string' && p['variant']) out['variant'] = p['variant'];
  if (typeof p['os.version'] === 'string' && p['os.version']) out['os.version'] = p['os.version'];
  if (Array.isArray(p['os.features']) && p['os.features'].length) out['os.features'] = p['os.features'];
  return out;
}

/**
 * `GET /distribution/{name}/json`: resolve a reference in its registry and return Docker's
 * DistributionInspect `{Descriptor{mediaType,digest,size}, Platforms[]}`. For an index the
 * platforms are its entries'; for a single manifest they come from its config blob (as moby does).
 */
export async function inspectDistribution(refStr: string, opts: RegistryQueryOptions = {}): Promise<Json> {
  const ref = parseNormalizedNamed(refStr);
  const ctx = { repo: familiarName(ref), ref: familiarString(ref) };
  const client = clientFor(ref.domain, opts);
  const sig = opts.signal ? { signal: opts.signal } : {};
  const m = await client.getManifest(ref.path, ref.digest ?? ref.tag ?? 'latest', ctx, sig);
  const doc = JSON.parse(m.bytes.toString('utf8')) as { manifests?: Array<{ platform?: Record<string, unknown> }>; config?: { digest?: string } };
  const platforms: Json[] = [];
  if (Array.isArray(doc.manifests)) {
    for (const e of doc.manifests) if (e.platform) platforms.push(platformOf(e.platform));
  } else if (typeof doc.config?.digest === 'string') {
    const { stream } = await client.openBlob(ref.path, doc.config.digest, ctx, sig);
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > MAX_CONFIG) {
        stream.destroy();
        throw invalidArgument(`image config of ${ctx.ref} is too large`);
      }
      parts.push(chunk);
    }
    let cfg: Record<string, unknown>;
    try {
      cfg = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
    } catch {
      throw invalidArgument(`image config of ${ctx.ref} is not JSON`);
    }
    platforms.push(platformOf(cfg));
  }
  return { Descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length }, Platforms: platforms };
}

/** Options of searchRegistry. */
export interface SearchOptions extends RegistryQueryOptions {
  /** 1–100, default 25. */
  limit?: number;
  /** `is-official`, `is-automated`, `stars`. */
  filters?: Filters;
}

/** Split a search term into the index it goes to and the query (moby registry.ParseSearchIndexInfo). */
export function splitSearchTerm(term: string): { index: string; query: string } {
  const i = term.indexOf('/');
  if (i > 0) {
    const first = term.slice(0, i);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      const index = ['index.docker.io', 'registry-1.docker.io', 'docker.io'].includes(first) ? 'docker.io' : first;
      return { index, query: term.slice(i + 1) };
    }
  }
  return { index: 'docker.io', query: term };
}

function boolFilter(f: Filters, key: string): boolean | undefined {
  const v = f[key];
  if (!v || v.length === 0) return undefined;
  const last = v[v.length - 1]!.toLowerCase();
  if (last === 'true' || last === '1') return true;
  if (last === 'false' || last === '0') return false;
  throw invalidArgument(`invalid filter '${key}=${v[v.length - 1]}'`);
}

/**
 * `GET /images/search`: query the index's `/v1/search` (Docker Hub's is index.docker.io). An
 * unreachable index is `unavailable` with the transport error (what dockerd says offline); a
 * registry without the v1 search API (docker-registry / distribution v2) is `not-implemented`.
 */
export async function searchRegistry(term: string, opts: SearchOptions = {}): Promise<Json[]> {
  if (term.trim() === '') throw invalidArgument('term is required');
  const limit = opts.limit ?? 25;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidArgument(`limit ${limit} is outside the range of [1, 100]`);
  const f = opts.filters ?? {};
  checkFilterKeys(f, ['is-official', 'is-automated', 'stars']);
  const official = boolFilter(f, 'is-official');
  const automated = boolFilter(f, 'is-automated');
  let stars = 0;
  for (const s of f['stars'] ?? []) {
    if (!/^\d+$/.test(s)) throw invalidArgument(`invalid filter 'stars=${s}'`);
    stars = Math.max(stars, Number(s));
  }
  const { index, query } = splitSearchTerm(term);
  const client = clientFor(index, opts, index === 'docker.io' ? 'https://index.docker.io' : undefined);
  const path = `/v1/search?q=${encodeURIComponent(query)}&n=${limit}`;
  let res: Response;
  try {
    res = await client.request('GET', path, { scope: '', ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw unavailable(`Get "${client.base}${path}": ${(e as Error).message}`, { cause: e });
  }
  if (res.status === 404 || res.status === 405) {
    await res.body?.cancel().catch(() => undefined);
    throw notImplemented(`${index} does not support search: GET ${client.base}/v1/search answered ${res.status}; registries that implement only the Distribution API v2 (such as docker-registry) have no search API`);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw unavailable(`Unexpected status code ${res.status} from ${client.base}/v1/search`);
  }
  let body: { results?: Array<Record<string, unknown>> };
  try {
    body = (await res.json()) as typeof body;
  } catch {
    throw unavailable(`${client.base}/v1/search answered something that is not JSON`);
  }
  const out: Json[] = [];
  for (const r of body.results ?? []) {
    const item = {
      name: String(r['name'] ?? ''),
      description: String(r['description'] ?? ''),
      star_count: Number(r['star_count'] ?? 0),
      is_official: r['is_official'] === true,
      is_automated: r['is_automated'] === true,
    };
    if (official !== undefined && item.is_official !== official) continue;
    if (automated !== undefined && item.is_automated !== automated) continue;
    if (item.star_count < stars) continue;
    out.push(item);
    if (out.length >= limit) break;
  }
  return out;
}

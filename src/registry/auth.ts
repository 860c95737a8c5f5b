/**
 * Registry authentication: `WWW-Authenticate` challenge parsing, the bearer-token flow
 * (distribution token spec: GET realm?service=&scope= with optional basic credentials) and basic auth.
 */
import { EngineError } from '../base/errors.js';

/** Credentials for one registry (Docker's AuthConfig fields, lower-cased as the API sends them). */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** An OAuth refresh token (identitytoken in Docker's AuthConfig). */
  identitytoken?: string;
  /** A bearer token to use as is. */
  registrytoken?: string;
}

/** A parsed authentication challenge. */
export interface Challenge {
  /** Lower-case scheme: `bearer` or `basic`. */
  scheme: string;
  params: Record<string, string>;
}

/** Parse a `WWW-Authenticate` header (one challenge; extra ones are ignored). */
export function parseChallenge(header: string | null | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: m[1]!.toLowerCase(), params };
}

/** `Basic base64(user:pass)`, or undefined without a username. */
export function basicHeader(c: RegistryCredentials | undefined): string | undefined {
  if (!c?.username) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
}

/** Options of {@link fetchBearerToken}. */
export interface TokenOptions {
  challenge: Challenge;
  /** Scopes like `repository:library/busybox:pull`. */
  scopes: string[];
  credentials?: RegistryCredentials;
  fetchFn?: typeof fetch;
  signal?: AbortSignal;
}

/** Get a bearer token from the challenge's realm. Throws unauthenticated on 401/403. */
export async function fetchBearerToken(opts: TokenOptions): Promise<string> {
  if (opts.credentials?.registrytoken) return opts.credentials.registrytoken;
  const realm = opts.challenge.params['realm'];
  if (!realm) throw new EngineError('unauthenticated', 'bearer challenge without a realm', { code: 'REGISTRY_AUTH' });
  const url = new URL(realm);
  if (opts.challenge.params['service']) url.searchParams.set('service', opts.challenge.params['service']);
  for (const s of opts.scopes) url.searchParams.append('scope', s);
  const headers: Record<string, string> = {};
  const basic = basicHeader(opts.credentials);
  if (basic) headers['authorization'] = basic;
  const f = opts.fetchFn ?? fetch;
  const res = await f(url, { headers, ...(opts.signal ? { signal: opts.signal } : {}) });
  const body = await res.text();
  if (!res.ok) {
    throw new EngineError(res.status === 401 || res.status === 403 ? 'unauthenticated' : 'unavailable', `unable to get an authentication token from ${url.origin}: ${res.status} ${res.statusText}`.trim(), { code: 'REGISTRY_AUTH' });
  }
  let j: { token?: string; access_token?: string };
  try {
    j = JSON.parse(body) as typeof j;
  } catch {
    throw new EngineError('unavailable', `invalid token response from ${url.origin}`, { code: 'REGISTRY_AUTH' });
  }
  const token = j.token ?? j.access_token;
  if (!token) throw new EngineError('unavailable', `token response from ${url.origin} has no token`, { code: 'REGISTRY_AUTH' });
  return token;
}

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

/** Options of {@link requestBearerToken}. */
export interface TokenOptions {
  challenge: Challenge;
  /** Scopes like `repository:library/busybox:pull`. */
  scopes: string[];
  credentials?: RegistryCredentials;
  fetchFn?: typeof fetch;
  signal?: AbortSignal;
}

/** A bearer token and how long it may be used. */
export interface BearerToken {
  token: string;
  /** Lifetime in seconds from the answer (`expires_in`, at least 60 as Docker assumes; 60 when absent). */
  expiresInS: number;
}

/** Docker's floor on a token's lifetime (the token spec says tokens live at least 60 s). */
const MIN_TOKEN_LIFETIME_S = 60;

/**
 * The message of a refused token request: the token server's `details` (Docker Hub's form) or the
 * distribution error body, as Docker prints it (`unauthorized: incorrect username or password`).
 */
function tokenErrorText(status: number, statusText: string, body: string): string {
  try {
    const j = JSON.parse(body) as { details?: unknown; errors?: Array<{ code?: unknown; message?: unknown }> };
    if (typeof j.details === 'string' && j.details) return `unauthorized: ${j.details}`;
    const e = Array.isArray(j.errors) ? j.errors[0] : undefined;
    if (e && typeof e.code === 'string') return `${e.code.toLowerCase().replace(/_/g, ' ')}: ${typeof e.message === 'string' ? e.message : e.code.toLowerCase()}`;
  } catch {
    /* not JSON */
  }
  return status === 401 ? 'unauthorized: authentication required' : `${status} ${statusText}`.trim();
}

/** Get a bearer token and its lifetime from the challenge's realm. Throws unauthenticated on 401/403. */
export async function requestBearerToken(opts: TokenOptions): Promise<BearerToken> {
  if (opts.credentials?.registrytoken) return { token: opts.credentials.registrytoken, expiresInS: Infinity };
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
    if (res.status === 401 || res.status === 403) {
      throw new EngineError('unauthenticated', tokenErrorText(res.status, res.statusText, body), { code: 'REGISTRY_AUTH', details: { status: res.status, realm: url.origin + url.pathname } });
    }
    throw new EngineError('unavailable', `unable to get an authentication token from ${url.origin}: ${res.status} ${res.statusText}`.trim(), { code: 'REGISTRY_AUTH' });
  }
  let j: { token?: string; access_token?: string; expires_in?: unknown };
  try {
    j = JSON.parse(body) as typeof j;
  } catch {
    throw new EngineError('unavailable', `invalid token response from ${url.origin}`, { code: 'REGISTRY_AUTH' });
  }
  const token = j.token ?? j.access_token;
  if (!token) throw new EngineError('unavailable', `token response from ${url.origin} has no token`, { code: 'REGISTRY_AUTH' });
  const expiresIn = typeof j.expires_in === 'number' && Number.isFinite(j.expires_in) ? j.expires_in : 0;
  return { token, expiresInS: Math.max(MIN_TOKEN_LIFETIME_S, expiresIn) };
}

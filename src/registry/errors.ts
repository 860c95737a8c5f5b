/**
 * Registry error decoding: the distribution spec's `{"errors":[{code,message,detail}]}` body plus
 * the HTTP status become an EngineError of the right kind, worded the way Docker words it
 * (moby distribution/errors.go), because clients match on those strings.
 */
import { EngineError, type ErrorKind } from '../base/errors.js';

/** One entry of a registry error body. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/** What was being done when the registry answered with an error (for Docker's wording). */
export interface ErrorContext {
  /** Familiar repository name, e.g. `busybox` or `127.0.0.1:5000/app`. */
  repo: string;
  /** Familiar reference string when a manifest was asked for (`busybox:latest`). */
  ref?: string;
  /** `pull` (default) or `push`. */
  op?: 'pull' | 'push';
  /** The registry refused a bearer token for lacking rights (`error="insufficient_scope"` in its challenge). */
  insufficientScope?: boolean;
}

/** Parse the `errors` array of a registry error body (empty when the body is not one). */
export function parseRegistryErrors(body: string): RegistryErrorEntry[] {
  try {
    const j = JSON.parse(body) as { errors?: unknown };
    if (Array.isArray(j.errors)) {
      return j.errors.filter((e): e is RegistryErrorEntry => !!e && typeof (e as RegistryErrorEntry).code === 'string');
    }
  } catch {
    /* not JSON */
  }
  return [];
}

/** Go errcode formatting: `manifest unknown: manifest unknown`. */
function entryText(e: RegistryErrorEntry): string {
  return `${e.code.toLowerCase().replace(/_/g, ' ')}: ${e.message ?? e.code.toLowerCase().replace(/_/g, ' ')}`;
}

/** Map an HTTP status to an error kind when the body says nothing better. */
function kindForStatus(status: number): ErrorKind {
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'permission-denied';
  if (status === 404) return 'not-found';
  if (status === 400) return 'invalid-argument';
  if (status === 429) return 'resource-exhausted';
  if (status >= 500) return 'unavailable';
  return 'internal';
}

/** Turn a failed registry response into an EngineError (code REGISTRY_<CODE> when the body had one). */
export function registryError(status: number, statusText: string, body: string, ctx: ErrorContext): EngineError {
  const errs = parseRegistryErrors(body);
  const first = errs[0];
  const text = errs.length ? errs.map(entryText).join(', ') : `${status} ${statusText}`.trim();
  const op = ctx.op ?? 'pull';
  let kind = kindForStatus(status);
  let message = text;
  const code = first?.code;
  if (status === 401 && op === 'push' && ctx.insufficientScope && (!code || code === 'UNAUTHORIZED')) {
    // a token without push rights: Docker Hub answers DENIED, distribution UNAUTHORIZED + insufficient_scope;
    // Docker 20.10 prints the DENIED line for both
    kind = 'permission-denied';
    message = 'denied: requested access to the resource is denied';
  } else if (code === 'DENIED' || (status === 401 && op === 'pull' && (!code || code === 'UNAUTHORIZED'))) {
    kind = status === 401 ? 'unauthenticated' : 'not-found';
    message = op === 'pull'
      ? `pull access denied for ${ctx.repo}, repository does not exist or may require 'docker login': ${errs.length && !ctx.insufficientScope ? text : 'denied: requested access to the resource is denied'}`
      : `denied: requested access to the resource is denied`;
    if (code === 'DENIED' && status !== 401) kind = op === 'pull' ? 'not-found' : 'permission-denied';
  } else if (code === 'MANIFEST_UNKNOWN') {
    kind = 'not-found';
    message = `manifest for ${ctx.ref ?? ctx.repo} not found: ${text}`;
  } else if (code === 'NAME_UNKNOWN') {
    kind = 'not-found';
    message = `repository ${ctx.repo} not found: ${text}`;
  } else if (code === 'BLOB_UNKNOWN') {
    kind = 'not-found';
  } else if (code === 'UNAUTHORIZED') {
    kind = 'unauthenticated';
  } else if (code === 'DIGEST_INVALID' || code === 'MANIFEST_INVALID' || code === 'SIZE_INVALID' || code === 'NAME_INVALID' || code === 'TAG_INVALID') {
    kind = 'invalid-argument';
  }
  return new EngineError(kind, message, { code: code ? `REGISTRY_${code}` : `REGISTRY_HTTP_${status}`, details: { status, errors: errs } });
}

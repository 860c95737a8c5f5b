/**
 * API version rules (compat §1, moby VersionMiddleware): optional `/vX.Y` prefix, max 1.51, min 1.24.
 */
import { invalidArgument } from '../base/errors.js';

/** Newest API version served (and the one used when a request has no prefix). */
export const MAX_API_VERSION = '1.51';
/** Oldest API version accepted. */
export const MIN_API_VERSION = '1.24';

/** Compare dotted versions numerically: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((s) => Number.parseInt(s, 10) || 0);
  const pb = b.split('.').map((s) => Number.parseInt(s, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** True when version v is at least min. */
export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/** A path with its API version split off. */
export interface VersionedPath {
  path: string;
  version: string;
}

/**
 * Split `/v1.50/containers/json` into version and path; no prefix means the max version.
 * Throws invalid-argument with Docker's wording when the version is out of range.
 */
export function splitVersion(rawPath: string): VersionedPath {
  const m = /^\/v([0-9][0-9.]*)(\/.*)?$/.exec(rawPath);
  if (!m) return { path: rawPath, version: MAX_API_VERSION };
  const version = m[1]!;
  if (compareVersions(version, MAX_API_VERSION) > 0) {
    throw invalidArgument(`client version ${version} is too new. Maximum supported API version is ${MAX_API_VERSION}`);
  }
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw invalidArgument(
      `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  return { path: m[2] ?? '/', version };
}

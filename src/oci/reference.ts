/**
 * Image references with Docker's normalisation rules (distribution/reference): `busybox` is
 * `docker.io/library/busybox`, a first component with a `.` or `:` or equal to `localhost` is a
 * registry host, `index.docker.io` is `docker.io`. Familiar form strips `docker.io/library/`.
 */
import { invalidArgument } from '../base/errors.js';

/** The default registry domain. */
export const DEFAULT_DOMAIN = 'docker.io';
/** The tag used when none is given. */
export const DEFAULT_TAG = 'latest';

/** A parsed, normalised reference. `tag` and `digest` are both optional (and may both be set). */
export interface Reference {
  /** Registry host (with port), e.g. `docker.io`, `localhost:5000`. */
  domain: string;
  /** Repository path, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HEX64 = /^[a-f0-9]{64}$/;
const NAME_TOTAL_MAX = 255;

function bad(ref: string, why = 'invalid reference format'): never {
  throw invalidArgument(why === 'invalid reference format' ? why : `invalid reference format: ${why}`, { details: { ref } });
}

function validDomain(d: string): boolean {
  // host[:port], or a bracketed IPv6 literal with optional port
  if (/^\[[0-9a-fA-F:.]+\](?::\d+)?$/.test(d)) return true;
  const m = /^([^:]+)(?::(\d+))?$/.exec(d);
  if (!m) return false;
  return m[1]!.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/** Split a name into domain and remainder, the way Docker's splitDockerDomain does. */
function splitDomain(name: string): { domain: string; path: string } {
  const i = name.indexOf('/');
  let domain: string;
  let path: string;
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = name;
  } else {
    domain = first;
    path = name.slice(i + 1);
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  return { domain, path };
}

/**
 * Parse and normalise a reference string. Throws invalid-argument ("invalid reference format…").
 * No default tag is added: see {@link withDefaultTag}.
 */
export function parseReference(ref: string): Reference {
  if (ref.length === 0) bad(ref);
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) bad(ref);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) bad(ref);
  }
  if (rest.length === 0) bad(ref);
  const { domain, path } = splitDomain(rest);
  if (!validDomain(domain)) bad(ref);
  if (path.toLowerCase() !== path) bad(ref, `repository name (${path}) must be lowercase`);
  if (!path.split('/').every((c) => PATH_COMPONENT.test(c))) bad(ref);
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) bad(ref, 'repository name must not be more than 255 characters');
  const out: Reference = { domain, path };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** True when the string parses as a reference. */
export function isValidReference(ref: string): boolean {
  try {
    parseReference(ref);
    return true;
  } catch {
    return false;
  }
}

/** The reference with tag `latest` when it has neither tag nor digest. */
export function withDefaultTag(r: Reference): Reference {
  if (r.tag === undefined && r.digest === undefined) return { ...r, tag: DEFAULT_TAG };
  return r;
}

/** Parse, then add the default tag: what `docker pull busybox` means. */
export function parseNormalizedNamed(ref: string): Reference {
  return withDefaultTag(parseReference(ref));
}

/** Full repository name: `docker.io/library/busybox`. */
export function repositoryName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** Full string form: `docker.io/library/busybox:latest`, `…@sha256:…`. */
export function referenceString(r: Reference): string {
  return repositoryName(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** Familiar repository name: `busybox`, `user/app`, `localhost:5000/foo`. */
export function familiarName(r: Reference): string {
  if (r.domain === DEFAULT_DOMAIN) {
    return r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice(8) : r.path;
  }
  return repositoryName(r);
}

/** Familiar string form for display: `busybox:latest`, `localhost:5000/foo:1`, `busybox@sha256:…`. */
export function familiarString(r: Reference): string {
  return familiarName(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** Familiar form of any full or short reference string (unparseable input is returned unchanged). */
export function familiarize(ref: string): string {
  try {
    return familiarString(parseReference(ref));
  } catch {
    return ref;
  }
}

/** True for a bare 64-hex string, which Docker refuses as a repository name. */
export function isFullHexId(s: string): boolean {
  return HEX64.test(s);
}

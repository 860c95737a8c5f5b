import { createHash } from 'node:crypto';

/** A "sha256:<64 hex>" content digest. */
export type Digest = string & { readonly __digest: unique symbol };

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function asDigest(s: string): Digest {
  if (!DIGEST_RE.test(s)) throw new Error(`invalid digest: ${s}`);
  return s as Digest;
}

/** Digest of bytes held in memory. */
export function digestOf(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** The 64-hex part of a digest. */
export function hexOf(d: string): string {
  return d.startsWith('sha256:') ? d.slice(7) : d;
}

/** Test helpers: build tars in memory and list them. Used by tests only. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';

import { readTar, type TarHeader } from './tar-read.js';

/**
 * Run `fn` with a fresh temporary directory (named `<prefix>…`, in the system's temp dir unless the
 * prefix is an absolute path), removed afterwards.
 */
export async function withTmp(fn: (dir: string) => Promise<void>, prefix = 'berth-snap-'): Promise<void> {
  const dir = await mkdtemp(prefix.startsWith('/') ? prefix : join(tmpdir(), prefix));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One entry to put in a test tar. */
export interface TestEntry extends tarStream.Headers {
  content?: string | Buffer;
  pax?: Record<string, string>;
}

/** Build a tar in memory. */
export async function makeTar(entries: TestEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const { content, ...h } of entries) {
    const header = { mtime: new Date(1_600_000_000_000), mode: h.type === 'directory' ? 0o755 : 0o644, ...h };
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, content ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Headers (and small contents) of a tar. */
export async function listTar(src: Readable | Buffer): Promise<Array<TarHeader & { content: string }>> {
  const out: Array<TarHeader & { content: string }> = [];
  await readTar(src instanceof Readable ? src : Readable.from([src]), async (h, body) => {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    out.push({ ...h, content: Buffer.concat(parts).toString() });
  });
  return out;
}

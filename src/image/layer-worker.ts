/**
 * Worker thread entry of the one-pass layer pull (the pool in layer-job.ts sends it jobs):
 * GET the blob over node:http → idle watchdog → sha256 + size verification of the compressed
 * bytes → write them to the content store's private ingest file (batched `writev`, fsync at the
 * end) and pass them on → gunzip/zstd → sha256 DiffID → tar extraction into the layer's temp dir
 * (applyLayer: the same confined EntryWriter as every other unpack). Committing (renaming the blob
 * and the layer into place) stays with the main thread, which decides only after this worker
 * reported success. The pool spreads a pull's layers over one worker per core, so they use every
 * core and the daemon's event loop only relays progress.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fdatasync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync, writevSync } from 'node:fs';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { parentPort } from 'node:worker_threads';

import { EngineError, invalidArgument } from '../base/errors.js';
import { getBlobResponse, type BlobGetResult } from '../registry/index.js';
import { applyLayer } from '../snapshot/index.js';
import type { LayerJob, LayerJobMessage, LayerJobResult, LayerWorkerRequest, SerializedError } from './layer-job.js';

/** Bytes gathered before one `writev` of the blob file. */
const WRITE_BATCH = 1 << 20;
/** Bytes written between background `fdatasync`s of the blob file. */
const SYNC_EVERY = 8 << 20;

/**
 * The whole transfer side in one stage (one hop per chunk instead of four): fails when no data
 * came for the idle timeout; counts and hashes the bytes and fails on more than the expected size,
 * and in flush on fewer or on a digest mismatch (DigestVerifier's checks and wording); posts
 * progress at most every 100 ms; writes the bytes to the blob's ingest file (batched `writev`,
 * fsync at the end); passes every chunk on unchanged to the unpacker.
 */
class BlobTap extends Transform {
  private readonly hash = createHash('sha256');
  private parts: Buffer[] = [];
  private batched = 0;
  private lastData = Date.now();
  private lastPost = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  /** Bytes seen so far. */
  count = 0;
  /** The digest, once the stream ended. */
  digest: string | undefined;

  /**
   * `replay`: the first bytes are the kept prefix of an interrupted download, read back from the
   * file itself: hashed, counted and passed on, but not written again.
   */
  constructor(private readonly fd: number, private readonly job: LayerJob, private readonly post: (n: number) => void, private replay = 0) {
    super({ highWaterMark: 1 << 20 });
    this.arm(job.idleTimeoutMs);
  }

  /** One timer, re-armed only when it fires (not per chunk). */
  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const quiet = Date.now() - this.lastData;
      if (quiet >= this.job.idleTimeoutMs) {
        this.destroy(new EngineError('deadline-exceeded', `fetching blob ${this.job.digest}: no data received for ${Math.round(this.job.idleTimeoutMs / 1000)}s`, { code: 'REGISTRY_STALLED' }));
      } else this.arm(this.job.idleTimeoutMs - quiet);
    }, ms);
    this.timer.unref?.();
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const now = Date.now();
    this.lastData = now;
    this.count += chunk.length;
    if (this.count > this.job.size) {
      cb(invalidArgument(`size mismatch: got more than the expected ${this.job.size} bytes`));
      return;
    }
    this.hash.update(chunk);
    if (now - this.lastPost >= 100) {
      this.lastPost = now;
      this.post(this.count);
    }
    let fresh: Buffer | undefined = chunk;
    if (this.replay > 0) {
      const skip = Math.min(this.replay, chunk.length);
      this.replay -= skip;
      fresh = skip === chunk.length ? undefined : chunk.subarray(skip);
    }
    // without a blob file (the layer keeps a recipe) the bytes are only counted, hashed, passed on
    if (fresh && this.fd >= 0) {
      this.parts.push(fresh);
      this.batched += fresh.length;
    }
    try {
      if (this.batched >= WRITE_BATCH) this.writeParts();
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    clearTimeout(this.timer);
    this.digest = `sha256:${this.hash.digest('hex')}`;
    if (this.count !== this.job.size) {
      cb(invalidArgument(`size mismatch: expected ${this.job.size} bytes, got ${this.count}`));
      return;
    }
    if (this.digest !== this.job.digest) {
      cb(invalidArgument(`digest mismatch: expected ${this.job.digest}, got ${this.digest}`));
      return;
    }
    // the last update always goes out, so a finished transfer shows its full size
    if (this.count > 0) this.post(this.count);
    try {
      this.writeParts();
    } catch (err) {
      cb(err as Error);
      return;
    }
    if (this.fd < 0) {
      cb();
      return;
    }
    void this.settled().then(() => {
      try {
        fsyncSync(this.fd);
      } catch (err) {
        cb(err as Error);
        return;
      }
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    clearTimeout(this.timer);
    try {
      // what arrived is a true prefix of the blob: keep it for a resume (the caller decides)
      this.writeParts();
    } catch {
      /* the prefix is only an optimisation */
    }
    cb(err);
  }

  /** Wait for the background sync, if one runs (before the file is closed). */
  async settled(): Promise<void> {
    await this.syncing;
  }

  private writeParts(): void {
    if (this.batched === 0 || this.fd < 0) return;
    this.unsynced += this.batched;
    const n = writevSync(this.fd, this.parts);
    if (n < this.batched) {
      // a short write: the rest goes out in plain writes
      let rest = Buffer.concat(this.parts, this.batched).subarray(n);
      while (rest.length > 0) rest = rest.subarray(writeSync(this.fd, rest));
    }
    this.parts = [];
    this.batched = 0;
    // start writing back in the background as the blob arrives, so the final fsync finds little left
    if (this.unsynced >= SYNC_EVERY && !this.syncing) {
      this.unsynced = 0;
      this.syncing = new Promise<void>((resolve) => {
        fdatasync(this.fd, () => {
          this.syncing = undefined;
          resolve();
        });
      });
    }
  }
}

function serialize(err: unknown): SerializedError {
  const e = err as Partial<EngineError> & { code?: unknown };
  const out: SerializedError = { name: String(e?.name ?? 'Error'), message: String(e?.message ?? err) };
  if (err instanceof EngineError) out.kind = err.kind;
  if (typeof e?.code === 'string') out.code = e.code;
  return out;
}

/** The start of a `Content-Range: bytes <start>-<end>/<size>` that ends the blob, else undefined. */
function contentRangeStart(h: string | undefined, size: number): number | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(h?.trim() ?? '');
  if (!m || Number(m[2]) !== size - 1 || (m[3] !== '*' && Number(m[3]) !== size)) return undefined;
  return Number(m[1]);
}

/** The kept prefix (read back from the ingest file), then the rest from the registry. */
async function* prefixThen(path: string, n: number, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* createReadStream(path, { start: 0, end: n - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  yield* rest;
}

/** Run one job; resolves with its verdict (never rejects). */
async function runJob(job: LayerJob, signal: AbortSignal, post: (m: LayerJobMessage) => void): Promise<LayerJobResult> {
  let got = 0;
  try {
    // the blob's private ingest file may hold the prefix of an interrupted download: ask for the rest
    // (without one, the layer keeps a recipe and an interrupted download starts over)
    const blobTmp = job.blobTmp;
    const fd = blobTmp !== undefined ? openSync(blobTmp, 'a', 0o644) : -1;
    let tap: BlobTap | undefined;
    try {
      let have = fd >= 0 ? fstatSync(fd).size : 0;
      if (fd >= 0 && have >= job.size) {
        ftruncateSync(fd, 0);
        have = 0;
      }
      const get = (from: number): Promise<BlobGetResult> =>
        getBlobResponse(job.url, from > 0 ? { ...job.headers, range: `bytes=${from}-` } : job.headers, { headTimeoutMs: job.idleTimeoutMs, signal });
      let res = await get(have);
      if (have > 0 && !(res.status === 206 && contentRangeStart(res.headers['content-range'], job.size) === have)) {
        // the registry sent the whole blob (200), or not the range asked for: start over
        if (res.status !== 200) {
          res.body.destroy();
          res = await get(0);
        }
        ftruncateSync(fd, 0);
        have = 0;
      }
      if (res.status !== 200 && !(have > 0 && res.status === 206)) {
        const chunks: Buffer[] = [];
        let len = 0;
        for await (const c of res.body as AsyncIterable<Buffer>) {
          if (len < 64 * 1024) chunks.push(c);
          len += c.length;
        }
        return { t: 'http', status: res.status, statusText: res.statusText, body: Buffer.concat(chunks).toString('utf8').slice(0, 64 * 1024) };
      }
      const body = res.body;
      const source = have > 0 ? Readable.from(prefixThen(blobTmp!, have, body), { objectMode: false }) : body;
      tap = new BlobTap(fd, job, (n) => post({ t: 'progress', n }), have);
      const onAbort = (): void => {
        const abort = Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
        body.destroy(abort);
        source.destroy(abort);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // the transfer (body → tap: watchdog, verification, progress, blob file) fails first on a
      // cut, a stall or a digest/size mismatch; that error is the one reported, not the unpacker's
      const transfer = new Promise<void>((resolve, reject) => {
        pipeline(source, tap!, (err) => (err ? reject(err) : resolve()));
      });
      // an uncompressed layer's DiffID is the blob digest the verifier checks: not hashed twice
      // big files bypass the page cache (direct-write.ts): this thread may block on the disk
      const unpack = applyLayer(tap, job.layerDir, { signal, uncompressedDigest: job.digest, recipe: fd < 0, directIo: true });
      const [t, u] = await Promise.allSettled([transfer, unpack]);
      signal.removeEventListener('abort', onAbort);
      got = tap.count;
      // a transfer that only ended because the unpacker gave up reports the unpacker's error
      const prematureClose = t.status === 'rejected' && (t.reason as { code?: string })?.code === 'ERR_STREAM_PREMATURE_CLOSE';
      if (t.status === 'rejected' && !(prematureClose && u.status === 'rejected')) throw t.reason;
      if (u.status === 'rejected') throw u.reason;
      const out: LayerJobResult = { t: 'done', digest: tap.digest!, bytes: tap.count, diffId: u.value.diffId, size: u.value.size, opaque: u.value.opaque };
      if (u.value.recipe) out.recipe = u.value.recipe;
      if (u.value.noRecipe) out.noRecipe = u.value.noRecipe;
      return out;
    } finally {
      await tap?.settled();
      if (fd >= 0) closeSync(fd);
    }
  } catch (err) {
    return { t: 'error', err: serialize(err), got };
  }
}

// a pooled worker runs the jobs it is sent side by side, and lives until the pool ends it
if (parentPort) {
  const port = parentPort;
  const running = new Map<number, AbortController>();
  port.on('message', (m: LayerWorkerRequest) => {
    if (m.t === 'abort') {
      running.get(m.id)?.abort();
      return;
    }
    const ac = new AbortController();
    running.set(m.id, ac);
    void runJob(m.job, ac.signal, (p) => port.postMessage({ id: m.id, msg: p })).then((r) => {
      running.delete(m.id);
      port.postMessage({ id: m.id, msg: r });
    });
  });
}

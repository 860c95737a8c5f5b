/**
 * The main-thread side of layers pulled in worker threads (layer-worker.ts): a small pool of warm
 * workers (at most one per core), each running several jobs at once; progress is relayed, cancellation is cooperative (a
 * worker that does not stop is terminated), and the worker's verdict comes back as a message. A job
 * settles only once its worker no longer touches the job's files.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import { EngineError, internal, type ErrorKind } from '../base/errors.js';

/** What one worker does: GET `url`, verify, write `blobTmp`, unpack into `layerDir`. */
export interface LayerJob {
  url: string;
  headers: Record<string, string>;
  /** Head timeout and body idle timeout. */
  idleTimeoutMs: number;
  /** Expected digest and size of the compressed blob. */
  digest: string;
  size: number;
  /**
   * Private ingest file for the blob (fsynced when complete). Absent: the blob is not written; the
   * layer records a tar-split recipe instead (uncompressed layers, whose blob is the tar itself).
   */
  blobTmp?: string;
  /** Fresh directory the layer is unpacked into. */
  layerDir: string;
}

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  name: string;
  message: string;
  kind?: ErrorKind;
  code?: string;
}

/** Messages a layer worker posts. */
export type LayerJobMessage =
  | { t: 'progress'; n: number }
  | { t: 'http'; status: number; statusText: string; body: string }
  | { t: 'done'; digest: string; bytes: number; diffId: string; size: number; opaque: string[]; recipe?: Uint8Array; noRecipe?: string }
  | { t: 'error'; err: SerializedError; got: number };

/** The worker's verdict. */
export type LayerJobResult = Exclude<LayerJobMessage, { t: 'progress' }>;

/** Rebuild an error posted by a worker (EngineErrors keep kind and code; others name and code). */
export function deserializeError(e: SerializedError): Error {
  if (e.kind) return new EngineError(e.kind, e.message, e.code ? { code: e.code } : {});
  return Object.assign(new Error(e.message), { name: e.name, ...(e.code ? { code: e.code } : {}) });
}

/** Messages to a pooled layer worker. */
export type LayerWorkerRequest = { t: 'job'; id: number; job: LayerJob } | { t: 'abort'; id: number };

const workerUrl = new URL('./layer-worker.js', import.meta.url);

/**
 * Idle pooled workers end after this long (a worker costs ~10 MB to keep, and ~70 ms of CPU to
 * start plus its JIT warm-up, which a cold pull pays again: about twice a warm pull's CPU).
 */
const IDLE_MS = 5 * 60_000;

/**
 * At most this many workers: one per core. A worker runs several jobs at once (their I/O
 * interleaves), so a pull's 3 parallel layers on a 2-core host share 2 warm workers instead of
 * warming up 3 (more threads than cores only add JIT warm-up and contention).
 */
const MAX_WORKERS = Math.max(1, availableParallelism());

interface PooledJob {
  onMessage: (m: LayerJobMessage) => void;
  onGone: (err: Error) => void;
}

interface PooledWorker {
  w: Worker;
  idleTimer: NodeJS.Timeout | undefined;
  /** The jobs it runs, by id. */
  jobs: Map<number, PooledJob>;
}

/**
 * Worker threads for layer jobs, kept warm between jobs (module loading and JIT warm-up are paid
 * once per worker, not per layer). Up to {@link MAX_WORKERS} workers; a job goes to an idle worker,
 * else to a new one while below the limit, else to the worker with the fewest jobs (the pull's
 * semaphore bounds the jobs). Idle workers are unref'd and end after {@link IDLE_MS}.
 */
class LayerWorkerPool {
  private readonly workers: PooledWorker[] = [];
  private nextId = 1;

  private spawn(): PooledWorker {
    const pw: PooledWorker = { w: new Worker(workerUrl), idleTimer: undefined, jobs: new Map() };
    this.workers.push(pw);
    pw.w.on('message', (m: { id: number; msg: LayerJobMessage }) => {
      pw.jobs.get(m.id)?.onMessage(m.msg);
    });
    let failure: Error | undefined;
    pw.w.on('error', (err) => {
      failure = err;
    });
    pw.w.on('exit', () => {
      const i = this.workers.indexOf(pw);
      if (i >= 0) this.workers.splice(i, 1);
      clearTimeout(pw.idleTimer);
      const jobs = [...pw.jobs.values()];
      pw.jobs.clear();
      for (const j of jobs) j.onGone(failure ?? internal('layer worker exited'));
    });
    this.idle(pw);
    return pw;
  }

  /** A worker without jobs: unref'd, ended after {@link IDLE_MS}. */
  private idle(pw: PooledWorker): void {
    pw.w.unref();
    clearTimeout(pw.idleTimer);
    pw.idleTimer = setTimeout(() => void pw.w.terminate(), IDLE_MS);
    pw.idleTimer.unref?.();
  }

  private pick(): PooledWorker {
    const free = this.workers.find((x) => x.jobs.size === 0);
    if (free) return free;
    if (this.workers.length < MAX_WORKERS) return this.spawn();
    return this.workers.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  /**
   * Start workers (up to `n`, within the limit) ahead of the jobs, so their start-up overlaps the
   * pull's manifest and config requests instead of delaying the first layer.
   */
  warm(n: number): void {
    const want = Math.min(n, MAX_WORKERS);
    while (this.workers.length < want) this.spawn();
    for (const pw of this.workers) if (pw.jobs.size === 0) this.idle(pw);
  }

  /** Run a job on a worker; see {@link runLayerJob}. */
  run(job: LayerJob, opts: { signal: AbortSignal; onBytes?: (n: number) => void }): Promise<LayerJobResult> {
    const aborted = (): Error => Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
    if (opts.signal.aborted) return Promise.reject(aborted());
    const pw = this.pick();
    clearTimeout(pw.idleTimer);
    pw.w.ref();
    const id = this.nextId++;
    return new Promise<LayerJobResult>((resolve, reject) => {
      let killer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        pw.w.postMessage({ t: 'abort', id } satisfies LayerWorkerRequest);
        // a worker that does not stop (stuck in a syscall, so its other jobs are stuck too) is
        // ended; its exit settles the job, and fails the other jobs it ran
        killer = setTimeout(() => void pw.w.terminate(), 10_000);
        killer.unref?.();
      };
      const done = (): void => {
        opts.signal.removeEventListener('abort', onAbort);
        clearTimeout(killer);
        pw.jobs.delete(id);
      };
      pw.jobs.set(id, {
        onMessage: (m) => {
          if (m.t === 'progress') {
            opts.onBytes?.(m.n);
            return;
          }
          // the worker has stopped touching the job's files when it posts the verdict
          done();
          if (pw.jobs.size === 0) this.idle(pw);
          if (opts.signal.aborted) reject(aborted());
          else resolve(m);
        },
        onGone: (err) => {
          done();
          reject(opts.signal.aborted ? aborted() : err);
        },
      });
      opts.signal.addEventListener('abort', onAbort, { once: true });
      pw.w.postMessage({ t: 'job', id, job } satisfies LayerWorkerRequest);
    });
  }
}

const pool = new LayerWorkerPool();

/**
 * Run one layer job in a pooled worker thread. Resolves with the worker's verdict once the worker
 * has stopped touching the job's files (so the caller can remove them without racing it); rejects
 * with an AbortError when `signal` aborts (also only after the worker stopped).
 */
export function runLayerJob(job: LayerJob, opts: { signal: AbortSignal; onBytes?: (n: number) => void }): Promise<LayerJobResult> {
  return pool.run(job, opts);
}

/**
 * Start layer workers for a pull that will fetch `layers` layers (called once the manifest is
 * known, so worker start-up overlaps the config fetch).
 */
export function warmLayerWorkers(layers: number): void {
  if (layers > 0) pool.warm(layers);
}

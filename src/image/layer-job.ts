/**
 * The main-thread side of layers pulled in worker threads (layer-worker.ts): a small pool of warm
 * workers, each running one job at a time; progress is relayed, cancellation is cooperative (a
 * worker that does not stop is terminated), and the worker's verdict comes back as a message. A job
 * settles only once its worker no longer touches the job's files.
 */
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
  /** Private ingest file for the blob (created with O_EXCL, fsynced when complete). */
  blobTmp: string;
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
  | { t: 'done'; digest: string; bytes: number; diffId: string; size: number; opaque: string[] }
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

/** Idle pooled workers end after this long (a worker costs ~10 MB and ~60 ms of CPU to start). */
const IDLE_MS = 60_000;

interface PooledWorker {
  w: Worker;
  idleTimer: NodeJS.Timeout | undefined;
  /** The job it runs and how to settle it. */
  job: { id: number; onMessage: (m: LayerJobMessage) => void; onGone: (err: Error) => void } | undefined;
}

/**
 * Worker threads for layer jobs, kept warm between jobs (module loading and JIT warm-up are paid
 * once, not per layer). One job per worker at a time; a worker is started when none is idle, so
 * the pull's semaphore is what bounds them. Idle workers are unref'd and end after {@link IDLE_MS}.
 */
class LayerWorkerPool {
  private readonly idle: PooledWorker[] = [];
  private nextId = 1;

  private spawn(): PooledWorker {
    const pw: PooledWorker = { w: new Worker(workerUrl), idleTimer: undefined, job: undefined };
    pw.w.on('message', (m: { id: number; msg: LayerJobMessage }) => {
      if (pw.job && pw.job.id === m.id) pw.job.onMessage(m.msg);
    });
    let failure: Error | undefined;
    pw.w.on('error', (err) => {
      failure = err;
    });
    pw.w.on('exit', () => {
      const i = this.idle.indexOf(pw);
      if (i >= 0) this.idle.splice(i, 1);
      clearTimeout(pw.idleTimer);
      pw.job?.onGone(failure ?? internal('layer worker exited'));
    });
    return pw;
  }

  private release(pw: PooledWorker): void {
    pw.job = undefined;
    pw.w.unref();
    pw.idleTimer = setTimeout(() => void pw.w.terminate(), IDLE_MS);
    pw.idleTimer.unref?.();
    this.idle.push(pw);
  }

  /** Run a job on a worker; see {@link runLayerJob}. */
  run(job: LayerJob, opts: { signal: AbortSignal; onBytes?: (n: number) => void }): Promise<LayerJobResult> {
    const aborted = (): Error => Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
    if (opts.signal.aborted) return Promise.reject(aborted());
    const pw = this.idle.pop() ?? this.spawn();
    clearTimeout(pw.idleTimer);
    pw.w.ref();
    const id = this.nextId++;
    return new Promise<LayerJobResult>((resolve, reject) => {
      let killer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        pw.w.postMessage({ t: 'abort', id } satisfies LayerWorkerRequest);
        // a worker that does not stop (stuck in a syscall) is ended; its exit settles the job
        killer = setTimeout(() => void pw.w.terminate(), 10_000);
        killer.unref?.();
      };
      const done = (): void => {
        opts.signal.removeEventListener('abort', onAbort);
        clearTimeout(killer);
      };
      pw.job = {
        id,
        onMessage: (m) => {
          if (m.t === 'progress') {
            opts.onBytes?.(m.n);
            return;
          }
          // the worker has stopped touching the job's files when it posts the verdict
          done();
          this.release(pw);
          if (opts.signal.aborted) reject(aborted());
          else resolve(m);
        },
        onGone: (err) => {
          done();
          reject(opts.signal.aborted ? aborted() : err);
        },
      };
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

/** Small concurrency helpers for pull/push: a counting semaphore and a push-to-async-iterable channel. */

/** A counting semaphore (containers/image maxParallelDownloads). */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new Error('Semaphore limit must be >= 1');
  }
  /** True when every slot is taken (a new run would wait). */
  get full(): boolean {
    return this.active >= this.limit;
  }
  /** Run fn once a slot is free. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiters.shift()?.();
    }
  }
}

/** A queue that producers push to and one consumer iterates; `close(err)` ends it (throwing err). */
export class Channel<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private failure: unknown;
  /** Add a value (ignored after close). */
  push(v: T): void {
    if (this.closed) return;
    this.queue.push(v);
    this.wake?.();
  }
  /** End the stream; with an error the consumer throws it after the queued values. */
  close(err?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = err;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      while (this.queue.length) yield this.queue.shift()!;
      if (this.closed) {
        if (this.failure !== undefined) throw this.failure;
        return;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

/** Docker's text progress bar: `[=====>     ]  1.2MB/3.4MB`. */
export function progressBar(current: number, total: number | undefined): string {
  const human = (n: number): string => {
    const u = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (v >= 1000 && i < u.length - 1) {
      v /= 1000;
      i++;
    }
    return `${i === 0 ? v : v.toFixed(v < 10 ? 3 : v < 100 ? 2 : 1)}${u[i]}`;
  };
  if (!total || total <= 0) return human(current);
  const width = 50;
  const filled = Math.min(width, Math.floor((current / total) * width));
  const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? (filled === width ? '=' : '>') : '') + ' '.repeat(width - filled);
  return `[${bar}] ${human(current).padStart(8)}/${human(total)}`;
}

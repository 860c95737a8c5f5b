/**
 * Starting the embedded daemon when the CLI finds nothing listening on the default socket:
 * spawn `node <bin dir>/berthd.js` detached, logging to `<data-root>/berthd.log`, then wait up
 * to 10 s for `/_ping` to answer.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ApiClient, ConnectionError } from '../client/index.js';

/** Options for startDaemon. */
export interface StartDaemonOptions {
  /** Directory holding berthd.js. */
  binDir: string;
  /** Data root for the log file (default /var/lib/berth). */
  dataRoot?: string;
  /** How long to wait for the socket (ms, default 10000). */
  timeoutMs?: number;
}

/** Spawn berthd and wait until `client` can ping it. Throws the last ConnectionError on timeout. */
export async function startDaemon(client: ApiClient, opts: StartDaemonOptions): Promise<void> {
  const dataRoot = opts.dataRoot ?? '/var/lib/berth';
  fs.mkdirSync(dataRoot, { recursive: true });
  const logFd = fs.openSync(path.join(dataRoot, 'berthd.log'), 'a');
  const args = [path.join(opts.binDir, 'berthd.js')];
  if (opts.dataRoot) args.push('--data-root', opts.dataRoot);
  // berthd's pulls keep several layers' inflate, hashing and file writes in libuv's thread pool at
  // once; the default 4 threads queue writes behind inflates (pulls measured ~25% faster with 16).
  // It must be set before the process starts: ESM loading already uses the pool.
  const env: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? '16' };
  // The installed `berth` wrapper moves NODE_EXTRA_CA_CERTS aside for the CLI (Node parses every
  // certificate in it before running any JavaScript, ~35 ms here, and the CLI speaks no TLS);
  // berthd talks to registries, so it gets the variable back.
  const savedCa = env['BERTH_SAVED_NODE_EXTRA_CA_CERTS'];
  if (savedCa !== undefined) {
    if (env['NODE_EXTRA_CA_CERTS'] === undefined) env['NODE_EXTRA_CA_CERTS'] = savedCa;
    delete env['BERTH_SAVED_NODE_EXTRA_CA_CERTS'];
  }
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', logFd, logFd], env });
  fs.closeSync(logFd);
  let exited = false;
  child.once('exit', () => (exited = true));
  child.once('error', () => (exited = true));
  child.unref();
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await client.ping();
      return;
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      last = err;
    }
    if (exited) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw last ?? new ConnectionError(client.host, undefined);
}

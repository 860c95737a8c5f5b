/**
 * Shared helpers of the compat suite (issue 4 §5): run the real Docker clients (docker CLI 28.x,
 * docker-py, dockerode) against a berthd started by the integration harness.
 */
import { request } from 'node:http';
import { join } from 'node:path';

import { runCommand, type CliOptions, type CliResult, type TestDaemon } from '../integration/harness.js';

/** The docker CLI 28.x the suite drives (host-notes: the Debian 20.10 CLI is at /usr/bin/docker). */
export const DOCKER_CLI = process.env['BERTH_COMPAT_DOCKER'] ?? '/usr/local/bin/docker';

/** Environment pointing a Docker client at the test daemon, with its own (empty) client config. */
export function dockerEnv(h: TestDaemon): Record<string, string | undefined> {
  return {
    DOCKER_HOST: h.host,
    DOCKER_CONFIG: join(h.baseDir, 'docker-config'),
    DOCKER_API_VERSION: undefined,
    DOCKER_CONTEXT: undefined,
    DOCKER_TLS_VERIFY: undefined,
    DOCKER_CERT_PATH: undefined,
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
  };
}

/** Runs the real docker CLI against the test daemon. */
export function docker(h: TestDaemon, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runCommand(DOCKER_CLI, args, { timeoutMs: 60_000, ...opts, env: { ...dockerEnv(h), ...(opts.env ?? {}) } });
}

/** Like {@link docker} but throws (with both outputs) unless the CLI exits 0; returns stdout. */
export async function dockerOk(h: TestDaemon, args: string[], opts: CliOptions = {}): Promise<string> {
  const r = await docker(h, args, opts);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  return r.stdout;
}

/** A raw HTTP answer from the daemon socket. */
export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One plain HTTP request on the daemon's UNIX socket (for API-version and header checks). `opts`:
 * extra request headers, and the time allowed (default 20 s; a pull or push answers when done).
 */
export function rawRequest(h: TestDaemon, method: string, path: string, body?: string, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const headers = { ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...(opts.headers ?? {}) };
    const req = request({ socketPath: h.socket, method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(opts.timeoutMs ?? 20_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.end(body);
  });
}

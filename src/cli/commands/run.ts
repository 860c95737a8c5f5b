/**
 * Commands that attach to a process: create, run, start (-a -i), exec, attach. The run flow is the
 * docker CLI's: create (pull once on "No such image") → attach (hijack) → wait (next-exit, or
 * removed with --rm) → start → resize when -t; the exit code comes from wait.
 */
import * as fs from 'node:fs';

import { ApiError, copyOutput, forwardStdin, type ApiClient, type HijackedStream } from '../../client/index.js';
import { flagBool, flagList, flagStr, parseArgs, UsageError, type FlagSpec, type ParsedArgs } from '../args.js';
import { StatusError, type Cli } from '../context.js';
import { buildCreateRequest, containerFlags, parseEnvFile, runOnlyFlags, type CreateRequest } from '../run-config.js';
import { encPath, requireArgs } from './common.js';
import { pullImage } from './images.js';

type Json = Record<string, unknown>;
const enc = encPath;

/** Terminal size [rows, cols] of the CLI's stdout, when it is a terminal. */
function consoleSize(cli: Cli): [number, number] | undefined {
  if (!cli.out.isTTY || !cli.out.rows || !cli.out.columns) return undefined;
  return [cli.out.rows, cli.out.columns];
}

function withDefaultTag(image: string): string {
  if (image.includes('@')) return image;
  const slash = image.lastIndexOf('/');
  return image.slice(slash + 1).includes(':') ? image : `${image}:latest`;
}

/** POST /containers/create, pulling once when the daemon answers 404 "No such image". */
export async function createContainer(cli: Cli, c: ApiClient, req: CreateRequest, pullPolicy = 'missing'): Promise<string> {
  const doCreate = async (): Promise<string> => {
    const r = await c.post<{ Id: string; Warnings?: string[] | null }>('/containers/create', { name: req.name, platform: req.platform }, req.body);
    for (const w of r.Warnings ?? []) cli.err.write(`WARNING: ${w}\n`);
    return r.Id;
  };
  if (pullPolicy === 'always') await pullImage(cli, c, req.image, { platform: req.platform, out: cli.err });
  try {
    return await doCreate();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404 && /no such image/i.test(err.message)) || pullPolicy === 'never') throw err;
    cli.err.write(`Unable to find image '${withDefaultTag(req.image)}' locally\n`);
    try {
      await pullImage(cli, c, req.image, { platform: req.platform, out: cli.err });
    } catch (e) {
      // docker run reports a failed pull as an engine error: exit 125
      if (e instanceof StatusError) throw new StatusError(125, e.message);
      throw e;
    }
    return await doCreate();
  }
}

function readFileText(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    throw new UsageError(`open ${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
}

function buildRequest(cli: Cli, p: ParsedArgs, detach: boolean, autoRemove: boolean): CreateRequest {
  return buildCreateRequest(p, {
    readFile: readFileText,
    getenv: (n) => cli.getenv(n),
    consoleSize: consoleSize(cli),
    detach,
    autoRemove,
  });
}

/** `berth create [OPTIONS] IMAGE [COMMAND] [ARG…]`: prints the new id. */
export async function create(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, containerFlags, { command: 'create', stopAtPositional: true });
  requireArgs('create', p.args, 1);
  const req = buildRequest(cli, p, true, false);
  // create keeps the attach flags docker sets for a later `start -a`
  const body = req.body;
  body['AttachStdin'] = flagBool(p, 'interactive');
  body['AttachStdout'] = true;
  body['AttachStderr'] = true;
  body['StdinOnce'] = false;
  const c = await cli.client();
  const id = await createContainer(cli, c, req, flagStr(p, 'pull') ?? 'missing');
  cli.print(`${id}\n`);
  return 0;
}

/** A live attach: output pumping, stdin forwarding, raw mode and resize handling. */
interface AttachIO {
  /** Resolves when the daemon closed the output stream. */
  outputDone: Promise<void>;
  /** Restore the terminal and stop reading stdin. */
  cleanup(): void;
}

function setupAttachIO(cli: Cli, h: HijackedStream, opts: { tty: boolean; stdin: boolean }): AttachIO {
  const raw = opts.tty && opts.stdin && !!cli.stdin.isTTY && typeof cli.stdin.setRawMode === 'function';
  if (raw) cli.stdin.setRawMode!(true);
  const fwd = opts.stdin ? forwardStdin(cli.stdin, h.socket) : undefined;
  if (!opts.stdin) {
    // no stdin wanted: tell the daemon we will not write
    h.socket.on('error', () => undefined);
  }
  const multiplexed = h.multiplexed ?? !opts.tty;
  let cleaned = false;
  const outputDone = copyOutput(h.socket, multiplexed, cli.out, cli.err).catch((err: NodeJS.ErrnoException) => {
    if (cleaned || err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw err;
  });
  outputDone.catch(() => undefined);
  return {
    outputDone,
    cleanup(): void {
      if (cleaned) return;
      cleaned = true;
      fwd?.stop();
      if (raw) cli.stdin.setRawMode!(false);
      h.socket.destroy();
    },
  };
}

/**
 * Follow terminal resizes with POST <base>/resize (containers or exec). One request at a time, and
 * after it the newest size if the terminal changed meanwhile: `stty rows R cols C` raises two
 * SIGWINCHs, and two requests in flight may arrive in either order, leaving the older size.
 */
function followResize(cli: Cli, c: ApiClient, base: string): () => void {
  let busy = false;
  let sent = '';
  const send = (): void => {
    if (busy) return;
    const size = consoleSize(cli);
    if (!size || `${size[0]}x${size[1]}` === sent) return;
    busy = true;
    sent = `${size[0]}x${size[1]}`;
    c.post(`${base}/resize`, { h: size[0], w: size[1] })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
        send();
      });
  };
  send();
  process.on('SIGWINCH', send);
  return () => void process.off('SIGWINCH', send);
}

/** Forward SIGINT/SIGTERM/SIGHUP to the container (docker's --sig-proxy, non-TTY only). */
function proxySignals(c: ApiClient, id: string): () => void {
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as NodeJS.Signals[]).map((s) => [
    s,
    () => void c.post(`/containers/${enc(id)}/kill`, { signal: s }).catch(() => undefined),
  ]);
  for (const [s, h] of handlers) process.on(s, h);
  return () => {
    for (const [s, h] of handlers) process.off(s, h);
  };
}

/** Read the `{"StatusCode":n,"Error":…}` body of a wait response. */
async function waitResult(res: AsyncIterable<Buffer | string>): Promise<{ StatusCode: number; Error?: { Message?: string } | null }> {
  let s = '';
  for await (const c of res) s += c.toString();
  const line = s.trim().split('\n').filter(Boolean).pop();
  if (!line) throw new StatusError(125, 'berth: error waiting for container: unexpected EOF');
  const j = JSON.parse(line) as { StatusCode?: number; Error?: { Message?: string } | null; error?: string; message?: string };
  if (j.StatusCode === undefined) throw new StatusError(125, `berth: error waiting for container: ${j.message ?? j.error ?? line}`);
  return { StatusCode: j.StatusCode, Error: j.Error ?? null };
}

/** Exit code for a failed start: 126/127 when the daemon says so (wait/inspect or message), else 125. */
async function startFailureCode(c: ApiClient, id: string, err: unknown, waitP: Promise<{ StatusCode: number }> | undefined): Promise<number> {
  const timeout = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
    Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]).catch(() => undefined);
  if (waitP) {
    const w = await timeout(waitP, 1500);
    if (w && (w.StatusCode === 126 || w.StatusCode === 127)) return w.StatusCode;
  }
  const info = await timeout(c.get<Json>(`/containers/${enc(id)}/json`), 1500);
  const code = Number((info?.['State'] as Json | undefined)?.['ExitCode']);
  if (code === 126 || code === 127) return code;
  const msg = err instanceof Error ? err.message : String(err);
  if (/executable file not found|no such file or directory|not found/i.test(msg)) return 127;
  if (/permission denied|not executable|cannot execute/i.test(msg)) return 126;
  return 125;
}

/**
 * Wait for the container's exit (from the wait call) and for the attach output to end. When the
 * daemon reports the exit but keeps the attach stream open, give the output a grace period and
 * then stop waiting for it (docker's CLI would hang; see the report about berthd attach EOF).
 */
async function outputAndExit<T>(outputDone: Promise<void>, waitP: Promise<T>, graceMs = 2000): Promise<T> {
  await Promise.race([
    outputDone,
    waitP.then(() => Promise.race([outputDone, new Promise<void>((r) => setTimeout(r, graceMs).unref())])),
  ]);
  return waitP;
}

/** `berth run [OPTIONS] IMAGE [COMMAND] [ARG…]`. */
export async function run(cli: Cli, argv: string[]): Promise<number> {
  const specs: FlagSpec[] = [...containerFlags, ...runOnlyFlags];
  const p = parseArgs(argv, specs, { command: 'run', stopAtPositional: true });
  requireArgs('run', p.args, 1);
  const detach = flagBool(p, 'detach');
  const autoRemove = flagBool(p, 'rm');
  const tty = flagBool(p, 'tty');
  const interactive = flagBool(p, 'interactive');
  if (tty && interactive && !cli.stdin.isTTY) throw new StatusError(1, 'the input device is not a TTY');
  const req = buildRequest(cli, p, detach, autoRemove);
  const c = await cli.client();
  const id = await createContainer(cli, c, req, flagStr(p, 'pull') ?? 'missing');
  const cpath = `/containers/${enc(id)}`;

  if (detach) {
    try {
      await c.post(`${cpath}/start`);
    } catch (err) {
      const code = await startFailureCode(c, id, err, undefined);
      throw new StatusError(code, `berth: Error response from daemon: ${(err as Error).message}`, false);
    }
    cli.print(`${id}\n`);
    return 0;
  }

  const body = req.body;
  const wantStdin = !!body['AttachStdin'];
  const h = await c.hijack(`${cpath}/attach`, {
    query: { stderr: body['AttachStderr'] ? 1 : undefined, stdin: wantStdin ? 1 : undefined, stdout: body['AttachStdout'] ? 1 : undefined, stream: 1 },
  });
  const waitRes = await c.request('POST', `${cpath}/wait`, { query: { condition: autoRemove ? 'removed' : 'next-exit' } });
  const waitP = waitResult(waitRes);
  waitP.catch(() => undefined);
  const io = setupAttachIO(cli, h, { tty, stdin: wantStdin });
  let stopResize: (() => void) | undefined;
  let stopSignals: (() => void) | undefined;
  try {
    try {
      await c.post(`${cpath}/start`);
    } catch (err) {
      io.cleanup();
      const code = await startFailureCode(c, id, err, waitP);
      throw new StatusError(code, `berth: Error response from daemon: ${(err as Error).message}`, false);
    }
    if (tty) stopResize = followResize(cli, c, cpath);
    else if (p.flags['sig-proxy'] !== false) stopSignals = proxySignals(c, id);
    const r = await outputAndExit(io.outputDone, waitP);
    if (r.Error?.Message) cli.err.write(`berth: Error response from daemon: ${r.Error.Message}\n`);
    return r.StatusCode;
  } finally {
    stopResize?.();
    stopSignals?.();
    io.cleanup();
  }
}

/** `berth start [-a] [-i] C…`. */
export async function start(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'attach', short: 'a', type: 'bool' },
    { name: 'interactive', short: 'i', type: 'bool' },
    { name: 'detach-keys', type: 'string' },
  ], { command: 'start' });
  requireArgs('start', p.args, 1);
  const c = await cli.client();
  const attach = flagBool(p, 'attach') || flagBool(p, 'interactive');
  if (!attach) {
    let failed = false;
    for (const n of p.args) {
      try {
        await c.post(`/containers/${enc(n)}/start`);
        cli.print(`${n}\n`);
      } catch (err) {
        failed = true;
        cli.err.write(`Error response from daemon: ${(err as Error).message}\n`);
      }
    }
    if (failed) throw new StatusError(1, 'Error: failed to start containers: ' + p.args.join(', '));
    return 0;
  }
  if (p.args.length > 1) throw new UsageError('you cannot start and attach multiple containers at once');
  const name = p.args[0]!;
  const info = await c.get<Json>(`/containers/${enc(name)}/json`);
  const id = String(info['Id']);
  const cfg = (info['Config'] as Json | undefined) ?? {};
  const tty = !!cfg['Tty'];
  const wantStdin = flagBool(p, 'interactive') && !!cfg['OpenStdin'];
  const cpath = `/containers/${enc(id)}`;
  const h = await c.hijack(`${cpath}/attach`, {
    query: { stderr: 1, stdin: wantStdin ? 1 : undefined, stdout: 1, stream: 1, detachKeys: flagStr(p, 'detach-keys') },
  });
  const autoRemove = !!((info['HostConfig'] as Json | undefined)?.['AutoRemove']);
  const waitRes = await c.request('POST', `${cpath}/wait`, { query: { condition: autoRemove ? 'removed' : 'next-exit' } });
  const waitP = waitResult(waitRes);
  waitP.catch(() => undefined);
  const io = setupAttachIO(cli, h, { tty, stdin: wantStdin });
  let stopResize: (() => void) | undefined;
  try {
    try {
      await c.post(`${cpath}/start`);
    } catch (err) {
      io.cleanup();
      const code = await startFailureCode(c, id, err, waitP);
      throw new StatusError(code, `Error response from daemon: ${(err as Error).message}`, false);
    }
    if (tty) stopResize = followResize(cli, c, cpath);
    return (await outputAndExit(io.outputDone, waitP)).StatusCode;
  } finally {
    stopResize?.();
    io.cleanup();
  }
}

/** Flags of `berth exec`. */
export const execFlags: FlagSpec[] = [
  { name: 'interactive', short: 'i', type: 'bool' },
  { name: 'tty', short: 't', type: 'bool' },
  { name: 'detach', short: 'd', type: 'bool' },
  { name: 'env', short: 'e', type: 'list' },
  { name: 'env-file', type: 'list' },
  { name: 'user', short: 'u', type: 'string' },
  { name: 'workdir', short: 'w', type: 'string' },
  { name: 'privileged', type: 'bool' },
  { name: 'detach-keys', type: 'string' },
];

/** The `POST /containers/{id}/exec` body for parsed exec flags. */
export function buildExecBody(p: ParsedArgs, cmd: string[], env: { getenv(n: string): string | undefined; readFile(p: string): string; consoleSize?: [number, number] | undefined }): Json {
  const detach = flagBool(p, 'detach');
  const envs: string[] = [];
  for (const f of flagList(p, 'env-file')) envs.push(...parseEnvFile(env.readFile(f), env.getenv));
  for (const e of flagList(p, 'env')) {
    if (e.includes('=')) envs.push(e);
    else {
      const v = env.getenv(e);
      if (v !== undefined) envs.push(`${e}=${v}`);
    }
  }
  const tty = flagBool(p, 'tty');
  const body: Json = {
    User: flagStr(p, 'user') ?? '',
    Privileged: flagBool(p, 'privileged'),
    Tty: tty,
    ConsoleSize: tty && env.consoleSize ? env.consoleSize : null,
    AttachStdin: flagBool(p, 'interactive') && !detach,
    AttachStderr: !detach,
    AttachStdout: !detach,
    Detach: detach,
    DetachKeys: flagStr(p, 'detach-keys') ?? '',
    Env: envs.length ? envs : null,
    WorkingDir: flagStr(p, 'workdir') ?? '',
    Cmd: cmd,
  };
  return body;
}

/** `berth exec [-i] [-t] [-d] [-e]… [-u] [-w] C CMD [ARG…]`: exit code of the command. */
export async function exec(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, execFlags, { command: 'exec', stopAtPositional: true });
  requireArgs('exec', p.args, 2);
  const [name, ...cmd] = p.args;
  const tty = flagBool(p, 'tty');
  if (tty && flagBool(p, 'interactive') && !cli.stdin.isTTY) throw new StatusError(1, 'the input device is not a TTY');
  const c = await cli.client();
  await c.get<Json>(`/containers/${enc(name!)}/json`);
  const body = buildExecBody(p, cmd, { getenv: (n) => cli.getenv(n), readFile: readFileText, consoleSize: consoleSize(cli) });
  const { Id: execId } = await c.post<{ Id: string }>(`/containers/${enc(name!)}/exec`, undefined, body);
  if (flagBool(p, 'detach')) {
    await c.post(`/exec/${execId}/start`, undefined, { Detach: true, Tty: tty, ConsoleSize: body['ConsoleSize'] });
    return 0;
  }
  const h = await c.hijack(`/exec/${execId}/start`, { body: { Detach: false, Tty: tty, ConsoleSize: body['ConsoleSize'] } });
  const io = setupAttachIO(cli, h, { tty, stdin: !!body['AttachStdin'] });
  let stopResize: (() => void) | undefined;
  try {
    if (tty) stopResize = followResize(cli, c, `/exec/${execId}`);
    await io.outputDone;
  } finally {
    stopResize?.();
    io.cleanup();
  }
  const info = await c.get<{ ExitCode: number | null; Running?: boolean }>(`/exec/${execId}/json`);
  return info.ExitCode ?? 0;
}

/** `berth attach [--no-stdin] [--sig-proxy] C`: exit code of the container. */
export async function attach(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'no-stdin', type: 'bool' },
    { name: 'sig-proxy', type: 'bool' },
    { name: 'detach-keys', type: 'string' },
  ], { command: 'attach' });
  requireArgs('attach', p.args, 1, 1);
  const c = await cli.client();
  const info = await c.get<Json>(`/containers/${enc(p.args[0]!)}/json`);
  const id = String(info['Id']);
  const state = (info['State'] as Json | undefined) ?? {};
  if (!state['Running']) throw new StatusError(1, 'You cannot attach to a stopped container, start it first');
  if (state['Paused']) throw new StatusError(1, 'You cannot attach to a paused container, unpause it first');
  const cfg = (info['Config'] as Json | undefined) ?? {};
  const tty = !!cfg['Tty'];
  const wantStdin = !flagBool(p, 'no-stdin') && !!cfg['OpenStdin'];
  const cpath = `/containers/${enc(id)}`;
  const h = await c.hijack(`${cpath}/attach`, {
    query: { stderr: 1, stdin: wantStdin ? 1 : undefined, stdout: 1, stream: 1, detachKeys: flagStr(p, 'detach-keys') },
  });
  const io = setupAttachIO(cli, h, { tty, stdin: wantStdin });
  let stopResize: (() => void) | undefined;
  try {
    if (tty) stopResize = followResize(cli, c, cpath);
    await io.outputDone;
  } finally {
    stopResize?.();
    io.cleanup();
  }
  const after = await c.get<Json>(`${cpath}/json`).catch(() => undefined);
  const st = (after?.['State'] as Json | undefined) ?? {};
  if (st['Running']) return 0;
  return Number(st['ExitCode'] ?? 0);
}

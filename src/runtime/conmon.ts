/**
 * conmon, the per-container monitor: it runs `<runtime> create` (or `exec`), holds the container's
 * stdio, writes its output to a k8s-file log, and writes the exit code to `<exit-dir>/<id>`. It
 * outlives berthd, so containers keep running when the daemon stops or crashes.
 *
 * Protocol (conmon 2.1, api-version 1): the sync pipe is fd 3 in conmon (`_OCI_SYNCPIPE=3`); conmon
 * writes one JSON object `{"data": <pid>}` when the runtime has created the process, or
 * `{"data": -1, "message": "…"}` on failure. Resize and log-reopen requests go to the `ctl` FIFO in
 * the bundle ("1 <h> <w>\n", "2 0 0\n"). The attach socket is `<socket-dir>/<cuuid>/attach`
 * (SOCK_SEQPACKET).
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { internal } from '../base/errors.js';
import type { RuntimeConfig } from './oci-runtime.js';
import { readRuntimeLog } from './oci-runtime.js';

export interface ConmonOptions {
  conmonPath: string;
  runtime: RuntimeConfig;
  /** Container id (the runtime's id). */
  id: string;
  /** Session id: the container id for the main process, the exec id for exec sessions. */
  cuuid: string;
  name: string;
  bundle: string;
  pidFile: string;
  conmonPidFile: string;
  /** k8s-file log path. */
  logPath: string;
  logSizeMax?: number;
  exitDir: string;
  socketDir: string;
  /** Where conmon's own stderr goes. */
  conmonLog: string;
  /** Runtime JSON log for error messages. */
  runtimeLog: string;
  stdin: boolean;
  /**
   * Keep the process's stdin open when an attached client's stdin ends (Docker's
   * `StdinOnce: false`); without it conmon closes the process's stdin at the first client EOF.
   */
  leaveStdinOpen?: boolean;
  tty: boolean;
  /** For exec sessions: path of the process.json. */
  execProcessSpec?: string;
  /** Called with conmon's command line on exit (exit-command). */
  exitCommand?: { path: string; args: string[] };
  timeoutMs?: number;
}

export interface ConmonResult {
  /** Pid of the container (or exec) process. */
  pid: number;
  /** Pid of the conmon monitor. */
  conmonPid: number;
}

/** Build conmon's argv. Pure; unit-tested. */
export function conmonArgs(o: ConmonOptions): string[] {
  const args = [
    '--api-version', '1',
    '-c', o.id,
    '-u', o.cuuid,
    '-n', o.name,
    '-r', o.runtime.path,
    '-b', o.bundle,
    '-p', o.pidFile,
    '-P', o.conmonPidFile,
    '-l', `k8s-file:${o.logPath}`,
    '--exit-dir', o.exitDir,
    '--socket-dir-path', o.socketDir,
    '--log-level', 'error',
    '--no-sync-log',
  ];
  for (const g of [...(o.runtime.wrapArgs ?? []), ...o.runtime.globalArgs, `--log=${o.runtimeLog}`, '--log-format=json']) {
    args.push('--runtime-arg', g);
  }
  if (o.logSizeMax && o.logSizeMax > 0) args.push('--log-size-max', String(o.logSizeMax));
  if (o.stdin) args.push('-i');
  if (o.stdin && o.leaveStdinOpen) args.push('--leave-stdin-open');
  if (o.tty) args.push('-t');
  if (o.execProcessSpec) args.push('-e', '--exec-process-spec', o.execProcessSpec);
  if (o.exitCommand) {
    args.push('--exit-command', o.exitCommand.path);
    for (const a of o.exitCommand.args) args.push('--exit-command-arg', a);
  }
  return args;
}

/** Parse one sync-pipe message. */
export function parseSyncMessage(line: string): { data: number; message?: string } {
  const j = JSON.parse(line) as { data?: number; message?: string };
  if (typeof j.data !== 'number') throw new Error(`bad conmon sync message: ${line}`);
  return j.message === undefined ? { data: j.data } : { data: j.data, message: j.message };
}

/** The first complete top-level JSON object in text, or undefined while it is incomplete. */
export function firstJsonObject(text: string): string | undefined {
  const start = text.indexOf('{');
  if (start < 0) return undefined;
  let depth = 0;
  let inStr = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  return undefined;
}

/**
 * Spawn conmon and wait until the runtime has created the process (or failed).
 * Rejects with the runtime's message when creation fails.
 */
export async function spawnConmon(o: ConmonOptions): Promise<ConmonResult> {
  const out = openSync(o.conmonLog, 'a');
  let child;
  try {
    child = spawn(o.conmonPath, conmonArgs(o), {
      // conmon writes its `oom` marker into its working directory: keep it in the bundle
      cwd: o.bundle,
      stdio: ['ignore', out, out, 'pipe'],
      env: { ...process.env, _OCI_SYNCPIPE: '3' },
      detached: true,
    });
  } finally {
    closeSync(out);
  }
  child.unref();
  const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  const timeoutMs = o.timeoutMs ?? 60_000;
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      sync.destroy();
      reject(internal(`conmon did not report within ${timeoutMs} ms`));
    }, timeoutMs);
    sync.on('data', (d: Buffer) => {
      buf += d.toString();
      // conmon may write a second message (an exec's exit status) right after the pid, with or
      // without a newline between them: take exactly the first JSON object
      const first = firstJsonObject(buf);
      if (first !== undefined) {
        clearTimeout(timer);
        sync.destroy();
        resolve(first);
      }
    });
    sync.on('end', () => {
      clearTimeout(timer);
      resolve(buf);
    });
    sync.on('error', () => {
      clearTimeout(timer);
      resolve(buf);
    });
  });
  if (!line.trim()) {
    const rmsg = await readRuntimeLog(o.runtimeLog);
    throw internal(rmsg || 'conmon exited without reporting a pid (see conmon.log)');
  }
  const msg = parseSyncMessage(line.trim());
  if (msg.data < 0) {
    const rmsg = (await readRuntimeLog(o.runtimeLog)) || msg.message || 'runtime failed';
    throw internal(rmsg);
  }
  let conmonPid = 0;
  try {
    const fh = await open(o.conmonPidFile, constants.O_RDONLY);
    conmonPid = Number((await fh.readFile('utf8')).trim());
    await fh.close();
  } catch {
    /* not fatal */
  }
  return { pid: msg.data, conmonPid };
}

/** Ask conmon to resize the container's terminal. */
export async function conmonResize(bundle: string, h: number, w: number): Promise<void> {
  await writeCtl(bundle, `1 ${Math.max(0, h | 0)} ${Math.max(0, w | 0)}\n`);
}

/** Ask conmon to reopen its log file (after rotation). */
export async function conmonReopenLog(bundle: string): Promise<void> {
  await writeCtl(bundle, '2 0 0\n');
}

async function writeCtl(bundle: string, msg: string): Promise<void> {
  // O_NONBLOCK: never hang if conmon is gone (ENXIO when no reader).
  const fh = await open(`${bundle}/ctl`, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    await fh.write(msg);
  } finally {
    await fh.close();
  }
}

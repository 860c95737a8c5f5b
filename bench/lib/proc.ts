/**
 * Process plumbing for the benchmark: run a command and time it, run one and collect its output,
 * and read what the kernel says about memory (MemAvailable, per-process RSS/PSS).
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** What one command produced. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock time from spawn to exit, in milliseconds. */
  ms: number;
}

/** Options for {@link run}. */
export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Written to stdin (then closed). */
  input?: string;
  /** Kill after this many ms (default 10 minutes). */
  timeoutMs?: number;
  /** Discard stdout (it is not collected): for commands that print a lot, e.g. `logs`. */
  discardStdout?: boolean;
  cwd?: string;
}

/** Environment for children: ours, with overrides (undefined deletes). */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs a command to completion and measures its wall time. Never rejects for a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = [opts.input === undefined ? 'ignore' : 'pipe', opts.discardStdout ? 'ignore' : 'pipe', 'pipe'];
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: childEnv(opts.env), stdio, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timeoutMs = opts.timeoutMs ?? 600_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
    child.on('exit', () => {
      // the wall time ends when the process exits, not when its pipes drain
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        let stderr = Buffer.concat(err).toString('utf8');
        if (timedOut) stderr += `\n[bench] killed after ${timeoutMs} ms: ${cmd} ${args.join(' ')}`;
        resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr, ms });
      });
    });
  });
}

/** Like {@link run} but throws unless the exit code is 0. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stderr.trim()}${r.stdout ? '\n' + r.stdout.trim().slice(0, 2000) : ''}`);
  }
  return r;
}

/** MemAvailable from /proc/meminfo, in bytes. */
export function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  if (!m) throw new Error('no MemAvailable in /proc/meminfo');
  return Number(m[1]) * 1024;
}

/** One process: pid, parent, command name, RSS and PSS in bytes. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  rss: number;
  pss: number;
}

/** Reads one process; undefined if it is gone. */
export function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    let rss = 0;
    let pss = 0;
    try {
      const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      rss = Number(/^Rss:\s+(\d+) kB$/m.exec(roll)?.[1] ?? 0) * 1024;
      pss = Number(/^Pss:\s+(\d+) kB$/m.exec(roll)?.[1] ?? 0) * 1024;
    } catch {
      /* kernel thread or gone */
    }
    return { pid, ppid, comm, rss, pss };
  } catch {
    return undefined;
  }
}

/** Every process on the machine. */
export function allProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const p = procInfo(Number(e));
    if (p) out.push(p);
  }
  return out;
}

/** The pid and every descendant of it. */
export function descendants(root: number, procs: ProcInfo[]): ProcInfo[] {
  const kids = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const l = kids.get(p.ppid) ?? [];
    l.push(p);
    kids.set(p.ppid, l);
  }
  const out: ProcInfo[] = [];
  const self = procs.find((p) => p.pid === root);
  if (self) out.push(self);
  const stack = [root];
  while (stack.length) {
    for (const k of kids.get(stack.pop()!) ?? []) {
      out.push(k);
      stack.push(k.pid);
    }
  }
  return out;
}

/** Pids (not ours) whose command line mentions `needle`. */
export function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) pids.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return pids;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls fn until true; throws after ms. */
export async function waitFor(what: string, fn: () => Promise<boolean> | boolean, ms = 30_000, pollMs = 100): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

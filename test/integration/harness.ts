/**
 * Integration-test harness: skip probes, a per-test berthd on its own socket and data root, a CLI
 * runner bound to that daemon, cleanup that removes only what the test made, and the busybox image.
 *
 * Typical use:
 * ```ts
 * const skip = firstSkip(requireRoot(), requireBuilt(), requireBinary('conmon'));
 * test('run echo', { skip }, async (t) => {
 *   const h = await startDaemon();
 *   t.after(() => cleanup(h));
 *   await importBusybox(h);
 *   const r = await h.cli(['run', '--rm', 'busybox', 'echo', 'hi']);
 *   assert.equal(r.stdout, 'hi\n');
 * });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, openSync, closeSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Walks up from this file to the checkout root (the directory whose package.json names berth). */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'berth') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('harness: cannot find the berth checkout above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The berth checkout this harness belongs to. */
export const repoRoot = findRepoRoot();
/** Compiled daemon entry point. */
export const berthdPath = join(repoRoot, 'dist/src/bin/berthd.js');
/** Compiled CLI entry point. */
export const berthPath = join(repoRoot, 'dist/src/bin/berth.js');
/**
 * Second octet of the 10.x.y.0/24 subnets test daemons get (default 214). Set BERTH_TEST_NET_OCTET to
 * keep concurrent test runs on one machine (e.g. several checkouts) out of each other's subnets.
 */
export function testNetOctet(): number {
  const v = Number(process.env['BERTH_TEST_NET_OCTET'] ?? '214');
  return Number.isInteger(v) && v > 0 && v < 255 ? v : 214;
}
/** Where importBusybox() caches the busybox rootfs tarball. */
export const busyboxCacheDir = '/tmp/berth-test-cache';

// ---------------------------------------------------------------------------------------------
// Skip probes: each returns undefined when the requirement is met, else the reason to skip.

/** Skip reason unless the test process runs as root. */
export function requireRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'needs root';
}

/** Skip reason unless `name` is an executable on PATH (or an absolute path to one). */
export function requireBinary(name: string): string | undefined {
  return findBinary(name) === undefined ? `needs ${name} on PATH` : undefined;
}

/** Skip reason unless the daemon and CLI have been compiled to dist/. */
export function requireBuilt(): string | undefined {
  for (const p of [berthdPath, berthPath]) if (!existsSync(p)) return `${p} not built yet`;
  return undefined;
}

/** The first defined skip reason, for `test(name, { skip: firstSkip(a, b) }, fn)`. */
export function firstSkip(...reasons: Array<string | undefined>): string | undefined {
  return reasons.find((r) => r !== undefined);
}

/** Resolves a binary name against PATH; undefined when not found. */
export function findBinary(name: string): string | undefined {
  const candidates = name.includes('/') ? [name] : (process.env['PATH'] ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Daemon and CLI

/** What one CLI invocation produced. `code` is the exit code, or 128+signal when killed. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link TestDaemon.cli}. */
export interface CliOptions {
  /** Written to the CLI's stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Extra environment variables (merged over the test process's environment). */
  env?: Record<string, string | undefined>;
  /** Kill the CLI after this many ms (default 60 000); the result then has code 137. */
  timeoutMs?: number;
}

/** Options for {@link startDaemon}. */
export interface StartDaemonOptions {
  /** Extra berthd arguments (e.g. `['--default-runtime', 'runc']`). */
  args?: string[];
  /** Extra environment for berthd. */
  env?: Record<string, string | undefined>;
  /** How long to wait for /_ping (default 10 000 ms). */
  timeoutMs?: number;
  /** Daemon entry script to run with node (default {@link berthdPath}; the self-test uses a fake). */
  berthd?: string;
  /** CLI entry script that cli() runs with node (default {@link berthPath}). */
  berth?: string;
}

/** A berthd child process owned by one test. */
export interface TestDaemon {
  /** Directory owned by this test: holds the data root, the socket and the daemon log. */
  readonly baseDir: string;
  /** berthd --data-root. */
  readonly dataRoot: string;
  /** Path of the daemon's UNIX socket. */
  readonly socket: string;
  /** `unix://<socket>`, for -H / BERTH_HOST / DOCKER_HOST. */
  readonly host: string;
  /** Daemon stdout+stderr (appended across restarts). */
  readonly logPath: string;
  /** The CLI entry script cli() runs. */
  readonly cliEntry: string;
  /** Pid of the current daemon process (undefined once stopped). */
  readonly pid: number | undefined;
  /** Runs `berth -H unix://<socket> ...args`. Never throws for a non-zero exit. */
  cli(args: string[], opts?: CliOptions): Promise<CliResult>;
  /** Like cli() but throws (with stdout/stderr in the message) unless the exit code is 0; returns stdout. */
  cliOk(args: string[], opts?: CliOptions): Promise<string>;
  /** GET /_ping on the socket; true when it answers 200 OK. */
  ping(): Promise<boolean>;
  /** SIGTERM, wait up to 10 s (then SIGKILL). Resolves with the exit code or signal. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL the daemon (simulates a crash; containers must survive) and wait for it to die. */
  kill9(): Promise<void>;
  /** Starts a new daemon on the same data root and socket (after stop or kill9). */
  restart(): Promise<void>;
  /** The daemon log so far. */
  log(): string;
}

/** Every daemon started by this process, so a forgotten cleanup cannot leave one running. */
const liveDaemons = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveDaemons) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** One HTTP GET /_ping over a UNIX socket. */
function pingSocket(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && body === 'OK'));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Environment for children: the test's own, minus variables that would redirect the CLI elsewhere. */
function childEnv(extra?: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['BERTH_HOST'];
  delete env['NODE_TEST_CONTEXT']; // a nested node must not think it is a test runner child
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Runs any command (e.g. the real `docker` CLI with DOCKER_HOST=h.host) and collects its output.
 * Rejects only when the command cannot be spawned; a non-zero exit is a normal result.
 */
/** Poll fn until it returns true; throw after ms. */
export async function waitFor(fn: () => Promise<boolean>, ms = 15_000, pollMs = 100): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export function runCommand(cmd: string, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runCollect(cmd, args, opts);
}

function runCollect(cmd: string, args: string[], opts: CliOptions & { envBase?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.envBase ?? childEnv(opts.env),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {
        /* the command may exit without reading stdin */
      });
      child.stdin!.end(opts.input);
    }
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) stderr += `\n[harness] killed after ${opts.timeoutMs ?? 60_000} ms: ${cmd} ${args.join(' ')}\n`;
      const sigNum = signal ? (osSignals[signal] ?? 9) : 0;
      resolve({ code: code ?? 128 + sigNum, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}

const osSignals: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

/**
 * Starts berthd as a child process with a fresh data root and socket under a new mkdtemp
 * directory in /tmp, and waits (polling GET /_ping) until it answers. On timeout or early exit the
 * daemon is killed, its directory removed, and the error message includes the daemon log.
 */
export async function startDaemon(opts: StartDaemonOptions = {}): Promise<TestDaemon> {
  const baseDir = realpathSync(await mkdtemp('/tmp/berth-it-'));
  const dataRoot = join(baseDir, 'root');
  const socket = join(baseDir, 'berthd.sock');
  const logPath = join(baseDir, 'berthd.log');
  await mkdir(dataRoot, { recursive: true });
  let child: ChildProcess | undefined;
  // every test daemon gets its own default bridge and subnet, so daemons never share rules
  const given = opts.args ?? [];
  const netArgs: string[] = [];
  if (!given.includes('--bridge') && !given.includes('-b')) netArgs.push('--bridge', `bt${randomBytes(3).toString('hex')}`);
  if (!given.includes('--bip')) netArgs.push('--bip', `10.${testNetOctet()}.${randomBytes(1)[0]}.1/24`);

  const launch = async (): Promise<void> => {
    const fd = openSync(logPath, 'a');
    let c: ChildProcess;
    try {
      c = spawn(process.execPath, [opts.berthd ?? berthdPath, '--data-root', dataRoot, '-H', `unix://${socket}`, ...netArgs, ...(opts.args ?? [])], {
        // the pool size berthd gets from setup.sh and the CLI's auto-start (it must be set before start)
        env: childEnv({ UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? '16', ...opts.env }),
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    child = c;
    liveDaemons.add(c);
    c.once('exit', () => liveDaemons.delete(c));
    let spawnError: Error | undefined;
    c.once('error', (e) => (spawnError = e));
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      if (spawnError) break;
      if (c.exitCode !== null || c.signalCode !== null) break;
      if (await pingSocket(socket, 1000)) return;
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    const why = spawnError
      ? `could not spawn: ${spawnError.message}`
      : c.exitCode !== null || c.signalCode !== null
        ? `exited early (code ${c.exitCode}, signal ${c.signalCode})`
        : `did not answer /_ping on ${socket} within ${opts.timeoutMs ?? 10_000} ms`;
    c.kill('SIGKILL');
    await waitExit(c);
    throw new Error(`harness: berthd ${why}\n---- berthd log (${logPath}) ----\n${readLog(logPath)}---- end of log ----`);
  };

  const h: TestDaemon = {
    baseDir,
    dataRoot,
    socket,
    host: `unix://${socket}`,
    logPath,
    cliEntry: opts.berth ?? berthPath,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    cli: (args, o = {}) => runCollect(process.execPath, [h.cliEntry, '-H', `unix://${socket}`, ...args], o),
    async cliOk(args, o = {}) {
      const r = await h.cli(args, o);
      if (r.code !== 0) {
        throw new Error(`harness: berth ${args.join(' ')} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
      }
      return r.stdout;
    },
    ping: () => pingSocket(socket),
    async stop() {
      const c = child;
      if (!c) return { code: null, signal: null };
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      const r = await waitExit(c);
      clearTimeout(timer);
      return r;
    },
    async kill9() {
      const c = child;
      if (!c) return;
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await waitExit(c);
    },
    async restart() {
      if (h.pid !== undefined) throw new Error('harness: restart() while the daemon is still running');
      await launch();
    },
    log: () => readLog(logPath),
  };

  try {
    await launch();
  } catch (e) {
    await rm(baseDir, { recursive: true, force: true });
    throw e;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Cleanup

/** One line of /proc/self/mountinfo (the fields cleanup needs). */
export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** Mount point, with the kernel's octal escapes (\040 etc.) decoded. */
  mountPoint: string;
  fsType: string;
}

/** Parses /proc/self/mountinfo text (see proc(5)). */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 7 || sep < 0) continue;
    out.push({
      mountId: Number(f[0]),
      parentId: Number(f[1]),
      mountPoint: decodeMountPath(f[4]!),
      fsType: f[sep + 1] ?? '',
    });
  }
  return out;
}

function decodeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `root`, deepest first (the order to unmount them in). */
export function mountsUnder(entries: MountInfoEntry[], root: string): string[] {
  const r = root.replace(/\/+$/, '');
  const hits = entries.map((e) => e.mountPoint).filter((p) => p === r || p.startsWith(r + '/'));
  // Deepest first; for equal depth the later (stacked on top) mount first.
  return hits
    .map((p, i) => ({ p, i, depth: p.split('/').length }))
    .sort((a, b) => b.depth - a.depth || b.i - a.i)
    .map((x) => x.p);
}

/** Pids (not this process) whose command line mentions `needle`, or whose root directory is under it. */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) {
        pids.push(pid);
        continue;
      }
    } catch {
      continue; // exited meanwhile
    }
    try {
      const root = readlinkSync(`/proc/${pid}/root`);
      if (root === needle || root.startsWith(needle + '/') || rootMountMentions(pid, needle)) pids.push(pid);
    } catch {
      /* no permission or exited */
    }
  }
  return pids;
}

/**
 * True when the mount at "/" in the process's mount namespace mentions `needle` (a container whose
 * overlay rootfs has its layers or upperdir in the test's directory). After pivot_root,
 * /proc/<pid>/root reads "/", so the mount table is the reliable way to find container processes.
 */
function rootMountMentions(pid: number, needle: string): boolean {
  const text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  let rootLine: string | undefined;
  for (const line of text.split('\n')) if (line.split(' ')[4] === '/') rootLine = line;
  return rootLine !== undefined && rootLine.includes(needle);
}

/**
 * Removes everything one test made, and nothing else:
 * 1. its containers: `rm -f` of the ids its own daemon lists (restarting the daemon on the same data
 *    root first if the test stopped or killed it);
 * 2. the daemon itself;
 * 3. leftover processes whose command line mentions the test's directory (conmon, socat, runtime
 *    helpers) or whose root is inside it (container processes), by pid with SIGKILL;
 * 4. every mount under the test's directory (from /proc/self/mountinfo, deepest first, `umount -l`);
 * 5. the directory itself (only when no mount is left under it, so rm never crosses into a bind mount).
 * Throws an error listing what could not be cleaned, after trying every step.
 */
export async function cleanup(h: TestDaemon): Promise<void> {
  const problems: string[] = [];
  if (!existsSync(h.baseDir)) return;

  // 1. Containers, through the test's own daemon.
  try {
    if (h.pid === undefined) {
      try {
        await h.restart();
      } catch (e) {
        problems.push(`could not restart berthd to remove containers: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    if (h.pid !== undefined && existsSync(h.cliEntry)) {
      const ps = await h.cli(['ps', '-a', '-q', '--no-trunc'], { timeoutMs: 20_000 });
      const ids = ps.code === 0 ? ps.stdout.split(/\s+/).filter(Boolean) : [];
      if (ps.code !== 0) problems.push(`berth ps -aq failed (${ps.code}): ${ps.stderr.trim()}`);
      if (ids.length > 0) {
        const r = await h.cli(['rm', '-f', ...ids], { timeoutMs: 60_000 });
        if (r.code !== 0) problems.push(`berth rm -f failed (${r.code}): ${r.stderr.trim()}`);
      }
    }
  } catch (e) {
    problems.push(`container removal: ${(e as Error).message}`);
  }

  // 2. The daemon.
  await h.stop();

  // 3-5. Processes, mounts and the directory.
  problems.push(...(await cleanupDir(h.baseDir)));
  if (problems.length > 0) throw new Error('harness cleanup:\n  ' + problems.join('\n  '));
}

/**
 * Steps 3-5 of {@link cleanup} for any directory a test owns: SIGKILLs processes that mention it
 * (command line or container root mount), lazily unmounts every mount at or below it (deepest
 * first), then removes it unless a mount is still there. Returns the problems it could not fix.
 */
export async function cleanupDir(baseDir: string): Promise<string[]> {
  const problems: string[] = [];
  if (!existsSync(baseDir)) return problems;
  // 3. Leftover processes that belong to this test.
  for (let round = 0; round < 3; round++) {
    const pids = processesMentioning(baseDir);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(100);
  }
  const survivors = processesMentioning(baseDir);
  if (survivors.length > 0) problems.push(`processes still alive: ${survivors.join(', ')}`);

  // 4. Mounts under the test's directory.
  let left: string[] = [];
  for (let round = 0; round < 5; round++) {
    left = mountsUnder(parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8')), baseDir);
    if (left.length === 0) break;
    for (const mp of left) {
      try {
        await execFileP('umount', ['-l', mp]);
      } catch {
        /* retried next round; reported below */
      }
    }
  }

  // 5. The directory.
  if (left.length > 0) {
    problems.push(`mounts still present, not removing ${baseDir}: ${left.join(', ')}`);
  } else {
    try {
      await rm(baseDir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      problems.push(`rm -rf ${baseDir}: ${(e as Error).message}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// busybox image

let busyboxTar: Promise<string> | undefined;

/** Builds the busybox rootfs tarball once per process (into /tmp/berth-test-cache) and returns its path. */
export function busyboxTarball(): Promise<string> {
  busyboxTar ??= (async () => {
    await mkdir(busyboxCacheDir, { recursive: true });
    const out = join(busyboxCacheDir, 'busybox.tar');
    const r = await runCollect('bash', [join(repoRoot, 'scripts/make-busybox-rootfs.sh'), out], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`harness: make-busybox-rootfs.sh failed (${r.code}):\n${r.stderr}`);
    return out;
  })();
  busyboxTar.catch(() => (busyboxTar = undefined));
  return busyboxTar;
}

/** Imports the busybox rootfs as busybox:latest (CMD ["sh"]) into the test's daemon; returns the CLI's output (the image id). */
export async function importBusybox(h: TestDaemon): Promise<string> {
  const tar = await busyboxTarball();
  const out = await h.cliOk(['import', '--change', 'CMD ["sh"]', tar, 'busybox:latest'], { timeoutMs: 120_000 });
  return out.trim();
}

/**
 * Conditions that test clients wait for, re-checked on every wake() (call it from the socket's
 * 'data' and 'end' handlers). until() rejects with describe()'s text after `ms`.
 */
export class Waiters {
  private list: Array<() => void> = [];

  wake(): void {
    for (const w of this.list.splice(0)) w();
  }

  until(cond: () => boolean, ms: number, describe: () => string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(describe())), ms);
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else this.list.push(check);
      };
      check();
    });
  }
}

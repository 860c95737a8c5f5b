/**
 * The engines under test, each with its own data root, socket and bridge under the bench's work
 * directory, started here and torn down here: dockerd (Debian's docker.io), Podman (`podman system
 * service`) and berthd (this checkout's dist/). Teardown removes the engine's containers through its
 * own API, stops the daemon by pid, kills leftover processes that mention the engine's directory,
 * unmounts what is under it, deletes its bridge and removes the directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';

import { childEnv, pidsMentioning, run, sleep, waitFor } from './proc.js';

export type EngineName = 'docker' | 'podman' | 'berth';

/** A running engine owned by the bench. */
export interface Engine {
  readonly name: EngineName;
  /** Directory owned by this engine (data root, run dirs, socket, log). */
  readonly dir: string;
  readonly socket: string;
  /** `unix://<socket>`. */
  readonly host: string;
  /** Default bridge interface and its subnet. */
  readonly bridge: string;
  readonly subnet: string;
  /** Version string the engine reports. */
  version: string;
  /** The daemon's own processes (for RSS): dockerd+containerd, podman, berthd. */
  daemonPids(): number[];
  /** Command names of per-container helper processes (shims, monitors) this engine starts. */
  readonly helperComms: readonly string[];
  /** Daemon log path. */
  readonly logPath: string;
  /** Stops everything; returns what could not be cleaned. */
  stop(removeContainers: () => Promise<void>): Promise<string[]>;
}

/** Where each engine's bridge lives: 10.<octet>.<third>.0/24. */
export interface NetPlan {
  octet: number;
  third: number;
}

export interface StartOptions {
  /** Parent directory; the engine gets `<base>/<name>`. */
  base: string;
  net: NetPlan;
  /** host:port of loopback registries the engine must treat as insecure. */
  insecureRegistries: string[];
  /** Repository root (for berthd). */
  repoRoot: string;
  /** berthd only: argv placed before `node berthd.js …` (e.g. strace) and node flags (e.g. --cpu-prof). */
  wrap?: string[];
  nodeArgs?: string[];
}

function pingSocket(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function ip(args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

function spawnDaemon(cmd: string, args: string[], logPath: string, env: Record<string, string | undefined> = {}): ChildProcess {
  const fd = openSync(logPath, 'a');
  try {
    // detached: own process group and session, so a Ctrl-C of the bench reaches us, not the daemon
    const c = spawn(cmd, args, { env: childEnv(env), stdio: ['ignore', fd, fd], detached: true });
    c.unref();
    return c;
  } finally {
    closeSync(fd);
  }
}

function alive(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

async function waitUp(name: string, c: ChildProcess, socket: string, logPath: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (!alive(c)) break;
    if (await pingSocket(socket)) return;
    if (Date.now() > end) break;
    await sleep(100);
  }
  const log = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n') : '';
  if (alive(c)) c.kill('SIGKILL');
  throw new Error(`${name} did not answer /_ping on ${socket}\n---- ${logPath} ----\n${log}`);
}

async function stopChild(c: ChildProcess, graceMs: number): Promise<void> {
  if (!alive(c)) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** Kill leftovers mentioning dir, unmount everything under it, remove it. */
async function cleanDir(dir: string, bridge: string | undefined): Promise<string[]> {
  const problems: string[] = [];
  for (let round = 0; round < 5; round++) {
    const pids = pidsMentioning(dir);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(200);
  }
  const left = pidsMentioning(dir);
  if (left.length) problems.push(`processes still alive under ${dir}: ${left.join(' ')}`);
  for (let round = 0; round < 5; round++) {
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((p) => p === dir || p.startsWith(dir + '/'))
      .sort((a, b) => b.length - a.length);
    if (mounts.length === 0) break;
    for (const m of mounts) await run('umount', ['-l', m]);
  }
  if (bridge && (await run('ip', ['link', 'show', bridge])).code === 0) {
    const r = await run('ip', ['link', 'del', bridge]);
    if (r.code !== 0) problems.push(`ip link del ${bridge}: ${r.stderr.trim()}`);
  }
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    problems.push(`rm -rf ${dir}: ${(e as Error).message}`);
  }
  return problems;
}

/** A short interface name: prefix + 4 random hex digits. */
function ifName(prefix: string): string {
  return prefix + randomBytes(2).toString('hex');
}

/**
 * dockerd with --iptables=false (and no ip-forward/masquerade changes): the host's FORWARD policy and
 * nat table are never touched. Published ports then go through docker-proxy (Docker's userland
 * proxy), which is also what Docker uses for connections to 127.0.0.1 with iptables on.
 * The bridge is created here (dockerd's --bridge needs an existing one) and deleted at stop.
 */
export async function startDocker(o: StartOptions): Promise<Engine> {
  const dir = join(o.base, 'docker');
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const logPath = join(dir, 'dockerd.log');
  const bridge = ifName('bbd');
  const subnet = `10.${o.net.octet}.${o.net.third}.0/24`;
  await ip(['link', 'add', bridge, 'type', 'bridge']);
  await ip(['addr', 'add', `10.${o.net.octet}.${o.net.third}.1/24`, 'dev', bridge]);
  await ip(['link', 'set', bridge, 'up']);
  const args = [
    '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '-H', `unix://${socket}`,
    '--pidfile', join(dir, 'dockerd.pid'), '--bridge', bridge, '--iptables=false', '--ip6tables=false',
    '--ip-masq=false', '--ip-forward=false', '--storage-driver', 'overlay2', '--containerd-namespace', 'berth-bench',
    '--containerd-plugins-namespace', 'berth-bench-plugins', '--log-driver', 'json-file',
    ...o.insecureRegistries.flatMap((r) => ['--insecure-registry', r]),
  ];
  const c = spawnDaemon('dockerd', args, logPath);
  try {
    await waitUp('dockerd', c, socket, logPath);
  } catch (e) {
    await cleanDir(dir, bridge);
    throw e;
  }
  return {
    name: 'docker', dir, socket, host: `unix://${socket}`, bridge, subnet, logPath, version: '',
    helperComms: ['containerd-shim', 'docker-proxy'],
    daemonPids: () => [c.pid!, ...pidsMentioning(join(dir, 'exec', 'containerd', 'containerd.toml'))],
    async stop(removeContainers) {
      const problems: string[] = [];
      try {
        await removeContainers();
      } catch (e) {
        problems.push(`docker: removing containers: ${(e as Error).message}`);
      }
      await stopChild(c, 30_000);
      return [...problems, ...(await cleanDir(dir, bridge))];
    },
  };
}

/** Podman's hard limit on processes as seen by runc (podman lowers its own RLIMIT_NPROC). */
function nprocLimit(): number {
  const m = /^Max processes\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return Math.min(Number(m?.[1] ?? 32768), 32768);
}

function nofileLimit(): number {
  const m = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return Number(m?.[1] ?? 20000);
}

/**
 * `podman system service` on its own socket with its own --root/--runroot/--tmpdir, a
 * containers.conf (default_ulimits at the host's hard limits, runc, cgroupfs, k8s-file logs, file
 * events) and its own default network `bench` on its own bridge (netavark, from a network file in
 * its own network_config_dir).
 */
export async function startPodman(o: StartOptions): Promise<Engine> {
  const dir = join(o.base, 'podman');
  const netDir = join(dir, 'networks');
  await mkdir(netDir, { recursive: true });
  const socket = join(dir, 'podman.sock');
  const logPath = join(dir, 'podman.log');
  const bridge = ifName('bbp');
  const subnet = `10.${o.net.octet}.${o.net.third}.0/24`;
  const conf = join(dir, 'containers.conf');
  await writeFile(
    conf,
    [
      '[containers]',
      `default_ulimits = ["nofile=${nofileLimit()}:${nofileLimit()}", "nproc=${nprocLimit()}:${nprocLimit()}"]`,
      'log_driver = "k8s-file"',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${join(dir, 'events.log')}"`,
      '[network]',
      'network_backend = "netavark"',
      `network_config_dir = "${netDir}"`,
      'default_network = "bench"',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(netDir, 'bench.json'),
    JSON.stringify({
      name: 'bench', id: randomBytes(32).toString('hex'), driver: 'bridge', network_interface: bridge,
      created: new Date().toISOString(), subnets: [{ subnet, gateway: `10.${o.net.octet}.${o.net.third}.1` }],
      ipv6_enabled: false, internal: false, dns_enabled: false, ipam_options: { driver: 'host-local' },
    }),
  );
  const regConf = join(dir, 'registries.conf');
  await writeFile(regConf, o.insecureRegistries.map((r) => `[[registry]]\nlocation = "${r}"\ninsecure = true\n`).join('\n'));
  const args = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--tmpdir', join(dir, 'tmp'), 'system', 'service', '--time=0', `unix://${socket}`];
  const env = { CONTAINERS_CONF: conf, CONTAINERS_REGISTRIES_CONF: regConf };
  const c = spawnDaemon('podman', args, logPath, env);
  try {
    await waitUp('podman', c, socket, logPath);
  } catch (e) {
    await cleanDir(dir, bridge);
    throw e;
  }
  return {
    name: 'podman', dir, socket, host: `unix://${socket}`, bridge, subnet, logPath, version: '',
    helperComms: ['conmon'],
    daemonPids: () => [c.pid!],
    async stop(removeContainers) {
      const problems: string[] = [];
      try {
        await removeContainers();
      } catch (e) {
        problems.push(`podman: removing containers: ${(e as Error).message}`);
      }
      await stopChild(c, 15_000);
      return [...problems, ...(await cleanDir(dir, bridge))];
    },
  };
}

/** berthd from this checkout's dist/, with its own data root, socket, bridge and subnet. */
export async function startBerth(o: StartOptions): Promise<Engine> {
  const dir = join(o.base, 'berth');
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'berthd.sock');
  const logPath = join(dir, 'berthd.log');
  const bridge = ifName('bbb');
  const subnet = `10.${o.net.octet}.${o.net.third}.0/24`;
  const args = [...(o.nodeArgs ?? []), join(o.repoRoot, 'dist/src/bin/berthd.js'), '--data-root', join(dir, 'root'), '-H', `unix://${socket}`, '--bridge', bridge, '--bip', `10.${o.net.octet}.${o.net.third}.1/24`];
  const wrap = o.wrap ?? [];
  // the pool size berthd gets from setup.sh and the CLI's auto-start (it must be set before start)
  const env = { UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? '16' };
  const c = wrap.length ? spawnDaemon(wrap[0]!, [...wrap.slice(1), process.execPath, ...args], logPath, env) : spawnDaemon(process.execPath, args, logPath, env);
  try {
    await waitUp('berthd', c, socket, logPath);
  } catch (e) {
    await cleanDir(dir, bridge);
    throw e;
  }
  return {
    name: 'berth', dir, socket, host: `unix://${socket}`, bridge, subnet, logPath, version: '',
    helperComms: ['conmon', 'socat'],
    // under a wrapper (strace) the daemon is the wrapper's child
    daemonPids: () => (wrap.length ? pidsMentioning(join(o.repoRoot, 'dist/src/bin/berthd.js')).filter((p) => p !== c.pid && pidsMentioning(dir).includes(p)) : [c.pid!]),
    async stop(removeContainers) {
      const problems: string[] = [];
      try {
        await removeContainers();
      } catch (e) {
        problems.push(`berth: removing containers: ${(e as Error).message}`);
      }
      // stop the daemon itself first (SIGTERM, so --cpu-prof writes its profile), then its wrapper
      if (wrap.length) {
        for (const pid of pidsMentioning(join(o.repoRoot, 'dist/src/bin/berthd.js'))) {
          if (pid !== c.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(process.execPath)) process.kill(pid, 'SIGTERM');
        }
        await waitFor('berthd to exit', () => c.exitCode !== null || c.signalCode !== null, 20_000).catch(() => undefined);
      }
      await stopChild(c, 15_000);
      return [...problems, ...(await cleanDir(dir, bridge))];
    },
  };
}

/** Which engines this machine can run. */
export async function available(name: EngineName): Promise<boolean> {
  const bin = name === 'docker' ? 'dockerd' : name === 'podman' ? 'podman' : undefined;
  if (!bin) return true;
  return (await run('sh', ['-c', `command -v ${bin}`])).code === 0;
}

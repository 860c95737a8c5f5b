/**
 * The figures of issue 7. Each group measures its metrics for every client, interleaving the clients
 * within each repeat (repeat 1: docker, podman, berth, berth-cli; repeat 2: …) so that load from
 * other work on the machine spreads over all engines instead of landing on one.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';

import type { Engine } from './engines.js';
import { allProcs, descendants, memAvailable, pidsMentioning, procInfo, run, runOk, sleep, type RunOptions, type RunResult } from './proc.js';
import type { Registry } from './registry.js';
import { summarize, type MetricDef, type MetricResult, type Outcome } from './report.js';

/** A client driving one engine: the docker CLI at the engine's socket, or berth's own CLI. */
export interface Client {
  /** docker | podman | berth (all through the docker CLI) | berth-cli. */
  id: string;
  engine: Engine;
  bin: string;
  pre: string[];
  env: Record<string, string | undefined>;
}

/** Sizes and repeat counts; quick mode shrinks them. */
export interface Plan {
  quick: boolean;
  repeats: number;
  heavyRepeats: number;
  memContainers: number;
  /** Containers for the berth-only many-containers figure (0: skip). */
  manyContainers: number;
  psCounts: [number, number];
  layerBytes: number;
  buildBytes: number;
  logBytes: number;
  portBytes: number;
  pingCount: number;
}

export interface Ctx {
  plan: Plan;
  work: string;
  clients: Client[];
  registry: Registry;
  pushRegistry: Registry;
  log(msg: string): void;
}

/** Runs the client's CLI. */
export function cli(c: Client, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(c.bin, [...c.pre, ...args], { ...opts, env: { ...c.env, ...(opts.env ?? {}) } });
}

/** Runs the client's CLI; throws unless it exits 0. */
export function cliOk(c: Client, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runOk(c.bin, [...c.pre, ...args], { ...opts, env: { ...c.env, ...(opts.env ?? {}) } });
}

/** One client per engine (the docker CLI ones): for figures where the client does not matter. */
function perEngine(clients: Client[]): Client[] {
  return clients.filter((c) => c.id !== 'berth-cli');
}

/**
 * Repeats `once` n times for every client, interleaved; collects one sample per metric per call.
 * A client that fails gets an error outcome for every metric and is not asked again.
 */
async function measure(
  ctx: Ctx, defs: MetricDef[], clients: Client[], n: number,
  once: (c: Client, i: number) => Promise<Record<string, number>>,
  opts: { warmup?: boolean } = {},
): Promise<MetricResult[]> {
  const samples = new Map<string, Map<string, number[]>>();
  const errors = new Map<string, string>();
  for (const c of clients) samples.set(c.id, new Map(defs.map((d) => [d.id, []])));
  const start = opts.warmup ? -1 : 0;
  for (let i = start; i < n; i++) {
    for (const c of clients) {
      if (errors.has(c.id)) continue;
      try {
        const r = await once(c, i);
        if (i < 0) continue;
        for (const [k, v] of Object.entries(r)) samples.get(c.id)!.get(k)?.push(v);
      } catch (e) {
        const msg = (e as Error).message;
        errors.set(c.id, msg);
        ctx.log(`  ${c.id}: ${defs.map((d) => d.id).join(', ')} failed: ${msg.split('\n').slice(0, 4).join(' | ')}`);
      }
    }
  }
  return defs.map((d) => {
    const byClient: Record<string, Outcome> = {};
    for (const c of clients) {
      const err = errors.get(c.id);
      const s = samples.get(c.id)!.get(d.id)!;
      byClient[c.id] = err !== undefined && s.length === 0 ? { error: err } : s.length ? { summary: summarize(s) } : { error: 'no samples' };
    }
    return { metric: d, byClient };
  });
}

async function timed(c: Client, args: string[], opts: RunOptions = {}): Promise<number> {
  const r = await cliOk(c, args, opts);
  return r.ms;
}

/** Removes every container of the client's engine (rm -f in batches). */
export async function removeAll(c: Client): Promise<void> {
  const ps = await cliOk(c, ['ps', '-aq', '--no-trunc'], { timeoutMs: 120_000 });
  const ids = ps.stdout.split(/\s+/).filter(Boolean);
  for (let i = 0; i < ids.length; i += 100) await cliOk(c, ['rm', '-f', ...ids.slice(i, i + 100)], { timeoutMs: 600_000 });
}

/** A container that exits 0 promptly on SIGTERM (busybox sh as pid 1 only reacts to trapped signals). */
const STOPPABLE = ['sh', '-c', 'trap "exit 0" TERM; sleep 100000 & wait'];

// ---------------------------------------------------------------------------------------------

/** `run --rm busybox true` on the default bridge and with --network none. */
export function runRm(ctx: Ctx): Promise<MetricResult[]> {
  const defs: MetricDef[] = [
    { id: 'run_rm_bridge', title: 'run --rm true, bridge', unit: 'ms', better: 'lower', target: { text: '≤ 0.25×', ratioMax: 0.25 } },
    { id: 'run_rm_none', title: 'run --rm true, --network none', unit: 'ms', better: 'lower', target: { text: '≤ 0.25×', ratioMax: 0.25 } },
  ];
  return measure(ctx, defs, ctx.clients, ctx.plan.repeats, async (c) => ({
    run_rm_bridge: await timed(c, ['run', '--rm', 'busybox', 'true']),
    run_rm_none: await timed(c, ['run', '--rm', '--network', 'none', 'busybox', 'true']),
  }), { warmup: true });
}

/**
 * `run --rm busybox true` on the default bridge while another container is attached to it: the
 * steady state of a busy host, where the bridge's network-level setup (NAT chain, forwarding rules)
 * already exists and only the container's own interface is made and removed.
 */
export async function runRmBusy(ctx: Ctx): Promise<MetricResult[]> {
  const defs: MetricDef[] = [{ id: 'run_rm_bridge_busy', title: 'run --rm true, bridge already in use', unit: 'ms', better: 'lower' }];
  const idle = new Map<string, string>();
  try {
    for (const c of perEngine(ctx.clients)) idle.set(c.engine.name, (await cliOk(c, ['run', '-d', 'busybox', 'sleep', '100000'])).stdout.trim());
    return await measure(ctx, defs, ctx.clients, ctx.plan.repeats, async (c) => ({ run_rm_bridge_busy: await timed(c, ['run', '--rm', 'busybox', 'true']) }), { warmup: true });
  } finally {
    for (const c of perEngine(ctx.clients)) if (idle.has(c.engine.name)) await cli(c, ['rm', '-f', idle.get(c.engine.name)!]);
  }
}

/** `run -d`, then `create`, `start`, `stop`, `rm` of one container, each timed on its own. */
export function lifecycle(ctx: Ctx): Promise<MetricResult[]> {
  const defs: MetricDef[] = [
    { id: 'run_d', title: 'run -d (sleeping container)', unit: 'ms', better: 'lower', target: { text: '≤ 0.33×', ratioMax: 0.33 } },
    { id: 'create', title: 'create', unit: 'ms', better: 'lower' },
    { id: 'start', title: 'start', unit: 'ms', better: 'lower' },
    { id: 'stop', title: 'stop (exits on SIGTERM)', unit: 'ms', better: 'lower' },
    { id: 'rm', title: 'rm (stopped container)', unit: 'ms', better: 'lower' },
  ];
  return measure(ctx, defs, ctx.clients, ctx.plan.repeats, async (c) => {
    const r = await cliOk(c, ['run', '-d', 'busybox', 'sleep', '100000']);
    await cliOk(c, ['rm', '-f', r.stdout.trim()]);
    const cr = await cliOk(c, ['create', 'busybox', ...STOPPABLE]);
    const id = cr.stdout.trim();
    const start = await timed(c, ['start', id]);
    await sleep(100); // let the shell install its trap
    const stop = await timed(c, ['stop', id]);
    const rm = await timed(c, ['rm', id]);
    return { run_d: r.ms, create: cr.ms, start, stop, rm };
  }, { warmup: true });
}

/** `exec <running container> true`. */
export async function execLatency(ctx: Ctx): Promise<MetricResult[]> {
  const defs: MetricDef[] = [{ id: 'exec', title: 'exec true', unit: 'ms', better: 'lower' }];
  const ids = new Map<string, string>();
  try {
    return await measure(ctx, defs, ctx.clients, ctx.plan.repeats, async (c) => {
      if (!ids.has(c.id)) ids.set(c.id, (await cliOk(c, ['run', '-d', 'busybox', 'sleep', '100000'])).stdout.trim());
      return { exec: await timed(c, ['exec', ids.get(c.id)!, 'true']) };
    }, { warmup: true });
  } finally {
    for (const c of ctx.clients) if (ids.has(c.id)) await cli(c, ['rm', '-f', ids.get(c.id)!]);
  }
}

/** Per-container helper processes of the engine that are new since `before`, and what runs under them. */
function helpers(e: Engine, before: Set<number>): { rss: number; pss: number; count: number; comms: Set<string>; containerPss: number } {
  let rss = 0;
  let pss = 0;
  let count = 0;
  const comms = new Set<string>();
  const pids: number[] = [];
  for (const pid of pidsMentioning(e.dir)) {
    if (before.has(pid)) continue;
    const p = procInfo(pid);
    if (!p || !e.helperComms.includes(p.comm)) continue;
    rss += p.rss;
    pss += p.pss;
    count++;
    comms.add(p.comm);
    pids.push(pid);
  }
  // the containers' own processes: descendants of the helpers that are not helpers themselves
  const procs = allProcs();
  const helperSet = new Set(pids);
  let containerPss = 0;
  const seen = new Set<number>();
  for (const pid of pids) {
    for (const p of descendants(pid, procs)) {
      if (helperSet.has(p.pid) || seen.has(p.pid)) continue;
      seen.add(p.pid);
      containerPss += p.pss;
    }
  }
  return { rss, pss, count, comms, containerPss };
}

/** Kernel memory that containers cost (slab: dentries, inodes, mounts, netns; kernel stacks; page tables), in bytes. */
function kernelMemory(): number {
  const t = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(t)?.[1] ?? 0);
  return (kb('Slab') + kb('KernelStack') + kb('PageTables')) * 1024;
}

/** MemAvailable, as the median of 5 readings over a second (it moves with everything on the machine). */
async function steadyMemAvailable(): Promise<number> {
  const v: number[] = [];
  for (let i = 0; i < 5; i++) {
    v.push(memAvailable());
    await sleep(250);
  }
  return summarize(v).median;
}

/** Starts `n` sleeping containers with `concurrency` CLI clients at once; returns the wall time. */
async function startMany(c: Client, n: number, concurrency: number, extra: string[]): Promise<number> {
  const t0 = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      await cliOk(c, ['run', '-d', ...extra, 'busybox', 'sleep', '100000'], { timeoutMs: 120_000 });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return Date.now() - t0;
}

/** Current memory of the engine's daemon processes (not their container descendants). */
function daemonMemory(e: Engine): { rss: number; pss: number } {
  let rss = 0;
  let pss = 0;
  for (const pid of e.daemonPids()) {
    const p = procInfo(pid);
    if (p) {
      rss += p.rss;
      pss += p.pss;
    }
  }
  return { rss, pss };
}

/**
 * Memory per idle container: start N sleeping containers one after another on the default bridge,
 * wait for things to settle, then report the drop in MemAvailable per container, the RSS (and PSS)
 * of the per-container helper processes, the daemon's RSS growth per container and the time to start
 * them all. One engine at a time, so the others' containers do not disturb MemAvailable.
 */
export async function memory(ctx: Ctx): Promise<MetricResult[]> {
  const n = ctx.plan.memContainers;
  const defs: MetricDef[] = [
    { id: 'mem_avail', title: `MemAvailable drop per idle container (${n})`, unit: 'MB', better: 'lower', target: { text: '≤ 0.5 MB', absMax: 0.5 } },
    { id: 'mem_accounted', title: 'accounted per container (helper+container PSS, daemon, kernel)', unit: 'MB', better: 'lower', target: { text: '≤ 0.5 MB', absMax: 0.5 } },
    { id: 'mem_helper_rss', title: 'helper RSS per container (shim/conmon)', unit: 'MB', better: 'lower' },
    { id: 'mem_helper_pss', title: 'helper PSS per container', unit: 'MB', better: 'lower' },
    { id: 'mem_container_pss', title: 'container processes PSS per container', unit: 'MB', better: 'lower' },
    { id: 'mem_daemon', title: 'daemon RSS growth per container', unit: 'MB', better: 'lower' },
    { id: 'mem_kernel', title: 'kernel Slab+stacks+page tables growth per container', unit: 'MB', better: 'lower' },
    { id: 'mem_start_all', title: `time to start ${n} containers`, unit: 's', better: 'lower' },
  ];
  const MB = 1024 * 1024;
  return measure(ctx, defs, perEngine(ctx.clients), ctx.plan.heavyRepeats, async (c) => {
    const e = c.engine;
    const before = new Set(pidsMentioning(e.dir));
    const d0 = daemonMemory(e);
    const m0 = await steadyMemAvailable();
    const k0 = kernelMemory();
    const ms = await startMany(c, n, 1, []);
    await sleep(3000);
    const m1 = await steadyMemAvailable();
    const k1 = kernelMemory();
    const h = helpers(e, before);
    const d1 = daemonMemory(e);
    ctx.log(`  ${c.id}: ${n} containers, ${h.count} helper processes (${[...h.comms].join(', ')}), daemon RSS ${(d0.rss / MB).toFixed(1)} -> ${(d1.rss / MB).toFixed(1)} MB`);
    await removeAll(c);
    return {
      mem_avail: (m0 - m1) / n / MB,
      // the same cost from parts that other work on the machine does not move (MemAvailable does)
      mem_accounted: (h.pss + h.containerPss + Math.max(0, d1.rss - d0.rss) + Math.max(0, k1 - k0)) / n / MB,
      mem_helper_rss: h.rss / n / MB,
      mem_helper_pss: h.pss / n / MB,
      mem_daemon: (d1.rss - d0.rss) / n / MB,
      mem_container_pss: h.containerPss / n / MB,
      mem_kernel: (k1 - k0) / n / MB,
      mem_start_all: ms / 1000,
    };
  });
}

/** GET /_ping on a fresh connection; resolves with the round-trip time in ms. */
function pingOnce(socketPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = request({ socketPath, path: '/_ping', method: 'GET', agent: false, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`/_ping ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('/_ping timed out')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * berth only: start many idle containers (--network none: the default /24 bridge has 253
 * addresses) with 4 concurrent clients. Reports the total time, MemAvailable drop and helper RSS per
 * container, and the worst /_ping round trip seen while they start (is the daemon responsive?).
 */
export async function many(ctx: Ctx): Promise<MetricResult[]> {
  const n = ctx.plan.manyContainers;
  const c = ctx.clients.find((x) => x.id === 'berth');
  if (n === 0 || !c) return [];
  const defs: MetricDef[] = [
    { id: 'many_start_all', title: `time to start ${n} idle containers (berth, --network none, 4 clients)`, unit: 's', better: 'lower', target: { text: '≤ 120 s', absMax: 120 } },
    { id: 'many_mem_avail', title: `MemAvailable drop per container at ${n}`, unit: 'MB', better: 'lower', target: { text: '≤ 0.5 MB', absMax: 0.5 } },
    { id: 'many_accounted', title: `accounted per container at ${n} (helper+container PSS, kernel)`, unit: 'MB', better: 'lower', target: { text: '≤ 0.5 MB', absMax: 0.5 } },
    { id: 'many_helper_rss', title: `helper RSS per container at ${n}`, unit: 'MB', better: 'lower' },
    { id: 'many_helper_pss', title: `helper PSS per container at ${n}`, unit: 'MB', better: 'lower' },
    { id: 'many_kernel', title: `kernel Slab+stacks+page tables per container at ${n}`, unit: 'MB', better: 'lower' },
    { id: 'many_ping_max', title: `worst /_ping while starting ${n}`, unit: 'ms', better: 'lower' },
  ];
  const MB = 1024 * 1024;
  return measure(ctx, defs, [c], 1, async () => {
    const e = c.engine;
    const before = new Set(pidsMentioning(e.dir));
    const m0 = await steadyMemAvailable();
    const k0 = kernelMemory();
    let worst = 0;
    let done = false;
    const prober = (async () => {
      while (!done) {
        worst = Math.max(worst, await pingOnce(e.socket).catch(() => 30_000));
        await sleep(500);
      }
    })();
    let ms: number;
    try {
      ms = await startMany(c, n, 4, ['--network', 'none']);
    } finally {
      done = true;
      await prober;
    }
    await sleep(5000);
    const m1 = await steadyMemAvailable();
    const k1 = kernelMemory();
    const h = helpers(e, before);
    ctx.log(`  berth: ${n} containers in ${(ms / 1000).toFixed(1)} s, ${h.count} helpers, worst /_ping ${worst.toFixed(0)} ms`);
    await removeAll(c);
    return { many_start_all: ms / 1000, many_mem_avail: (m0 - m1) / n / MB, many_accounted: (h.pss + h.containerPss + Math.max(0, k1 - k0)) / n / MB, many_helper_rss: h.rss / n / MB, many_helper_pss: h.pss / n / MB, many_kernel: (k1 - k0) / n / MB, many_ping_max: worst };
  });
}

/** `ps -a` and `inspect <id>` with N (created) containers present, for two values of N. */
export async function listing(ctx: Ctx): Promise<MetricResult[]> {
  const out: MetricResult[] = [];
  const engines = perEngine(ctx.clients);
  const ids = new Map<string, string[]>();
  try {
    for (const count of ctx.plan.psCounts) {
      for (const c of engines) {
        const have = ids.get(c.engine.name) ?? [];
        while (have.length < count) have.push((await cliOk(c, ['create', 'busybox', 'true'])).stdout.trim());
        ids.set(c.engine.name, have);
      }
      const target = count === ctx.plan.psCounts[0] ? { text: '≤ 1.0×', ratioMax: 1.0 } : undefined;
      const defs: MetricDef[] = [
        { id: `ps_${count}`, title: `ps -a with ${count} containers`, unit: 'ms', better: 'lower', ...(target ? { target } : {}) },
        { id: `inspect_${count}`, title: `inspect with ${count} containers`, unit: 'ms', better: 'lower', ...(target ? { target } : {}) },
      ];
      out.push(...(await measure(ctx, defs, ctx.clients, ctx.plan.repeats, async (c) => {
        const list = ids.get(c.engine.name) ?? [];
        return {
          [`ps_${count}`]: await timed(c, ['ps', '-a'], { discardStdout: true }),
          [`inspect_${count}`]: await timed(c, ['inspect', list[list.length >> 1]!], { discardStdout: true }),
        };
      }, { warmup: true })));
    }
  } finally {
    for (const c of engines) await removeAll(c).catch((e: Error) => ctx.log(`  ${c.id}: cleanup: ${e.message}`));
  }
  return out;
}

/** Writes `bytes` of random data to a file. */
async function randomFile(path: string, bytes: number): Promise<void> {
  const ws = createWriteStream(path);
  for (let left = bytes; left > 0; ) {
    const n = Math.min(left, 1 << 20);
    if (!ws.write(randomBytes(n))) await new Promise<void>((r) => ws.once('drain', () => r()));
    left -= n;
  }
  await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
}

/**
 * Pull and push of a 4-layer image of random (incompressible) data. The image is built from
 * scratch by berth and pushed once to the loopback registry; each pull first removes the image.
 * One untimed round comes first (as for the other figures).
 * Each push goes to a second registry restarted empty, so no layer is already there.
 */
export async function pullPush(ctx: Ctx): Promise<MetricResult[]> {
  const berth = ctx.clients.find((c) => c.id === 'berth') ?? ctx.clients[0]!;
  const dir = join(ctx.work, 'big-image');
  await mkdir(dir, { recursive: true });
  const per = ctx.plan.layerBytes;
  for (let i = 1; i <= 4; i++) await randomFile(join(dir, `layer${i}`), per);
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n' + [1, 2, 3, 4].map((i) => `COPY layer${i} /layer${i}\n`).join(''));
  const ref = `${ctx.registry.addr}/bench/big:latest`;
  await cliOk(berth, ['build', '-q', '-t', ref, dir], { timeoutMs: 600_000 });
  await cliOk(berth, ['push', ref], { timeoutMs: 600_000, discardStdout: true });
  await cliOk(berth, ['rmi', ref]);
  // compressed size as stored in the registry: what a pull transfers
  const mres = await fetch(`http://${ctx.registry.addr}/v2/bench/big/manifests/latest`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } });
  const manifest = (await mres.json()) as { layers: Array<{ size: number }> };
  const bytes = manifest.layers.reduce((a, l) => a + l.size, 0);
  const MB = 1024 * 1024;
  ctx.log(`  image ${ref}: ${manifest.layers.length} layers, ${(bytes / MB).toFixed(1)} MB compressed`);
  const defs: MetricDef[] = [
    { id: 'pull', title: `pull ${Math.round(bytes / MB)} MB / ${manifest.layers.length} layers`, unit: 'MB/s', better: 'higher', target: { text: '≥ 2.5×', ratioMin: 2.5 } },
    { id: 'push', title: `push ${Math.round(bytes / MB)} MB / ${manifest.layers.length} layers`, unit: 'MB/s', better: 'higher' },
  ];
  const pushRef = `${ctx.pushRegistry.addr}/bench/pushed:latest`;
  const res = await measure(ctx, defs, perEngine(ctx.clients), ctx.plan.heavyRepeats, async (c) => {
    await cli(c, ['rmi', '-f', ref, pushRef]);
    const pull = await timed(c, ['pull', ref], { timeoutMs: 600_000, discardStdout: true });
    await cliOk(c, ['tag', ref, pushRef]);
    await ctx.pushRegistry.reset();
    const push = await timed(c, ['push', pushRef], { timeoutMs: 600_000, discardStdout: true });
    await cli(c, ['rmi', '-f', ref, pushRef]);
    return { pull: bytes / MB / (pull / 1000), push: bytes / MB / (push / 1000) };
    // one untimed round first, as for the other figures: the first pull after a daemon starts also
    // starts berthd's layer workers and compiles their code (~0.65 s here instead of ~0.4 s)
  }, { warmup: true });
  return res;
}

/** Build of FROM busybox + COPY 10 MB + RUN + CMD: cold (--no-cache) and fully cached. */
export async function build(ctx: Ctx): Promise<MetricResult[]> {
  const dir = join(ctx.work, 'build-ctx');
  await mkdir(dir, { recursive: true });
  await randomFile(join(dir, 'blob'), ctx.plan.buildBytes);
  await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY blob /blob\nRUN wc -c /blob > /size\nCMD ["cat", "/size"]\n');
  const defs: MetricDef[] = [
    { id: 'build_cold', title: `build, cold (COPY ${Math.round(ctx.plan.buildBytes / 1e6)} MB + RUN)`, unit: 'ms', better: 'lower', target: { text: '≤ 0.5×', ratioMax: 0.5 } },
    { id: 'build_cached', title: 'build, fully cached', unit: 'ms', better: 'lower', target: { text: '≤ 1.0×', ratioMax: 1.0 } },
  ];
  try {
    return await measure(ctx, defs, perEngine(ctx.clients), ctx.plan.heavyRepeats, async (c) => ({
      build_cold: await timed(c, ['build', '-q', '--no-cache', '-t', 'bench/build:latest', dir], { timeoutMs: 300_000, discardStdout: true }),
      build_cached: await timed(c, ['build', '-q', '-t', 'bench/build:latest', dir], { timeoutMs: 300_000, discardStdout: true }),
    }), { warmup: true });
  } finally {
    for (const c of perEngine(ctx.clients)) {
      await cli(c, ['rmi', '-f', 'bench/build:latest']);
      await cli(c, ['image', 'prune', '-f']);
    }
  }
}

/**
 * Logs: a container prints N MB of 100-byte lines; "write" is the time from `run -d` until `wait`
 * returns (the logging path's throughput), "read" is `logs <id>` to /dev/null.
 */
export async function logs(ctx: Ctx): Promise<MetricResult[]> {
  const bytes = ctx.plan.logBytes;
  const MB = 1024 * 1024;
  const line = '0123456789'.repeat(10).slice(0, 99);
  const defs: MetricDef[] = [
    { id: 'logs_write', title: `log ${Math.round(bytes / MB)} MB (run -d … wait)`, unit: 'MB/s', better: 'higher' },
    { id: 'logs_read', title: `logs of ${Math.round(bytes / MB)} MB`, unit: 'MB/s', better: 'higher' },
  ];
  return measure(ctx, defs, perEngine(ctx.clients), ctx.plan.heavyRepeats, async (c) => {
    const t0 = process.hrtime.bigint();
    const id = (await cliOk(c, ['run', '-d', 'busybox', 'sh', '-c', `yes ${line} | head -c ${bytes}`])).stdout.trim();
    const w = await cliOk(c, ['wait', id], { timeoutMs: 600_000 });
    const writeMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (w.stdout.trim() !== '0') throw new Error(`log writer exited ${w.stdout.trim()}`);
    const read = await timed(c, ['logs', id], { timeoutMs: 600_000, discardStdout: true });
    await cliOk(c, ['rm', '-f', id]);
    return { logs_write: bytes / MB / (writeMs / 1000), logs_read: bytes / MB / (read / 1000) };
  });
}

/** Sends `bytes` to host:port and waits until the receiver closes; resolves with ms. */
function send(host: string, port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const t0 = process.hrtime.bigint();
    const s = connect({ host, port });
    let left = bytes;
    let ended = false;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', pump);
      }
      if (!ended) {
        ended = true;
        s.end();
      }
    };
    s.on('connect', pump);
    s.on('error', reject);
    s.setTimeout(60_000, () => s.destroy(new Error(`send to ${host}:${port} stalled`)));
    s.on('data', () => undefined);
    s.on('close', (hadError) => {
      if (hadError) return;
      if (left > 0) return reject(new Error(`connection to ${host}:${port} closed early`));
      resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

/** Published-port throughput (127.0.0.1:<port> → container) and, for comparison, to the container's IP. */
export async function port(ctx: Ctx): Promise<MetricResult[]> {
  const bytes = ctx.plan.portBytes;
  const MB = 1024 * 1024;
  const defs: MetricDef[] = [
    { id: 'port_published', title: `published port, ${Math.round(bytes / MB)} MB via 127.0.0.1`, unit: 'MB/s', better: 'higher' },
    { id: 'port_direct', title: `same, to the container IP`, unit: 'MB/s', better: 'higher' },
  ];
  const ctrs = new Map<string, { id: string; hostPort: number; ip: string }>();
  const { freePort } = await import('./registry.js');
  try {
    return await measure(ctx, defs, perEngine(ctx.clients), ctx.plan.heavyRepeats, async (c) => {
      let x = ctrs.get(c.id);
      if (!x) {
        const hostPort = await freePort();
        // busybox nc: -ll keeps listening, -e runs a sink per connection (plain `nc -l` quits when its stdin, /dev/null, ends)
        const id = (await cliOk(c, ['run', '-d', '-p', `127.0.0.1:${hostPort}:5000`, 'busybox', 'nc', '-ll', '-p', '5000', '-e', 'sh', '-c', 'cat >/dev/null'])).stdout.trim();
        const insp = JSON.parse((await cliOk(c, ['inspect', id])).stdout) as Array<{ NetworkSettings: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string }> } }>;
        const ns = insp[0]!.NetworkSettings;
        const ip = ns.IPAddress || Object.values(ns.Networks ?? {}).map((n) => n.IPAddress).find(Boolean) || '';
        x = { id, hostPort, ip };
        ctrs.set(c.id, x);
        // a proxy may accept before the container listens, so ask the container itself
        for (let k = 0; ; k++) {
          const ns = await cli(c, ['exec', id, 'netstat', '-ltn']);
          if (ns.code === 0 && /:5000\s/.test(ns.stdout)) break;
          if (k > 50) throw new Error(`nothing listens on :5000 in ${id}: ${ns.stdout}${ns.stderr}`);
          await sleep(200);
        }
        await send('127.0.0.1', hostPort, 1 << 20);
      }
      const pub = await send('127.0.0.1', x.hostPort, bytes);
      await sleep(100);
      const direct = x.ip ? await send(x.ip, 5000, bytes) : NaN;
      await sleep(100);
      return { port_published: bytes / MB / (pub / 1000), port_direct: bytes / MB / (direct / 1000) };
    });
  } finally {
    for (const c of perEngine(ctx.clients)) if (ctrs.has(c.id)) await cli(c, ['rm', '-f', ctrs.get(c.id)!.id]);
  }
}

/** CLI start-up: `version` through each client (berth-cli is `berth version`). */
export function version(ctx: Ctx): Promise<MetricResult[]> {
  const defs: MetricDef[] = [{ id: 'version', title: 'CLI `version` (start-up + one API call)', unit: 'ms', better: 'lower', target: { text: '≤ 60 ms', absMax: 60, client: 'berth-cli' } }];
  return measure(ctx, defs, ctx.clients, ctx.plan.repeats * 2, async (c) => ({ version: await timed(c, ['version'], { discardStdout: true }) }), { warmup: true });
}

/** A bare GET /_ping round trip on a fresh connection, from this process. */
export function ping(ctx: Ctx): Promise<MetricResult[]> {
  const defs: MetricDef[] = [{ id: 'ping', title: 'GET /_ping round trip', unit: 'ms', better: 'lower' }];
  return measure(ctx, defs, perEngine(ctx.clients), ctx.plan.pingCount, async (c) => ({ ping: await pingOnce(c.engine.socket) }), { warmup: true });
}


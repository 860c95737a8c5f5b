/**
 * berth benchmark (issue 7): berthd side by side with dockerd and Podman on this machine.
 *
 *   node dist/bench/run.js [--quick] [--engines docker,podman,berth] [--only run,lifecycle,...] [--out DIR]
 *
 *   --many N   containers for the berth-only "many idle containers" figure (full: 1000, quick: 0)
 *
 * Environment: BERTH_BENCH_NET_OCTET (or BERTH_TEST_NET_OCTET) = N gives the bridges 10.N.25x.0/24;
 * BERTH_BENCH_DOCKER_CLI = the docker CLI that drives the engines (default /usr/local/bin/docker;
 * `none`, or none installed, in quick mode: berth only, through its own CLI).
 *
 * Starts each engine with its own data root, socket and bridge under a fresh /tmp/berth-bench-*
 * directory, imports the same busybox rootfs into each, drives every engine with the docker CLI
 * (/usr/local/bin/docker, DOCKER_HOST=<socket>) and berthd also with berth's own CLI, prints a
 * table (median, min–max, ratio to Docker, target) and writes results.json, table.txt, table.md and
 * chart.svg into bench/results/<timestamp>/. Everything it started is stopped and removed at the end,
 * also on Ctrl-C. Exits 1 when a figure could not be measured or cleanup failed (never for slowness).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { available, startBerth, startDocker, startPodman, type Engine, type EngineName } from './lib/engines.js';
import * as F from './lib/figures.js';
import { restoreFirewall, snapshotFirewall } from './lib/host-net.js';
import { run, runOk } from './lib/proc.js';
import { freePort, startRegistry, type Registry } from './lib/registry.js';
import { markdown, svg, table, verdict, type MetricResult } from './lib/report.js';

const GROUPS: Record<string, (ctx: F.Ctx) => Promise<MetricResult[]>> = {
  run: F.runRm, runbusy: F.runRmBusy, lifecycle: F.lifecycle, exec: F.execLatency, version: F.version, ping: F.ping, listing: F.listing,
  memory: F.memory, many: F.many, pull: F.pullPush, build: F.build, logs: F.logs, port: F.port,
};

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'berth') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: cannot find the berth checkout');
    dir = up;
  }
}

interface Args {
  quick: boolean;
  engines: EngineName[] | undefined;
  only: string[] | undefined;
  out: string | undefined;
  many: number | undefined;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, engines: undefined, only: undefined, out: undefined, many: undefined };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    if (k === '--quick') a.quick = true;
    else if (k === '--engines') a.engines = val().split(',').filter(Boolean) as EngineName[];
    else if (k === '--only') a.only = val().split(',').filter(Boolean);
    else if (k === '--out') a.out = val();
    else if (k === '--many') a.many = Number(val());
    else if (k === '-h' || k === '--help') {
      console.log('usage: node dist/bench/run.js [--quick] [--engines docker,podman,berth] [--only ' + Object.keys(GROUPS).join(',') + '] [--out DIR] [--many N]');
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  for (const e of a.engines ?? []) if (!['docker', 'podman', 'berth'].includes(e)) throw new Error(`unknown engine ${e}`);
  for (const g of a.only ?? []) if (!GROUPS[g]) throw new Error(`unknown figure group ${g} (have ${Object.keys(GROUPS).join(', ')})`);
  return a;
}

function plan(quick: boolean): F.Plan {
  const MB = 1024 * 1024;
  return quick
    ? { quick, repeats: 3, heavyRepeats: 1, memContainers: 5, manyContainers: 0, psCounts: [5, 20], layerBytes: 2 * MB, buildBytes: 1e6, logBytes: 5 * MB, portBytes: 64 * MB, pingCount: 50 }
    : { quick, repeats: 10, heavyRepeats: 3, memContainers: 50, manyContainers: 1000, psCounts: [50, 500], layerBytes: 50 * MB, buildBytes: 10e6, logBytes: 100 * MB, portBytes: 1024 * MB, pingCount: 200 };
}

const t0 = Date.now();
function log(msg: string): void {
  process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (engines create mounts, bridges and namespaces)');
  const repoRoot = findRepoRoot();
  const p = plan(args.quick);
  if (args.many !== undefined) p.manyContainers = args.many;
  const octet = Number(process.env['BERTH_BENCH_NET_OCTET'] ?? process.env['BERTH_TEST_NET_OCTET'] ?? 215);
  if (!Number.isInteger(octet) || octet < 1 || octet > 254) throw new Error('BERTH_BENCH_NET_OCTET must be 1..254');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d\d\dZ$/, 'Z');
  const outDir = args.out ?? join(repoRoot, 'bench/results', stamp + (args.quick ? '-quick' : ''));
  const work = realpathSync(await mkdtemp('/tmp/berth-bench-'));
  const fw = await snapshotFirewall();
  const engines: Engine[] = [];
  const clients: F.Client[] = [];
  const registries: Registry[] = [];
  const problems: string[] = [];
  let cleaned = false;

  const cleanupAll = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const e of engines.reverse()) {
      log(`stopping ${e.name}`);
      const c = clients.find((x) => x.engine === e && x.id !== 'berth-cli');
      problems.push(...(await e.stop(async () => (c ? F.removeAll(c) : undefined))));
    }
    for (const r of registries) await r.stop().catch((e: Error) => problems.push(`registry: ${e.message}`));
    const fixed = await restoreFirewall(fw);
    if (fixed.length) log(`firewall: ${fixed.join('; ')}`);
    await rm(work, { recursive: true, force: true }).catch((e: Error) => problems.push(`rm ${work}: ${e.message}`));
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: MetricResult[] = [];
  const meta: Record<string, unknown> = {
    started: new Date().toISOString(), quick: args.quick, plan: p, node: process.version, kernel: release(),
    cpus: cpus().length, loadavgStart: loadavg(),
  };
  try {
    // engines
    let names: EngineName[] = args.engines ?? ['docker', 'podman', 'berth'];
    const missing: EngineName[] = [];
    for (const n of names) if (!(await available(n))) missing.push(n);
    if (missing.length) {
      if (!args.quick && !args.engines) throw new Error(`not installed: ${missing.join(', ')} (run bash bench/setup.sh, or pass --engines)`);
      log(`skipping (not installed): ${missing.join(', ')}`);
      names = names.filter((n) => !missing.includes(n));
    }
    // the one client every engine is driven by; without it (a bare CI machine) quick mode measures
    // berth through its own CLI only
    const wanted = process.env['BERTH_BENCH_DOCKER_CLI'];
    const dockerCli = wanted === 'none' ? undefined : [wanted, '/usr/local/bin/docker'].find((x): x is string => !!x && existsSync(x));
    if (!dockerCli) {
      if (!args.quick) throw new Error('the docker CLI 28 is expected at /usr/local/bin/docker (or set BERTH_BENCH_DOCKER_CLI)');
      if (names.some((n) => n !== 'berth')) log(`no docker CLI: measuring berth only, through its own CLI`);
      names = names.filter((n) => n === 'berth');
    }
    const haveRegistry = (await run('sh', ['-c', 'command -v docker-registry'])).code === 0;
    const regPorts = [await freePort(), await freePort()];
    const insecure = regPorts.map((x) => `127.0.0.1:${x}`);
    log(`work directory ${work}; engines ${names.join(', ')}; results -> ${outDir}`);
    const tar = join(work, 'busybox.tar');
    await runOk('bash', [join(repoRoot, 'scripts/make-busybox-rootfs.sh'), tar]);
    // berth's own CLI is measured as installed: the wrapper scripts/setup.sh writes (bundle + launcher)
    const binDir = join(work, 'bin');
    await runOk('bash', ['-c', '. "$0/scripts/lib/cli-wrappers.sh" && write_cli_wrappers "$0" "$1" "$2"', repoRoot, binDir, process.execPath]);
    const third: Record<EngineName, number> = { berth: 250, docker: 251, podman: 252 };
    for (const n of names) {
      const o = { base: work, net: { octet, third: third[n] }, insecureRegistries: insecure, repoRoot };
      log(`starting ${n}`);
      const e = n === 'docker' ? await startDocker(o) : n === 'podman' ? await startPodman(o) : await startBerth(o);
      engines.push(e);
      const dockerEnv = { DOCKER_HOST: e.host, DOCKER_CONFIG: join(work, 'docker-config'), DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false', DOCKER_CONTEXT: undefined, BERTH_HOST: undefined };
      const berthCli: F.Client = { id: 'berth-cli', engine: e, bin: join(binDir, 'berth'), pre: ['-H', e.host], env: { BERTH_HOST: undefined } };
      const c: F.Client = dockerCli ? { id: n, engine: e, bin: dockerCli, pre: [], env: dockerEnv } : { ...berthCli, id: 'berth' };
      clients.push(c);
      const v = await F.cliOk(c, ['version', '--format', '{{.Server.Version}} (API {{.Server.APIVersion}})']);
      e.version = v.stdout.trim();
      await F.cliOk(c, ['import', '--change', 'CMD ["sh"]', tar, 'busybox:latest'], { timeoutMs: 120_000 });
      if (n === 'berth' && dockerCli) clients.push(berthCli);
      log(`  ${n} ${e.version}, bridge ${e.bridge} ${e.subnet}`);
    }
    meta['engines'] = Object.fromEntries(engines.map((e) => [e.name, e.version]));
    meta['client'] = dockerCli ? (await run(dockerCli, ['version', '--format', '{{.Client.Version}}'], { env: { DOCKER_HOST: 'unix:///nonexistent' } })).stdout.trim() : 'berth CLI only';
    if (clients.length === 0) throw new Error('no engine to measure');
    const ctx: F.Ctx = { plan: p, work, clients, registry: undefined as unknown as Registry, pushRegistry: undefined as unknown as Registry, log };
    if (haveRegistry) {
      ctx.registry = await startRegistry(join(work, 'registry'), regPorts[0]!);
      registries.push(ctx.registry);
      ctx.pushRegistry = await startRegistry(join(work, 'registry-push'), regPorts[1]!);
      registries.push(ctx.pushRegistry);
    }
    for (const [g, fn] of Object.entries(GROUPS)) {
      if (args.only && !args.only.includes(g)) continue;
      if (g === 'pull' && !haveRegistry) {
        log('pull/push: docker-registry not installed, skipped');
        continue;
      }
      log(`figure group ${g}`);
      try {
        results.push(...(await fn(ctx)));
      } catch (e) {
        problems.push(`${g}: ${(e as Error).message}`);
        log(`  ${g} failed: ${(e as Error).message.split('\n').slice(0, 5).join(' | ')}`);
      }
    }
  } finally {
    meta['loadavgEnd'] = loadavg();
    await cleanupAll();
  }
  meta['finished'] = new Date().toISOString();
  meta['seconds'] = Math.round((Date.now() - t0) / 1000);

  const ids = clients.map((c) => c.id);
  const txt = table(results, ids);
  console.log(txt);
  for (const r of results) for (const [c, o] of Object.entries(r.byClient)) if ('error' in o) problems.push(`${r.metric.id}/${c}: ${o.error.split('\n')[0]}`);
  const missed = results.filter((r) => r.metric.target && verdict(r, r.metric.target.client ?? 'berth') === 'missed').map((r) => r.metric.id);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'results.json'), JSON.stringify({ meta, clients: ids, results, missed, problems }, null, 2) + '\n');
  await writeFile(join(outDir, 'table.txt'), txt + '\n');
  await writeFile(join(outDir, 'table.md'), markdown(results, ids) + '\n');
  await writeFile(join(outDir, 'chart.svg'), svg(results, ids, `berth bench ${stamp}${args.quick ? ' (quick)' : ''}: ${Object.entries(meta['engines'] as Record<string, string>).map(([k, v]) => `${k} ${v}`).join(', ')}`));
  log(`targets missed: ${missed.length ? missed.join(', ') : 'none'}`);
  log(`wrote ${outDir}/{results.json,table.txt,table.md,chart.svg} in ${meta['seconds']} s`);
  if (problems.length) {
    log('problems:\n  ' + problems.join('\n  '));
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);

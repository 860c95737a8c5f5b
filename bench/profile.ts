/**
 * Profiles berthd's container start path (issue 7):
 *
 *   node dist/bench/profile.js [--runs N] [--out DIR]
 *
 * Starts berthd under `strace -f -ttt` (process events only, via seccomp-bpf so untraced syscalls
 * run at full speed) and with `node --cpu-prof`, runs `docker run --rm busybox true` N times on the
 * default bridge and N times with --network none, stops the daemon (which writes the profile), and
 * prints: where berthd's CPU time went (self time by function and by file), and for one run of each
 * kind the timeline of the processes berthd started (offset from the request, duration, argv).
 * Raw files (strace.txt, *.cpuprofile) stay in DIR (default bench/results/profile-<timestamp>).
 */
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startBerth } from './lib/engines.js';
import { cliOk, removeAll, type Client } from './lib/figures.js';
import { restoreFirewall, snapshotFirewall } from './lib/host-net.js';
import { runOk } from './lib/proc.js';
import { summarize } from './lib/report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time per function and per file from a .cpuprofile (V8 sampling profile). */
export function summarizeProfile(p: CpuProfile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    total += us;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') idle += us;
    const url = n.callFrame.url.replace(/^file:\/\/.*\/dist\//, '').replace(/^node:/, 'node:');
    const key = `${name} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + us);
    const f = url || `(${name})`;
    file.set(f, (file.get(f) ?? 0) + us);
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>): string =>
    [...m.entries()]
      .filter(([k]) => !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `  ${(us / 1000).toFixed(1).padStart(8)} ms ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return [
    `profile: ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s wall, ${(busy / 1000).toFixed(0)} ms on CPU (${((busy / total) * 100).toFixed(1)}% busy)`,
    'self time by function:', rows(fn), 'self time by file:', rows(file),
  ].join('\n');
}

interface Proc {
  pid: number;
  start?: number;
  end?: number;
  argv?: string;
}

/** Children berthd started between t0 and t1 (epoch seconds), from `strace -f -ttt -e trace=process` output. */
export function straceTimeline(text: string, t0: number, t1: number): string {
  const procs = new Map<number, Proc>();
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const t = Number(m[2]);
    const rest = m[3]!;
    const p = procs.get(pid) ?? { pid };
    procs.set(pid, p);
    const ex = /^execve\("([^"]*)", \[(.*?)\](?:, 0x[0-9a-f]+ \/\* \d+ vars \*\/)?\) = 0/.exec(rest);
    if (ex) {
      // the first successful execve names the process; keep the earliest start
      p.start ??= t;
      p.argv ??= ex[2]!.replace(/"/g, '').replace(/, /g, ' ').slice(0, 150);
    } else if (/^\+\+\+ exited with|^\+\+\+ killed by|^exit_group\(/.test(rest)) {
      p.end = t;
    } else if (/^execve\(/.test(rest) && !p.start) {
      p.start = t; // failed execve (PATH search); a later one succeeds
    }
  }
  const rows = [...procs.values()].filter((p) => p.argv && p.start !== undefined && p.start >= t0 && p.start <= t1).sort((a, b) => a.start! - b.start!);
  return rows
    .map((p) => `  +${((p.start! - t0) * 1000).toFixed(0).padStart(5)} ms  ${p.end ? ((p.end - p.start!) * 1000).toFixed(0).padStart(5) + ' ms' : '  (alive)'}  ${p.argv}`)
    .join('\n');
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const runs = Number(argv[argv.indexOf('--runs') + 1] ?? 0) || 20;
  const root = repoRoot();
  const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1]! : join(root, 'bench/results', `profile-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(out, { recursive: true });
  const work = realpathSync(await mkdtemp('/tmp/berth-bench-'));
  const fw = await snapshotFirewall();
  const octet = Number(process.env['BERTH_BENCH_NET_OCTET'] ?? process.env['BERTH_TEST_NET_OCTET'] ?? 215);
  const straceFile = join(out, 'strace.txt');
  const e = await startBerth({
    base: work, net: { octet, third: 249 }, insecureRegistries: [], repoRoot: root,
    wrap: ['strace', '-f', '--seccomp-bpf', '-ttt', '-e', 'trace=execve,exit_group', '-q', '-o', straceFile],
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', out],
  });
  const c: Client = { id: 'berth', engine: e, bin: '/usr/local/bin/docker', pre: [], env: { DOCKER_HOST: e.host, DOCKER_CONFIG: join(work, 'docker-config') } };
  const marks: Record<string, [number, number]> = {};
  const times: Record<string, number[]> = { bridge: [], none: [] };
  try {
    const tar = join(work, 'busybox.tar');
    await runOk('bash', [join(root, 'scripts/make-busybox-rootfs.sh'), tar]);
    await cliOk(c, ['import', '--change', 'CMD ["sh"]', tar, 'busybox:latest']);
    for (const [kind, extra] of [['bridge', []], ['none', ['--network', 'none']]] as const) {
      await cliOk(c, ['run', '--rm', ...extra, 'busybox', 'true']); // warm-up
      for (let i = 0; i < runs; i++) {
        const t0 = Date.now() / 1000;
        const r = await cliOk(c, ['run', '--rm', ...extra, 'busybox', 'true']);
        times[kind]!.push(r.ms);
        if (i === Math.floor(runs / 2)) marks[kind] = [t0, Date.now() / 1000];
      }
    }
  } finally {
    const problems = await e.stop(() => removeAll(c));
    await restoreFirewall(fw);
    await rm(work, { recursive: true, force: true });
    if (problems.length) console.error('cleanup problems:\n  ' + problems.join('\n  '));
  }
  for (const k of Object.keys(times)) {
    const s = summarize(times[k]!);
    console.log(`run --rm true (${k}): median ${s.median.toFixed(0)} ms, min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)} (n=${s.n}, under strace)`);
  }
  const prof = readdirSync(out).filter((f) => f.endsWith('.cpuprofile'));
  for (const f of prof) console.log(summarizeProfile(JSON.parse(readFileSync(join(out, f), 'utf8')) as CpuProfile));
  const st = readFileSync(straceFile, 'utf8');
  for (const [k, [t0, t1]] of Object.entries(marks)) {
    console.log(`processes berthd started during one run --rm (${k}), ${((t1 - t0) * 1000).toFixed(0)} ms end to end (client's view):`);
    console.log(straceTimeline(st, t0, t1));
  }
  console.log(`raw data in ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  main().catch((e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  });
}

/**
 * What a network test may leave behind, listed so a test can compare before and after: the links of
 * its own bridges (and the veths enslaved to them), host addresses in its subnets, iptables rules that
 * mention its subnets, ports or isolation chain, and the daemon's namespace files. Only things that
 * belong to the test are listed, so concurrent runs of other checkouts do not disturb the comparison.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import assert from 'node:assert/strict';

import { cleanup, importBusybox, runCommand, startDaemon, type TestDaemon } from './harness.js';

/**
 * A probe outside every container network: network namespace `ns` behind a veth (`hostIf` on the
 * host with `hostAddr`/30, `eth0` inside with `target`/30). `defaultRoute`: the probe answers
 * anything routed back through the host; without it, only its own /30 (an answer then proves the
 * container's traffic left masqueraded). Asserts every step; the caller deletes `ns` (the veth goes
 * with it).
 */
export async function addProbeNamespace(ns: string, hostIf: string, hostAddr: string, target: string, opts: { defaultRoute?: boolean } = {}): Promise<void> {
  const steps = [
    ['netns', 'add', ns],
    ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
    ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf],
    ['link', 'set', hostIf, 'up'],
    ['-n', ns, 'addr', 'add', `${target}/30`, 'dev', 'eth0'],
    ['-n', ns, 'link', 'set', 'eth0', 'up'],
    ...(opts.defaultRoute ? [['-n', ns, 'link', 'set', 'lo', 'up'], ['-n', ns, 'route', 'add', 'default', 'via', hostAddr]] : []),
  ];
  for (const args of steps) {
    const r = await runCommand('ip', args);
    assert.equal(r.code, 0, `ip ${args.join(' ')}: ${r.stderr}`);
  }
}

/** What belongs to one test. */
export interface NetScope {
  /** Bridge names the test's daemon uses (default bridge, user networks created with a bridge name). */
  bridges: string[];
  /** Subnet prefixes such as `10.205.12.` (a trailing dot keeps 10.205.1. from matching 10.205.12.). */
  subnets: string[];
  /** Host ports the test publishes. */
  ports?: number[];
  /** The daemon's data root (namespace files, isolation chain name). */
  dataRoot: string;
}

/** A listing of a test's network state. */
export interface NetSnapshot {
  links: string[];
  addrs: string[];
  rules: string[];
  netns: string[];
}

/** The daemon's inter-bridge isolation chain (network-manager.ts names it after the data root). */
export function isoChain(dataRoot: string): string {
  return `BERTH-ISO-${createHash('sha256').update(dataRoot).digest('hex').slice(0, 8)}`;
}

/** List what in `scope` exists right now. */
export async function netSnapshot(scope: NetScope): Promise<NetSnapshot> {
  const ours = (n: string | undefined): boolean => n !== undefined && scope.bridges.includes(n);
  const links = (JSON.parse((await runCommand('ip', ['-j', 'link'])).stdout) as Array<{ ifname: string; master?: string }>)
    .filter((l) => ours(l.ifname) || ours(l.master))
    .map((l) => (l.master ? `${l.ifname}>${l.master}` : l.ifname))
    .sort();
  const inSubnet = (ip: string): boolean => scope.subnets.some((s) => ip.startsWith(s));
  const addrs = (JSON.parse((await runCommand('ip', ['-j', '-4', 'addr'])).stdout) as Array<{ ifname: string; addr_info?: Array<{ local: string; prefixlen: number }> }>)
    .flatMap((l) => (l.addr_info ?? []).map((a) => ({ dev: l.ifname, ip: a.local, len: a.prefixlen })))
    .filter((a) => inSubnet(a.ip))
    .map((a) => `${a.ip}/${a.len} ${a.dev}`)
    .sort();
  const chain = isoChain(scope.dataRoot);
  const portRe = (scope.ports ?? []).map((p) => new RegExp(`--dports? (\\S*[,:])?${p}([,: ]|$)|:${p}( |$)`));
  const rules = (await runCommand('iptables-save', [])).stdout
    .split('\n')
    .filter((l) => !l.startsWith('#') && (l.includes(chain) || scope.subnets.some((s) => l.includes(s)) || portRe.some((r) => r.test(l))))
    .sort();
  const dir = join(scope.dataRoot, 'netns');
  const netns = existsSync(dir) ? readdirSync(dir).sort() : [];
  return { links, addrs, rules, netns };
}

/**
 * A test daemon whose default bridge is `bridge` on `bip`, with busybox imported, and the network
 * state of `scope` as it was before the daemon started (for {@link finishScopedDaemon}).
 */
export async function startScopedDaemon(scope: NetScope, bridge: string, bip: string): Promise<{ h: TestDaemon; initial: NetSnapshot }> {
  // taken before the daemon exists, so what its start leaves behind counts too (the data root, and
  // with it the isolation chain's name, is not known yet: a fresh one has no chain and no netns)
  const initial = await netSnapshot({ ...scope, dataRoot: '/nonexistent/berth-test-not-started' });
  const h = await startDaemon({ args: ['--bridge', bridge, '--bip', bip] });
  scope.dataRoot = h.dataRoot;
  await importBusybox(h);
  return { h, initial };
}

/**
 * Remove every container of `h`, run `extra` (the test's own networks, namespaces, links), stop the
 * daemon (berthd keeps its bridges while it runs, as Docker keeps docker0, and lets them go at
 * shutdown), clean up, and assert that the network state of `scope` is back to `initial`.
 */
export async function finishScopedDaemon(h: TestDaemon, scope: NetScope, initial: NetSnapshot, extra: () => Promise<void> = async () => undefined): Promise<void> {
  await h.cli(['rm', '-f', ...(await h.cliOk(['ps', '-aq'])).split(/\s+/).filter(Boolean)]).catch(() => undefined);
  await extra().catch(() => undefined);
  await h.stop();
  const left = await netSnapshot(scope);
  await cleanup(h);
  assert.deepEqual(left, initial, 'network state left behind');
}

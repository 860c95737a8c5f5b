/**
 * The fast attach path (issue 7): on a bridge whose rules netavark has already set up (kept while
 * berthd runs), a container without published ports gets its veth, address and route from one
 * iproute2 batch instead of a netavark run. These tests check that the fast path is taken (the host
 * veth is `vb<id>`) and that it connects like netavark's: container↔container and the gateway,
 * containers set up by netavark, another container's published port, outbound NAT, `container:`
 * joiners; inspect; no leftovers after rm; a berthd kill -9 + restart; disconnect/connect.
 * Each run uses its own bridge names and 10.<BERTH_TEST_NET_OCTET>.x.0/24 subnets; the egress
 * probe is a namespace this test creates.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, testNetOctet, waitFor, type TestDaemon } from './harness.js';
import { addProbeNamespace, finishScopedDaemon, startScopedDaemon, type NetScope, type NetSnapshot } from './net-leaks.js';

const NETAVARK = '/usr/lib/podman/netavark';
const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), existsSync(NETAVARK) ? undefined : 'netavark not installed');
const tag = String(process.pid % 1000);
const octet = testNetOctet();
const third = 60 + (process.pid % 38);
const bridge = `bf${tag}d`;
const gateway = `10.${octet}.${third}.1`;
const port = 21000 + (process.pid % 1000);
const probeNs = `bf${tag}probe`;
let h: TestDaemon;
let scope: NetScope;
let initial: NetSnapshot;

interface Inspected {
  State: { Status: string };
  NetworkSettings: { SandboxKey: string; IPAddress: string; MacAddress: string; Gateway: string; IPPrefixLen: number; Networks: Record<string, { IPAddress: string; MacAddress: string; Gateway: string }> };
}

async function inspect(id: string): Promise<Inspected> {
  return (JSON.parse(await h.cliOk(['inspect', id])) as Inspected[])[0]!;
}

/** The host link of a fast-path endpoint, with the bridge it is enslaved to ('' when none); undefined when absent. */
async function hostVeth(id: string): Promise<string | undefined> {
  const r = await runCommand('ip', ['-j', 'link', 'show', `vb${id.slice(0, 13)}`]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as Array<{ master?: string }>)[0]?.master ?? '';
}

/** eth0 in the container's namespace: index, peer index, MAC, IPv4 addresses, default route. */
async function stackOf(id: string): Promise<{ ifindex: number; peer: number; mac: string; v4: string[]; route: string }> {
  const key = (await inspect(id)).NetworkSettings.SandboxKey;
  const r = await runCommand('nsenter', [`--net=${key}`, 'ip', '-j', 'addr', 'show', 'eth0']);
  assert.equal(r.code, 0, r.stderr);
  const l = (JSON.parse(r.stdout) as Array<{ ifindex: number; link_index: number; address: string; addr_info: Array<{ family: string; local: string; prefixlen: number }> }>)[0]!;
  const route = (await runCommand('nsenter', [`--net=${key}`, 'ip', 'route', 'show', 'default'])).stdout.trim();
  return { ifindex: l.ifindex, peer: l.link_index, mac: l.address, v4: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), route };
}

async function ping(id: string, target: string): Promise<boolean> {
  return (await h.cli(['exec', id, 'ping', '-c1', '-W2', target])).code === 0;
}

before(async () => {
  if (skip) return;
  scope = { bridges: [bridge, `bf${tag}ph`, `bf${tag}u`], subnets: [0, 1, 2].map((i) => `10.${octet}.${third + i}.`), ports: [port], dataRoot: '' };
  ({ h, initial } = await startScopedDaemon(scope, bridge, `${gateway}/24`));
});

after(async () => {
  if (!h) return;
  await finishScopedDaemon(h, scope, initial, async () => {
    await runCommand('ip', ['netns', 'del', probeNs]).catch(() => undefined);
    await runCommand('ip', ['link', 'del', `bf${tag}ph`]).catch(() => undefined);
    await h.cli(['network', 'rm', `bf${tag}u`]).catch(() => undefined);
  });
});

test('fast path on the default bridge: containers, gateway, netavark containers, a published port, NAT and container: joiners all connect; inspect matches the stack', { skip }, async () => {
  // the bridge's first container goes through netavark (it makes the bridge and its rules) and publishes a port
  const web = (await h.cliOk(['run', '-d', '-p', `${port}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'])).trim();
  assert.equal(await hostVeth(web), undefined, 'a container with a published port is set up by netavark');
  const a = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  const b = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  for (const id of [a, b]) assert.equal(await hostVeth(id), bridge, `${id.slice(0, 12)} took the fast path onto ${bridge}`);

  // inspect shows what the namespace has, in Docker's shapes
  const va = await inspect(a);
  const sa = await stackOf(a);
  assert.match(va.NetworkSettings.IPAddress, new RegExp(`^10\\.${octet}\\.${third}\\.\\d+$`));
  assert.deepEqual(sa.v4, [`${va.NetworkSettings.IPAddress}/24`]);
  assert.equal(va.NetworkSettings.IPPrefixLen, 24);
  assert.equal(va.NetworkSettings.Gateway, gateway);
  assert.equal(va.NetworkSettings.MacAddress, sa.mac);
  assert.equal(sa.mac, `02:42:${va.NetworkSettings.IPAddress.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`);
  assert.match(sa.route, new RegExp(`^default via ${gateway.replace(/\./g, '\\.')} dev eth0 `));
  assert.deepEqual(va.NetworkSettings.Networks['bridge'] && { ip: va.NetworkSettings.Networks['bridge'].IPAddress, mac: va.NetworkSettings.Networks['bridge'].MacAddress, gw: va.NetworkSettings.Networks['bridge'].Gateway }, { ip: va.NetworkSettings.IPAddress, mac: sa.mac, gw: gateway });
  const nsAutoconf = await runCommand('nsenter', [`--net=${va.NetworkSettings.SandboxKey}`, 'cat', '/proc/sys/net/ipv6/conf/eth0/autoconf']);
  if (nsAutoconf.code === 0) assert.equal(nsAutoconf.stdout.trim(), '0', 'IPv6 autoconf is off on eth0, as netavark sets it');

  // fast ↔ fast, fast → gateway, fast ↔ netavark
  const ipB = (await inspect(b)).NetworkSettings.IPAddress;
  const ipWeb = (await inspect(web)).NetworkSettings.IPAddress;
  assert.ok(await ping(a, ipB), 'a reaches b');
  assert.ok(await ping(b, va.NetworkSettings.IPAddress), 'b reaches a');
  assert.ok(await ping(a, gateway), 'a reaches the gateway');
  assert.ok(await ping(a, ipWeb), 'a reaches the netavark container');
  assert.equal((await h.cli(['exec', web, 'ping', '-c1', '-W2', ipB])).code, 0, 'the netavark container reaches b');

  // another container's published port, through the host address (DNAT + hairpin masquerade)
  let served = '';
  await waitFor(async () => {
    // busybox's static wget crashes on host:port URLs here; nc speaks the request itself
    const r = await h.cli(['exec', a, 'sh', '-c', `printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${gateway} ${port}`]);
    served = r.stdout.trim().split('\n').pop()!.trim();
    return served === web.slice(0, 12);
  }, 10_000);
  assert.equal(served, web.slice(0, 12));

  // outbound NAT: a probe namespace that only knows a route to the host's end of its own /30
  // answers only when the container's traffic leaves masqueraded
  const ph = `bf${tag}ph`;
  const hostAddr = `10.${octet}.${third + 1}.1`;
  const target = `10.${octet}.${third + 1}.2`;
  await addProbeNamespace(probeNs, ph, hostAddr, target);
  assert.ok(await ping(a, target), 'a reaches an outside address through the masquerade');
  await runCommand('ip', ['netns', 'del', probeNs]);

  // container:<fast container> joins its stack
  const j = await h.cli(['run', '--rm', '--network', `container:${a}`, 'busybox', 'sh', '-c', `ip -4 -o addr show eth0 && ping -c1 -W2 ${ipB} >/dev/null && echo reached`]);
  assert.equal(j.code, 0, j.stdout + j.stderr);
  assert.match(j.stdout, new RegExp(` inet ${va.NetworkSettings.IPAddress.replace(/\./g, '\\.')}/24 `));
  assert.match(j.stdout, /reached\n$/);

  await h.cliOk(['rm', '-f', web, a, b]);
});

test('rm of fast-path containers (run --rm, stop + rm, rm -f) leaves no veth, namespace file or attachment record', { skip }, async () => {
  const keep = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim(); // the bridge is kept by now anyway
  const once = await h.cli(['run', '--rm', 'busybox', 'sh', '-c', `ping -c1 -W2 ${gateway} >/dev/null && echo ok`]);
  assert.equal(once.code, 0, once.stdout + once.stderr);
  assert.equal(once.stdout.trim(), 'ok');
  const s = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  const f = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  for (const id of [keep, s, f]) assert.equal(await hostVeth(id), bridge);
  const ipS = (await inspect(s)).NetworkSettings.IPAddress;
  await h.cliOk(['stop', '-t', '1', s]);
  assert.equal((await inspect(s)).NetworkSettings.IPAddress, '', 'a stopped container has no address');
  await h.cliOk(['rm', s]);
  await h.cliOk(['rm', '-f', f]);
  // the veth's deletion finishes in the background (an RCU grace period in the kernel)
  // the veth and the namespace file go in the background (the veth's deletion waits for an RCU grace
  // period in the kernel); the record goes at once
  for (const id of [s, f]) {
    assert.equal(existsSync(join(h.dataRoot, 'networks', 'attachments', `${id}.json`)), false, 'attachment record removed');
    await waitFor(async () => (await hostVeth(id)) === undefined && !existsSync(join(h.dataRoot, 'netns', id)), 10_000);
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').includes(join(h.dataRoot, 'netns', id));
    assert.equal(mounted, false, 'namespace unmounted');
  }
  // the freed address is not answered by anyone any more
  assert.equal(await ping(keep, ipS), false);
  await h.cliOk(['rm', '-f', keep]);
  await waitFor(async () => (await hostVeth(keep)) === undefined, 10_000);
  const links = (JSON.parse((await runCommand('ip', ['-j', 'link', 'show', 'master', bridge])).stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
  assert.deepEqual(links.filter((l) => l.startsWith('vb')), [], 'no fast-path veth left on the bridge');
});

test('berthd kill -9 + restart with a fast-path container running: same stack, the network rules come back, rm cleans up', { skip }, async () => {
  const a = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  const b = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  for (const id of [a, b]) assert.equal(await hostVeth(id), bridge);
  const before = await stackOf(a);
  const subnet = `10.${octet}.${third}.0/24`;
  await h.kill9();
  // while berthd is down, lose the network's forward rule
  const fwd = ['-t', 'filter', '-D', 'NETAVARK_FORWARD', '-s', subnet, '-j', 'ACCEPT'];
  assert.equal((await runCommand('iptables', fwd)).code, 0, 'the forward rule of the network was there');
  await h.restart();
  const rules = (await runCommand('iptables-save', ['-t', 'filter'])).stdout;
  assert.match(rules, new RegExp(`-A NETAVARK_FORWARD -s ${subnet.replace(/\./g, '\\.')} -j ACCEPT`), 'the restart restored the network rule');
  assert.deepEqual(await stackOf(a), before, 'the container kept its interface, MAC and address');
  assert.equal(await hostVeth(a), bridge);
  assert.ok(await ping(a, (await inspect(b)).NetworkSettings.IPAddress), 'a reaches b after the restart');
  assert.ok(await ping(a, gateway));
  // after the restart the bridge is kept again: a new container takes the fast path
  const c = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  assert.equal(await hostVeth(c), bridge, 'a container started after the restart took the fast path');
  assert.ok(await ping(c, before.v4[0]!.split('/')[0]!));
  await h.cliOk(['rm', '-f', a, b, c]);
  for (const id of [a, b, c]) await waitFor(async () => (await hostVeth(id)) === undefined, 10_000);
});

test('network disconnect and connect of a fast-path container', { skip }, async () => {
  const a = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  const b = (await h.cliOk(['run', '-d', 'busybox', 'sleep', '600'])).trim();
  assert.equal(await hostVeth(a), bridge);
  const ipA = (await inspect(a)).NetworkSettings.IPAddress;
  await h.cliOk(['network', 'disconnect', 'bridge', a]);
  assert.equal(await hostVeth(a), undefined, 'the host veth is gone when disconnect returns');
  const gone = await h.cli(['exec', a, 'ip', 'link', 'show', 'eth0']);
  assert.notEqual(gone.code, 0, 'eth0 is gone from the container');
  assert.equal((await inspect(a)).NetworkSettings.IPAddress, '');
  assert.equal(await ping(b, ipA), false, 'the old address no longer answers');
  await h.cliOk(['network', 'connect', 'bridge', a]);
  assert.equal(await hostVeth(a), bridge, 'connect to the free eth0 took the fast path');
  const v = await inspect(a);
  const s = await stackOf(a);
  assert.deepEqual(s.v4, [`${v.NetworkSettings.IPAddress}/24`]);
  assert.equal(v.NetworkSettings.MacAddress, s.mac);
  assert.match(s.route, /^default via /);
  assert.ok(await ping(a, (await inspect(b)).NetworkSettings.IPAddress), 'a reaches b again');
  assert.ok(await ping(b, v.NetworkSettings.IPAddress), 'b reaches a again');
  const record = JSON.parse(readFileSync(join(h.dataRoot, 'networks', 'attachments', `${a}.json`), 'utf8')) as { endpoints: Record<string, { hostIf?: string }> };
  assert.deepEqual(Object.values(record.endpoints).map((e) => e.hostIf), [`vb${a.slice(0, 13)}`]);
  await h.cliOk(['rm', '-f', a, b]);
  for (const id of [a, b]) await waitFor(async () => (await hostVeth(id)) === undefined, 10_000);
});

test('fast path on a user network with DNS: names and aliases resolve both ways, entries follow the containers, disconnect/connect', { skip }, async () => {
  const net = `bf${tag}u`;
  await h.cliOk(['network', 'create', '--subnet', `10.${octet}.${third + 2}.0/24`, '-o', `com.docker.network.bridge.name=${net}`, net]);
  const netId = (JSON.parse(await h.cliOk(['network', 'inspect', net])) as Array<{ Id: string }>)[0]!.Id;
  const dnsFile = join(h.dataRoot, 'netavark', 'aardvark-dns', netId);
  const entries = (): string[] => (existsSync(dnsFile) ? readFileSync(dnsFile, 'utf8').split('\n').slice(1).filter(Boolean) : []);
  // the network's first container goes through netavark (bridge, rules, aardvark-dns); the next ones do not
  const first = (await h.cliOk(['run', '-d', '--name', `ff${tag}`, '--network', net, 'busybox', 'sleep', '600'])).trim();
  assert.equal(await hostVeth(first), undefined);
  const a = (await h.cliOk(['run', '-d', '--name', `fa${tag}`, '--network', net, '--network-alias', `fal${tag}`, 'busybox', 'sleep', '600'])).trim();
  const b = (await h.cliOk(['run', '-d', '--name', `fb${tag}`, '--network', net, 'busybox', 'sleep', '600'])).trim();
  for (const id of [a, b]) assert.equal(await hostVeth(id), net, `${id.slice(0, 12)} took the fast path onto ${net}`);
  assert.deepEqual(entries().filter((l) => l.startsWith(`${a} `)), [`${a} ${(await inspect(a)).NetworkSettings.IPAddress}  fa${tag},fal${tag},${a.slice(0, 12)}`]);
  const resolves = async (from: string, name: string, ip: string): Promise<boolean> => {
    const r = await h.cli(['exec', from, 'nslookup', name]);
    return r.code === 0 && r.stdout.includes(`Address: ${ip}`);
  };
  const ipA = (await inspect(a)).NetworkSettings.IPAddress;
  const ipB = (await inspect(b)).NetworkSettings.IPAddress;
  await waitFor(() => resolves(b, `fa${tag}`, ipA), 10_000);
  assert.ok(await resolves(first, `fal${tag}`, ipA), 'the netavark container resolves the fast one by alias');
  assert.ok(await resolves(a, `fb${tag}`, ipB), 'fast resolves fast');
  assert.ok(await resolves(a, `ff${tag}`, (await inspect(first)).NetworkSettings.IPAddress), 'fast resolves the netavark container');
  assert.ok(await ping(a, ipB));
  const resolv = await h.cliOk(['exec', a, 'cat', '/etc/resolv.conf']);
  assert.match(resolv, new RegExp(`nameserver 10\\.${octet}\\.${third + 2}\\.1`));
  // disconnect drops the name, connect brings it back (fast again)
  await h.cliOk(['network', 'disconnect', net, b]);
  assert.deepEqual(entries().filter((l) => l.startsWith(`${b} `)), []);
  await h.cliOk(['network', 'connect', net, b]);
  assert.equal(await hostVeth(b), net);
  const ipB2 = (await inspect(b)).NetworkSettings.IPAddress;
  await waitFor(() => resolves(a, `fb${tag}`, ipB2), 10_000);
  // rm drops the entries; with the network empty, the file goes as netavark's teardown removes it
  await h.cliOk(['rm', '-f', a]);
  assert.deepEqual(entries().filter((l) => l.startsWith(`${a} `)), []);
  await h.cliOk(['rm', '-f', b, first]);
  assert.equal(existsSync(dnsFile), false, `aardvark-dns file left: ${entries().join(' | ')}`);
  // network rm right away: it waits for the veths deleted in the background, so the bridge goes too
  await h.cliOk(['network', 'rm', net]);
  for (const id of [a, b]) await waitFor(async () => (await hostVeth(id)) === undefined, 10_000);
  const link = await runCommand('ip', ['link', 'show', net]);
  assert.notEqual(link.code, 0, `bridge ${net} left after network rm: ${link.stdout}`);
});

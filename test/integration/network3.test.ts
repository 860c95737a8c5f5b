/**
 * Networks, part three (issue 6): port ranges (`-p 8000-8002:80-82`, UDP ranges, `-p 80`, `-P`
 * with EXPOSE ranges) as inspect/ps/port show them, `--network container:<name>`, and the errors
 * of connect/disconnect/network rm and of a host port that is taken, with nothing left behind.
 * Each run uses its own bridge names and 10.<BERTH_TEST_NET_OCTET>.x.0/24 subnets; traffic stays on
 * loopback.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, testNetOctet, waitFor, type TestDaemon } from './harness.js';
import { finishScopedDaemon, netSnapshot, startScopedDaemon, type NetScope } from './net-leaks.js';

const NETAVARK = '/usr/lib/podman/netavark';
const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('curl'), existsSync(NETAVARK) ? undefined : 'netavark not installed');
const tag = String(process.pid % 1000);
const octet = testNetOctet();
const third = 10 + (process.pid % 50);
const base = 23000 + (process.pid % 200) * 10;
const P = base; // P..P+2: a TCP range
const Q = base + 4; // Q..Q+1: a UDP range
const R = base + 7; // taken by a host process
const S = base + 8; // taken by another container
const net = `bv${tag}n`;
let h: TestDaemon;
let scope: NetScope;
let initial: Awaited<ReturnType<typeof netSnapshot>>;

type Inspect = Array<{ State: { Status: string }; NetworkSettings: { IPAddress: string; Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> } }>;

async function inspect(id: string): Promise<Inspect[number]> {
  return (JSON.parse(await h.cliOk(['inspect', id])) as Inspect)[0]!;
}

async function hostnameAt(port: number): Promise<string> {
  return (await runCommand('curl', ['-s', '-m', '2', `http://127.0.0.1:${port}/hostname`])).stdout.trim();
}

before(async () => {
  if (skip) return;
  scope = { bridges: [`bv${tag}d`, `bv${tag}n`], subnets: [`10.${octet}.${third}.`, `10.${octet}.${third + 1}.`], ports: [P, P + 1, P + 2, Q, Q + 1, R, S], dataRoot: '' };
  ({ h, initial } = await startScopedDaemon(scope, `bv${tag}d`, `10.${octet}.${third}.1/24`));
});

after(async () => {
  if (!h) return;
  await finishScopedDaemon(h, scope, initial, async () => {
    await h.cli(['network', 'rm', net]);
  });
});

test('port ranges: -p 8000-8002:80-82, a UDP range, -p 80; inspect, ps and port show them as Docker does', { skip }, async () => {
  const id = (
    await h.cliOk([
      'run', '-d', '-p', `127.0.0.1:${P}-${P + 2}:80-82`, '-p', `127.0.0.1:${Q}-${Q + 1}:${Q}-${Q + 1}/udp`, '-p', '83',
      'busybox', 'sh', '-c', 'for p in 80 81 82 83; do httpd -p $p -h /etc; done; exec sleep 600',
    ])
  ).trim();
  const v = await inspect(id);
  for (let i = 0; i < 3; i++) assert.deepEqual(v.NetworkSettings.Ports[`${80 + i}/tcp`], [{ HostIp: '127.0.0.1', HostPort: String(P + i) }]);
  for (let i = 0; i < 2; i++) assert.deepEqual(v.NetworkSettings.Ports[`${Q + i}/udp`], [{ HostIp: '127.0.0.1', HostPort: String(Q + i) }]);
  const random = v.NetworkSettings.Ports['83/tcp'];
  assert.equal(random?.length, 1);
  assert.equal(random[0]!.HostIp, '0.0.0.0');
  const rp = Number(random[0]!.HostPort);
  assert.ok(rp >= 1024 && rp <= 65535, `random host port ${rp}`);
  // every port of the range serves, and so does the random one
  for (const port of [P, P + 1, P + 2, rp]) {
    await waitFor(async () => (await hostnameAt(port)) === id.slice(0, 12), 10_000);
  }
  // one netavark mapping (range 3) for the TCP range: a single rule with the port range
  const rules = (await runCommand('iptables-save', ['-t', 'nat'])).stdout;
  assert.match(rules, new RegExp(`--dport ${P}:${P + 2} `), 'the TCP range is one rule');
  // docker ps folds equal-numbered runs and lists the others one by one
  const ps = (await h.cliOk(['ps', '--filter', `id=${id}`, '--format', '{{.Ports}}'])).trim();
  assert.equal(ps, `127.0.0.1:${Q}-${Q + 1}->${Q}-${Q + 1}/udp, 127.0.0.1:${P}->80/tcp, 127.0.0.1:${P + 1}->81/tcp, 127.0.0.1:${P + 2}->82/tcp, 0.0.0.0:${rp}->83/tcp`);
  const port = (await h.cliOk(['port', id])).trim().split('\n').sort();
  assert.deepEqual(port, [
    `${Q + 1}/udp -> 127.0.0.1:${Q + 1}`, `${Q}/udp -> 127.0.0.1:${Q}`, `80/tcp -> 127.0.0.1:${P}`, `81/tcp -> 127.0.0.1:${P + 1}`, `82/tcp -> 127.0.0.1:${P + 2}`, `83/tcp -> 0.0.0.0:${rp}`,
  ].sort());
  await h.cliOk(['rm', '-f', id]);
  assert.equal(await hostnameAt(P + 1), '', 'the range still serves after rm');
  // ranges of different sizes: Docker's wording, usage exit code, nothing created
  const bad = await h.cli(['run', '-d', '-p', `${P}-${P + 1}:80-82`, 'busybox', 'true']);
  assert.equal(bad.code, 125, bad.stderr);
  assert.match(bad.stderr, new RegExp(`invalid ranges specified for container and host Ports: 80-82 and ${P}-${P + 1}`));
  assert.equal((await h.cliOk(['ps', '-aq'])).trim(), '');
});

test('-P publishes every port of an EXPOSE range (and --expose ranges) on its own free host port', { skip }, async () => {
  const ctx = mkdtempSync(join(tmpdir(), 'berth-expose-'));
  try {
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nEXPOSE 7000-7002 7100/udp\n');
    await h.cliOk(['build', '-t', `bv${tag}expose:1`, ctx], { timeoutMs: 120_000 });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
  const id = (await h.cliOk(['run', '-d', '-P', '--expose', '7200-7201', `bv${tag}expose:1`, 'sleep', '600'])).trim();
  const v = await inspect(id);
  const keys = ['7000/tcp', '7001/tcp', '7002/tcp', '7100/udp', '7200/tcp', '7201/tcp'];
  assert.deepEqual(Object.keys(v.NetworkSettings.Ports).sort(), keys);
  const hostPorts = keys.map((k) => {
    const b = v.NetworkSettings.Ports[k];
    assert.equal(b?.length, 1, k);
    return `${k.split('/')[1]}/${b[0]!.HostPort}`;
  });
  assert.equal(new Set(hostPorts).size, keys.length, `host ports are distinct: ${hostPorts.join(' ')}`);
  const out = await h.cliOk(['port', id]);
  for (const k of keys) assert.match(out, new RegExp(`^${k} -> 0\\.0\\.0\\.0:\\d+$`, 'm'));
  await h.cliOk(['rm', '-f', id]);
  await h.cliOk(['rmi', `bv${tag}expose:1`]);
});

test('--network container:<name> shares the stack: same address, localhost between them; a stopped target is an error', { skip }, async () => {
  const a = (await h.cliOk(['run', '-d', '--name', `va${tag}`, 'busybox', 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/etc'])).trim();
  const ip = (await inspect(a)).NetworkSettings.IPAddress;
  assert.match(ip, new RegExp(`^10\\.${octet}\\.${third}\\.`));
  let r = { code: 1, stdout: '', stderr: '' };
  await waitFor(async () => {
    r = await h.cli(['run', '--rm', '--network', `container:va${tag}`, 'busybox', 'sh', '-c', 'hostname; wget -q -O - http://127.0.0.1:8080/hostname; ip -4 -o addr show eth0']);
    return r.code === 0;
  }, 10_000);
  const [hn, served, addr] = r.stdout.trim().split('\n');
  assert.equal(hn, a.slice(0, 12), 'the joined container has the target hostname');
  assert.equal(served, a.slice(0, 12), "localhost reaches the target's server");
  assert.match(addr ?? '', new RegExp(` inet ${ip.replace(/\./g, '\\.')}/24 `));
  // the same by id
  const byId = await h.cli(['run', '--rm', '--network', `container:${a.slice(0, 12)}`, 'busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/hostname']);
  assert.equal(byId.stdout.trim(), a.slice(0, 12), byId.stderr);
  // options the shared stack cannot take
  const pub = await h.cli(['run', '--rm', '--network', `container:va${tag}`, '-p', `${S}:80`, 'busybox', 'true']);
  assert.notEqual(pub.code, 0);
  assert.match(pub.stderr, /conflicting options: port publishing and the container type network mode/);
  // a target that is not running
  const stopped = (await h.cliOk(['create', '--name', `vs${tag}`, 'busybox', 'true'])).trim();
  const e = await h.cli(['run', '--name', `vj${tag}`, '--network', `container:vs${tag}`, 'busybox', 'true']);
  assert.notEqual(e.code, 0);
  assert.match(e.stderr, new RegExp(`cannot join network of a non running container: ${stopped}`));
  assert.equal((await inspect(`vj${tag}`)).State.Status, 'created');
  const missing = await h.cli(['run', '--rm', '--network', `container:nosuch${tag}`, 'busybox', 'true']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, new RegExp(`No such container: nosuch${tag}`));
  await h.cliOk(['rm', '-f', a, stopped, `vj${tag}`]);
});

test('connect twice, disconnect of a stranger, rm of a network in use: Docker errors', { skip }, async () => {
  await h.cliOk(['network', 'create', '--subnet', `10.${octet}.${third + 1}.0/24`, '-o', `com.docker.network.bridge.name=${net}`, net]);
  const c = (await h.cliOk(['run', '-d', '--name', `vc${tag}`, '--network', net, 'busybox', 'sleep', '600'])).trim();
  const twice = await h.cli(['network', 'connect', net, `vc${tag}`]);
  assert.notEqual(twice.code, 0);
  assert.match(twice.stderr, new RegExp(`endpoint with name vc${tag} already exists in network ${net}`));
  const stranger = await h.cli(['network', 'disconnect', 'bridge', `vc${tag}`]);
  assert.notEqual(stranger.code, 0);
  assert.match(stranger.stderr, new RegExp(`container ${c} is not connected to network bridge`));
  const busy = await h.cli(['network', 'rm', net]);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, new RegExp(`network ${net} id [0-9a-f]{64} has active endpoints`));
  // still attached and working after the refusals
  const v = JSON.parse(await h.cliOk(['network', 'inspect', net])) as Array<{ Containers: Record<string, unknown> }>;
  assert.deepEqual(Object.keys(v[0]!.Containers), [c]);
  await h.cliOk(['rm', '-f', c]);
  // the bridge outlives its last container while the network exists, and goes with the network
  assert.equal((await runCommand('ip', ['link', 'show', net])).code, 0, 'the bridge went with its last container');
  await h.cliOk(['network', 'rm', net]);
  assert.notEqual((await runCommand('ip', ['link', 'show', net])).code, 0, 'the bridge outlived its network');
  assert.equal((await runCommand('iptables-save', [])).stdout.includes(`10.${octet}.${third + 1}.`), false, "the network's rules outlived it");
});

test('a host port in use: clear error, container not started, nothing leaked', { skip }, async () => {
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(R, '127.0.0.1', () => r()));
  try {
    const before = await netSnapshot(scope);
    const r = await h.cli(['run', '-d', '--name', `vh${tag}`, '-p', `127.0.0.1:${R}:80`, 'busybox', 'httpd', '-f', '-p', '80']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`Bind for 127\\.0\\.0\\.1:${R} failed: port is already allocated`));
    assert.equal((await inspect(`vh${tag}`)).State.Status, 'created');
    assert.deepEqual(await netSnapshot(scope), before, 'network state changed by the failed start');
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
  // the same port held by another container
  const first = (await h.cliOk(['run', '-d', '-p', `127.0.0.1:${S}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'])).trim();
  const mid = await netSnapshot(scope);
  const again = await h.cli(['run', '-d', '--name', `vk${tag}`, '-p', `127.0.0.1:${S}:80`, 'busybox', 'true']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /port is already allocated/);
  assert.equal((await inspect(`vk${tag}`)).State.Status, 'created');
  assert.deepEqual(await netSnapshot(scope), mid, 'network state changed by the failed start');
  await waitFor(async () => (await hostnameAt(S)) === first.slice(0, 12), 10_000);
  // the container whose port was taken starts once the host process let the port go
  await h.cliOk(['start', `vh${tag}`]);
  assert.equal((await inspect(`vh${tag}`)).State.Status, 'running');
  await h.cliOk(['rm', '-f', first, `vh${tag}`, `vk${tag}`]);
});

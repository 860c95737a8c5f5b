/**
 * Networks, the rest (issue 6): ports and DNS survive a berthd crash, UDP publishing, -P with
 * EXPOSE and `berth port`, an --internal network without egress, and egress from the default bridge
 * to Debian's mirror. Each run uses its own bridge names and 10.<BERTH_TEST_NET_OCTET>.x.0/24 subnets; the egress probe
 * targets a namespace this test creates.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { addProbeNamespace, finishScopedDaemon, startScopedDaemon, type NetScope, type NetSnapshot } from './net-leaks.js';
import { requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, testNetOctet, type TestDaemon } from './harness.js';

const NETAVARK = '/usr/lib/podman/netavark';
const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('curl'), existsSync(NETAVARK) ? undefined : 'netavark not installed');
const tag = String(process.pid % 1000);
const octet = testNetOctet();
const third = 150 + (process.pid % 50);
const probeNs = `bu${tag}probe`;
let h: TestDaemon;
let scope: NetScope;
let initial: NetSnapshot;

async function until(what: string, fn: () => Promise<boolean>, tries = 30): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The container's eth0 as seen in its namespace: index, peer index, MAC and addresses, plus inspect's IP. */
async function stackOf(id: string): Promise<string> {
  const v = JSON.parse(await h.cliOk(['inspect', id])) as Array<{ NetworkSettings: { SandboxKey: string; IPAddress: string } }>;
  const r = await runCommand('nsenter', [`--net=${v[0]!.NetworkSettings.SandboxKey}`, 'ip', '-j', 'addr', 'show', 'eth0']);
  assert.equal(r.code, 0, r.stderr);
  const l = (JSON.parse(r.stdout) as Array<{ ifindex: number; link_index: number; address: string; addr_info: Array<{ family: string; local: string }> }>)[0]!;
  const v4 = l.addr_info.filter((a) => a.family === 'inet').map((a) => a.local);
  assert.deepEqual(v4, [v[0]!.NetworkSettings.IPAddress]);
  return JSON.stringify({ ifindex: l.ifindex, peer: l.link_index, mac: l.address, v4 });
}

async function httpOk(port: number, expect: string): Promise<boolean> {
  const r = await runCommand('curl', ['-s', '-m', '2', `http://127.0.0.1:${port}/hostname`]);
  return r.stdout.trim() === expect;
}

before(async () => {
  if (skip) return;
  scope = {
    bridges: ['d', 'ua', 'ui', 'ph'].map((x) => `bu${tag}${x}`),
    subnets: [0, 1, 2, 3].map((i) => `10.${octet}.${third + i}.`),
    ports: [19000 + (process.pid % 1000), 20000 + (process.pid % 1000)],
    dataRoot: '',
  };
  ({ h, initial } = await startScopedDaemon(scope, `bu${tag}d`, `10.${octet}.${third}.1/24`));
});

after(async () => {
  if (!h) return;
  await finishScopedDaemon(h, scope, initial, async () => {
    for (const n of ['ua', 'ui']) await h.cli(['network', 'rm', `bu${tag}${n}`]).catch(() => undefined);
    await runCommand('ip', ['netns', 'del', probeNs]).catch(() => undefined);
    await runCommand('ip', ['link', 'del', `bu${tag}ph`]).catch(() => undefined);
  });
});

test('after berthd is killed and restarted, published ports and DNS of running containers work', { skip }, async () => {
  const port = 19000 + (process.pid % 1000);
  const net = `bu${tag}ua`;
  await h.cliOk(['network', 'create', '--subnet', `10.${octet}.${third + 1}.0/24`, '-o', `com.docker.network.bridge.name=${net}`, net]);
  const web = (await h.cliOk(['run', '-d', '--name', `uweb${tag}`, '--network', net, '-p', `127.0.0.1:${port}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'])).trim();
  const cli = (await h.cliOk(['run', '-d', '--name', `ucli${tag}`, '--network', net, 'busybox', 'sleep', '600'])).trim();
  await until('the published port', () => httpOk(port, web.slice(0, 12)));
  const stackBefore = await stackOf(web);
  await h.kill9();
  // while berthd is down, lose the port's DNAT rules and the network's DNS server
  const drop = await runCommand('bash', ['-c', `iptables-save -t nat | grep -e '--dport ${port} ' | sed 's/^-A /-D /' | while read -r l; do eval iptables -t nat $l || exit 1; done`]);
  assert.equal(drop.code, 0, drop.stderr);
  assert.equal(await httpOk(port, web.slice(0, 12)), false, 'the port still served after its rules were removed');
  const pidFile = join(h.dataRoot, 'netavark', 'aardvark-dns', 'aardvark.pid');
  if (existsSync(pidFile)) {
    process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
    await until('aardvark-dns to exit', async () => (await h.cli(['exec', cli, 'nslookup', `uweb${tag}`])).code !== 0);
  }
  await h.restart();
  await until('the published port after restart', () => httpOk(port, web.slice(0, 12)));
  const r = await h.cli(['exec', cli, 'sh', '-c', `nslookup uweb${tag} && wget -q -O - http://uweb${tag}/hostname`]);
  assert.equal(r.code, 0, r.stdout + r.stderr + h.log().slice(-3000));
  assert.match(r.stdout, new RegExp(`${web.slice(0, 12)}\\n$`));
  const v = JSON.parse(await h.cliOk(['inspect', web])) as Array<{ NetworkSettings: { Ports: Record<string, unknown> } }>;
  assert.deepEqual(v[0]!.NetworkSettings.Ports['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(port) }]);
  // the restore re-made rules, not interfaces: same eth0 (index, peer, MAC) and address as before
  assert.deepEqual(await stackOf(web), stackBefore);
  // aardvark-dns lists each container once (the restore re-adds the entries it had)
  const netId = (JSON.parse(await h.cliOk(['network', 'inspect', net])) as Array<{ Id: string }>)[0]!.Id;
  const dnsFile = readFileSync(join(h.dataRoot, 'netavark', 'aardvark-dns', netId), 'utf8').split('\n');
  assert.equal(dnsFile.filter((l) => l.startsWith(`${web} `)).length, 1, dnsFile.join('\n'));
  assert.equal(dnsFile.filter((l) => l.startsWith(`${cli} `)).length, 1, dnsFile.join('\n'));
  await h.cliOk(['rm', '-f', web, cli]);
  await h.cliOk(['network', 'rm', net]);
});

test('a UDP port publishes on 127.0.0.1', { skip }, async () => {
  // Debian's busybox has no UDP listener (nc without -u), so the receiver is a node process that
  // joins the container's network namespace
  const port = 20000 + (process.pid % 1000);
  const id = (await h.cliOk(['run', '-d', '-p', `127.0.0.1:${port}:${port}/udp`, 'busybox', 'sleep', '600'])).trim();
  const v = JSON.parse(await h.cliOk(['inspect', id])) as Array<{ NetworkSettings: { SandboxKey: string; Ports: Record<string, unknown> } }>;
  assert.deepEqual(v[0]!.NetworkSettings.Ports[`${port}/udp`], [{ HostIp: '127.0.0.1', HostPort: String(port) }]);
  const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{process.stdout.write('got:'+m+'\\n');process.exit(0)});s.bind(${port},()=>process.stdout.write('ready\\n'));setTimeout(()=>process.exit(2),20000)`;
  const rx = spawn('nsenter', [`--net=${v[0]!.NetworkSettings.SandboxKey}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  rx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const tx = createSocket('udp4');
  try {
    await until('the receiver', async () => out.includes('ready'));
    await until('the datagram to arrive', async () => {
      await new Promise<void>((r) => tx.send('hello-udp', port, '127.0.0.1', () => r()));
      await new Promise((r) => setTimeout(r, 100));
      return out.includes('got:hello-udp');
    });
  } finally {
    tx.close();
    if (rx.exitCode === null) rx.kill('SIGKILL');
  }
  await h.cliOk(['rm', '-f', id]);
});

test('-P publishes EXPOSEd ports on free host ports; berth port shows them', { skip }, async () => {
  const ctx = mkdtempSync(join(tmpdir(), 'berth-expose-'));
  try {
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nEXPOSE 80 5353/udp\nCMD ["httpd", "-f", "-p", "80", "-h", "/etc"]\n');
    await h.cliOk(['build', '-t', `bu${tag}expose:1`, ctx], { timeoutMs: 120_000 });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
  const id = (await h.cliOk(['run', '-d', '-P', `bu${tag}expose:1`])).trim();
  const out = await h.cliOk(['port', id]);
  const tcp = /^80\/tcp -> 0\.0\.0\.0:(\d+)$/m.exec(out);
  const udp = /^5353\/udp -> 0\.0\.0\.0:(\d+)$/m.exec(out);
  assert.ok(tcp && udp, out);
  const hp = Number(tcp[1]);
  assert.ok(hp >= 1024 && hp !== 80, out);
  assert.equal((await h.cliOk(['port', id, '80'])).trim().split('\n')[0], `0.0.0.0:${hp}`);
  await until('the -P port', () => httpOk(hp, id.slice(0, 12)));
  await h.cliOk(['rm', '-f', id]);
  await h.cliOk(['rmi', `bu${tag}expose:1`]);
});

test('an --internal network has no egress; the default bridge does', { skip }, async () => {
  // a target outside every container network: a namespace behind a veth on the host
  const ph = `bu${tag}ph`;
  const hostAddr = `10.${octet}.${third + 3}.1`;
  const target = `10.${octet}.${third + 3}.2`;
  await addProbeNamespace(probeNs, ph, hostAddr, target, { defaultRoute: true });
  const net = `bu${tag}ui`;
  await h.cliOk(['network', 'create', '--internal', '--subnet', `10.${octet}.${third + 2}.0/24`, '-o', `com.docker.network.bridge.name=${net}`, net]);
  const ok = await h.cli(['run', '--rm', 'busybox', 'ping', '-c1', '-W2', target]);
  assert.equal(ok.code, 0, `default bridge cannot reach the probe: ${ok.stdout}${ok.stderr}`);
  // a running container keeps the bridge, so the next ones are candidates for the fast attach,
  // which must not apply to an internal network (it would give them a default route)
  const keeper = (await h.cliOk(['run', '-d', '--network', net, 'busybox', 'sleep', '600'])).trim();
  const blocked = await h.cli(['run', '--rm', '--network', net, 'busybox', 'ping', '-c1', '-W2', target]);
  assert.notEqual(blocked.code, 0, 'a container on an --internal network reached an outside address');
  const routes = await h.cliOk(['run', '--rm', '--network', net, 'busybox', 'ip', 'route']);
  assert.doesNotMatch(routes, /^default/m, `a later container on the internal network got a default route: ${routes}`);
  const insp = JSON.parse(await h.cliOk(['network', 'inspect', net])) as Array<{ Internal: boolean }>;
  assert.equal(insp[0]!.Internal, true);
  await h.cliOk(['rm', '-f', keeper]);
  await h.cliOk(['network', 'rm', net]);
  await runCommand('ip', ['netns', 'del', probeNs]);
});

test('a container on the default bridge fetches a file from the Debian mirror', { skip }, async () => {
  const g = await runCommand('getent', ['ahostsv4', 'deb.debian.org']);
  const ip = g.stdout.split(/\s+/)[0];
  if (g.code !== 0 || !ip) return; // the host itself cannot resolve the mirror: nothing to prove here
  const r = await h.cli(['run', '--rm', '--add-host', `deb.debian.org:${ip}`, 'busybox', 'wget', '-q', '-O', '/dev/null', 'http://deb.debian.org/debian/dists/bookworm/Release'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

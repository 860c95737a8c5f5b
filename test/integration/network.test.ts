/**
 * Networks end to end (issue 6): user networks with DNS by name/alias, isolation between networks,
 * published ports on loopback, bad input, and no leftovers. Each run uses its own bridge names and
 * 10.<BERTH_TEST_NET_OCTET>.x.0/24 subnets; traffic stays on loopback and inside the test's namespaces.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { finishScopedDaemon, startScopedDaemon, type NetScope, type NetSnapshot } from './net-leaks.js';
import { requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, testNetOctet, type TestDaemon } from './harness.js';

const NETAVARK = '/usr/lib/podman/netavark';
const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('curl'), existsSync(NETAVARK) ? undefined : 'netavark not installed');
const tag = String(process.pid % 1000);
const octet = testNetOctet();
const third = 100 + (process.pid % 50);
let h: TestDaemon;
let scope: NetScope;
let initial: NetSnapshot;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '--unix-socket', h.socket, '-X', method, `http://x${path}`];
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '-d', JSON.stringify(body));
  const r = await runCommand('curl', args);
  const i = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, i);
  return { status: Number(r.stdout.slice(i + 1)), json: text ? JSON.parse(text) : null };
}

before(async () => {
  if (skip) return;
  scope = {
    bridges: ['d', 'ta', 'tb'].map((x) => `bt${tag}${x}`),
    subnets: [0, 1, 2].map((i) => `10.${octet}.${third + i}.`),
    ports: [18000 + (process.pid % 1000)],
    dataRoot: '',
  };
  ({ h, initial } = await startScopedDaemon(scope, `bt${tag}d`, `10.${octet}.${third}.1/24`));
});

after(async () => {
  if (!h) return;
  await finishScopedDaemon(h, scope, initial, async () => {
    for (const n of ['ta', 'tb']) await api('DELETE', `/networks/bt${tag}${n}`).catch(() => undefined);
  });
});

test('default bridge: address from --bip, and a published port serves the host on 127.0.0.1', { skip }, async () => {
  const port = 18000 + (process.pid % 1000);
  const id = (await h.cliOk(['run', '-d', '-p', `127.0.0.1:${port}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'])).trim();
  const v = JSON.parse(await h.cliOk(['inspect', id])) as Array<{ NetworkSettings: { IPAddress: string; Ports: Record<string, unknown> } }>;
  assert.match(v[0]!.NetworkSettings.IPAddress, new RegExp(`^10\\.${octet}\\.${third}\\.\\d+$`));
  assert.deepEqual(v[0]!.NetworkSettings.Ports['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(port) }]);
  let body = '';
  for (let i = 0; i < 20 && !body; i++) {
    body = (await runCommand('curl', ['-s', '-m', '2', `http://127.0.0.1:${port}/hostname`])).stdout;
    if (!body) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(body.trim(), id.slice(0, 12));
  const again = await h.cli(['run', '-d', '-p', `127.0.0.1:${port}:80`, 'busybox', 'true']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /port is already allocated/);
  await h.cliOk(['rm', '-f', id]);
});

test('user networks: names and aliases resolve; another network cannot reach them', { skip }, async () => {
  const a = await api('POST', '/networks/create', { Name: `bt${tag}ta`, Options: { 'com.docker.network.bridge.name': `bt${tag}ta` }, IPAM: { Config: [{ Subnet: `10.${octet}.${third + 1}.0/24` }] } });
  assert.equal(a.status, 201, JSON.stringify(a.json));
  const b = await api('POST', '/networks/create', { Name: `bt${tag}tb`, Options: { 'com.docker.network.bridge.name': `bt${tag}tb` }, IPAM: { Config: [{ Subnet: `10.${octet}.${third + 2}.0/24` }] } });
  assert.equal(b.status, 201);
  const dup = await api('POST', '/networks/create', { Name: `bt${tag}ta` });
  assert.equal(dup.status, 409);
  const overlap = await api('POST', '/networks/create', { Name: `bt${tag}tc`, IPAM: { Config: [{ Subnet: `10.${octet}.${third + 1}.128/25` }] } });
  assert.equal(overlap.status, 409);
  const bad = await api('POST', '/networks/create', { Name: `bt${tag}td`, IPAM: { Config: [{ Subnet: `10.${octet}.1.0/33` }] } });
  assert.equal(bad.status, 400);
  const unknown = await h.cli(['run', '--rm', '--network', 'no-such-net', 'busybox', 'true']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /network no-such-net not found/);

  const web = (await h.cliOk(['run', '-d', '--name', `web${tag}`, '--network', `bt${tag}ta`, '--network-alias', 'webalias', 'busybox', 'sleep', '300'])).trim();
  const r1 = await h.cli(['run', '--rm', '--network', `bt${tag}ta`, 'busybox', 'sh', '-c', `ping -c1 -W2 web${tag} && ping -c1 -W2 webalias && ping -c1 -W2 ${web.slice(0, 12)}`]);
  assert.equal(r1.code, 0, r1.stdout + r1.stderr);
  const ip = ((JSON.parse(await h.cliOk(['inspect', web])) as Array<{ NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }>)[0]!.NetworkSettings.Networks[`bt${tag}ta`]!).IPAddress;
  assert.match(ip, new RegExp(`^10\\.${octet}\\.${third + 1}\\.`));
  const r2 = await h.cli(['run', '--rm', '--network', `bt${tag}tb`, 'busybox', 'sh', '-c', `ping -c1 -W2 web${tag}; ping -c1 -W1 ${ip}`]);
  assert.notEqual(r2.code, 0, 'a container on another network reached the first one');
  const busy = await api('DELETE', `/networks/bt${tag}ta`);
  assert.equal(busy.status, 403);
  const inspect = await api('GET', `/networks/bt${tag}ta`);
  assert.ok(Object.keys((inspect.json as { Containers: object }).Containers).includes(web));
  await h.cliOk(['rm', '-f', web]);
  assert.equal((await api('DELETE', `/networks/bt${tag}ta`)).status, 204);
  assert.equal((await api('DELETE', `/networks/bt${tag}tb`)).status, 204);
});

/**
 * The issue-4 "Bad input" matrix against a real berthd, over raw HTTP on its UNIX socket: malformed
 * and mistyped bodies, absurd values, oversized headers and bodies, `..` in archive paths, Upgrade
 * on a non-hijack endpoint, and clients vanishing mid-stream. After each case the daemon must still
 * answer /_ping, nothing may be half-created, and its file descriptors must come back to baseline.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, startDaemon, waitFor, type TestDaemon } from './harness.js';

const skip = firstSkip(requireRoot(), requireBuilt(), requireBinary('conmon'), requireBinary('crun'));

/** A parsed raw HTTP answer. */
interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** How the exchange ended: the server closed ('end'), or the wait elapsed ('timeout'). */
  how: 'end' | 'timeout' | 'error';
  raw: Buffer;
}

function parseReply(raw: Buffer, how: RawReply['how']): RawReply {
  const sep = raw.indexOf('\r\n\r\n');
  const headText = (sep < 0 ? raw : raw.subarray(0, sep)).toString('latin1');
  const lines = headText.split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = sep < 0 ? Buffer.alloc(0) : raw.subarray(sep + 4);
  if ((headers['transfer-encoding'] ?? '').includes('chunked')) body = dechunk(body);
  return { status: m ? Number(m[1]) : 0, headers, body, how, raw };
}

/**
 * Send raw bytes on a fresh connection and collect until the server closes or `waitMs` passes
 * (then the client closes). `halfClose` sends FIN after the bytes.
 */
function rawExchange(h: TestDaemon, data: string | Buffer, opts: { waitMs?: number; halfClose?: boolean } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const s = connect(h.socket);
    const parts: Buffer[] = [];
    let done = false;
    const finish = (how: RawReply['how']): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(parseReply(Buffer.concat(parts), how));
    };
    const timer = setTimeout(() => finish('timeout'), opts.waitMs ?? 5000);
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => finish('end'));
    s.on('error', () => finish('error'));
    s.write(data);
    if (opts.halfClose) s.end();
  });
}

/** A complete request with a JSON (or raw) body. */
function request(method: string, path: string, body?: string, headers: Record<string, string> = {}): string {
  const b = body ?? '';
  const hdr = { Host: 'd', Connection: 'close', ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(b)) } : {}), ...headers };
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(hdr).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${b}`;
}

async function call(h: TestDaemon, method: string, path: string, body?: string): Promise<{ status: number; json: unknown; text: string }> {
  const r = await rawExchange(h, request(method, path, body));
  const text = r.body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text };
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = b.indexOf('\r\n', i);
    if (nl < 0) break;
    const n = Number.parseInt(b.subarray(i, nl).toString('latin1'), 16);
    if (!Number.isFinite(n) || n === 0) break;
    out.push(b.subarray(nl + 2, nl + 2 + n));
    i = nl + 2 + n + 2;
  }
  return Buffer.concat(out);
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function containerDirs(h: TestDaemon): string[] {
  const d = join(h.dataRoot, 'containers');
  return existsSync(d) ? readdirSync(d).sort() : [];
}

/**
 * Open a streaming request, wait until `ready(bytesSoFar)` says it is flowing, then vanish
 * (destroy the socket without a FIN-and-wait). Resolves with what arrived.
 */
function vanishAfter(h: TestDaemon, data: string, ready: (got: Buffer) => boolean, ms = 15_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(h.socket);
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`stream never became ready; got ${JSON.stringify(Buffer.concat(parts).toString('latin1').slice(0, 300))}`));
    }, ms);
    s.on('data', (d: Buffer) => {
      parts.push(d);
      const got = Buffer.concat(parts);
      if (ready(got)) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', () => undefined);
    s.write(data);
  });
}

test('bad input: daemon answers cleanly, keeps no half-made state and leaks no fds', { skip, timeout: 240_000 }, async (t) => {
  const h = await startDaemon();
  t.after(() => cleanup(h));
  await importBusybox(h);
  const pid = h.pid!;
  const top = (await h.cliOk(['run', '-d', '--name', 'top1', 'busybox', 'sh', '-c', 'while true; do echo tick; sleep 0.2; done'])).trim();
  assert.match(top, /^[0-9a-f]{64}$/);
  // Warm up every path once so lazily opened files (logs, inotify, pumps) are in the baseline.
  await call(h, 'GET', '/containers/top1/stats?stream=0');
  await call(h, 'GET', '/containers/top1/logs?stdout=1&tail=1');
  await new Promise((r) => setTimeout(r, 500));
  const baselineFds = fdCount(pid);
  const baselineDirs = containerDirs(h);

  /** After a case: /_ping answers, no container appeared or vanished, fds back to baseline. */
  const healthy = async (what: string): Promise<void> => {
    assert.ok(await h.ping(), `${what}: daemon no longer answers /_ping`);
    assert.deepEqual(containerDirs(h), baselineDirs, `${what}: container directories changed`);
    try {
      await waitFor(async () => fdCount(pid) <= baselineFds + 2, 10_000, 100);
    } catch {
      assert.fail(`${what}: daemon fds ${fdCount(pid)} vs baseline ${baselineFds}: ${readdirSync(`/proc/${pid}/fd`).length}`);
    }
  };

  await t.test('malformed JSON body → 400, nothing created', async () => {
    const r = await call(h, 'POST', '/containers/create?name=bad1', '{"Image":');
    assert.equal(r.status, 400);
    assert.match((r.json as { message: string }).message, /invalid JSON/);
    await healthy('malformed JSON');
  });

  await t.test('non-object body → 400', async () => {
    const r = await call(h, 'POST', '/containers/create', '[1,2]');
    assert.equal(r.status, 400);
    assert.match((r.json as { message: string }).message, /cannot unmarshal array/);
    await healthy('array body');
  });

  await t.test('wrong types → 400 with Go decoder wording, nothing created', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{"Image":"busybox","HostConfig":{"Memory":"lots"}}', /^json: cannot unmarshal string into Go struct field CreateRequest\.HostConfig\.Memory of type int64$/],
      ['{"Image":"busybox","Env":"A=1"}', /cannot unmarshal string into Go struct field CreateRequest\.Env of type \[\]string/],
      ['{"Image":"busybox","Labels":{"a":5}}', /cannot unmarshal number into Go struct field CreateRequest\.Labels of type string/],
      ['{"Image":"busybox","Cmd":5}', /cannot unmarshal number into Go struct field CreateRequest\.Cmd/],
      ['{"Image":"busybox","Tty":"yes"}', /CreateRequest\.Tty of type bool/],
      ['{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":8080}]}}}', /PortBindings\.HostPort of type string/],
    ];
    for (const [body, re] of cases) {
      const r = await call(h, 'POST', '/containers/create?name=typed', body);
      assert.equal(r.status, 400, body);
      assert.match((r.json as { message: string }).message, re, body);
    }
    const u = await call(h, 'POST', '/containers/top1/update', '{"CpuShares":"512"}');
    assert.equal(u.status, 400);
    assert.match((u.json as { message: string }).message, /UpdateConfig\.CpuShares of type int64/);
    const ex = await call(h, 'POST', '/containers/top1/exec', '{"Cmd":["true"],"Env":[1]}');
    assert.equal(ex.status, 400);
    assert.match((ex.json as { message: string }).message, /ExecOptions\.Env of type string/);
    const v = await call(h, 'POST', '/volumes/create', '{"Name":"v1","Labels":{"a":true}}');
    assert.equal(v.status, 400);
    const vl = await call(h, 'GET', '/volumes');
    assert.deepEqual((vl.json as { Volumes: unknown[] }).Volumes, [], 'a rejected volume create left a volume behind');
    await healthy('wrong types');
  });

  await t.test('unknown fields are ignored, like Docker', async () => {
    const r = await call(h, 'POST', '/containers/create?name=unk', '{"Image":"busybox","Cmd":["true"],"NoSuchField":{"x":[1]},"HostConfig":{"AlsoUnknown":true}}');
    assert.equal(r.status, 201, r.text);
    const id = (r.json as { Id: string }).Id;
    const d = await call(h, 'DELETE', `/containers/${id}`);
    assert.equal(d.status, 204);
    await healthy('unknown fields');
  });

  await t.test('absurd values → 400 with Docker messages, nothing created', async () => {
    const bodies: Array<[string, RegExp]> = [
      ['{"Image":"busybox","HostConfig":{"Memory":-5}}', /Minimum memory limit allowed is 6MB/],
      ['{"Image":"busybox","HostConfig":{"Memory":1e30}}', /cannot unmarshal number 1e\+30 .*Memory of type int64/],
      ['{"Image":"busybox","HostConfig":{"ShmSize":-1}}', /SHM size can not be less than 0/],
      ['{"Image":"busybox","HostConfig":{"BlkioWeight":99999}}', /of type uint16/],
      ['{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":10,"Hard":5}]}}', /soft limit must be less than or equal to hard limit/],
      ['{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":-3}}}', /.+/],
      ['{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"99999"}]}}}', /^invalid port specification: "99999"$/],
      ['{"Image":"busybox","HostConfig":{"PortBindings":{"http/tcp":[]}}}', /^invalid port specification: "http"$/],
      ['{"Image":"busybox","StopSignal":"NOPE"}', /^Invalid signal: NOPE$/],
      ['{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Interval":-5}}', /^Interval in Healthcheck cannot be less than 1ms$/],
      ['{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/nonexistent-berth-src","Target":"/x"}]}}', /bind source path does not exist: \/nonexistent-berth-src/],
    ];
    for (const [body, re] of bodies) {
      const r = await call(h, 'POST', '/containers/create?name=abs', body);
      assert.equal(r.status, 400, `${body}: ${r.text}`);
      assert.match((r.json as { message: string }).message, re, body);
    }
    for (const path of ['/containers/top1/resize?h=-1&w=80', '/containers/top1/resize?h=abc&w=80', '/containers/top1/stop?t=x']) {
      const r = await call(h, 'POST', path, '');
      assert.equal(r.status, 400, `${path}: ${r.text}`);
    }
    const k = await call(h, 'POST', '/containers/top1/kill?signal=NOSUCHSIG', '');
    assert.equal(k.status, 400, k.text);
    const st = await call(h, 'GET', '/containers/top1/json');
    assert.equal((st.json as { State: { Running: boolean } }).State.Running, true, 'a rejected kill changed the container');
    const bogusName = await call(h, 'POST', '/containers/create?name=' + encodeURIComponent('../../etc'), '{"Image":"busybox"}');
    assert.equal(bogusName.status, 400);
    assert.match((bogusName.json as { message: string }).message, /Invalid container name/);
    await healthy('absurd values');
  });

  await t.test('an archive that is not a tar → a clear error, no blob left behind', async () => {
    const blobs = (): string[] => (existsSync(join(h.dataRoot, 'content/blobs/sha256')) ? readdirSync(join(h.dataRoot, 'content/blobs/sha256')).sort() : []);
    const before = blobs();
    const load = await rawExchange(h, request('POST', '/images/load', 'garbage', { 'Content-Type': 'application/x-tar' }));
    assert.equal(load.status, 400);
    assert.match(JSON.parse(load.body.toString()).message, /^invalid tar archive: /);
    const imp = await rawExchange(h, request('POST', '/images/create?fromSrc=-&repo=imp', 'not a tar', { 'Content-Type': 'application/x-tar' }));
    assert.equal(imp.status, 200);
    assert.match(JSON.parse(imp.body.toString().trim()).error, /^invalid tar archive: /);
    assert.deepEqual(blobs(), before);
    await healthy('not a tar');
  });

  await t.test('a 1 MiB header line → 431 and close; headers just under 1 MiB are fine', async () => {
    const big = await rawExchange(h, `GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: ${'a'.repeat(1 << 20)}\r\n\r\n`);
    assert.equal(big.status, 431);
    assert.equal(big.how, 'end');
    const ok = await rawExchange(h, `GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\nX-Registry-Auth: ${'a'.repeat((1 << 20) - 4096)}\r\n\r\n`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), 'OK');
    await healthy('1 MiB header');
  });

  await t.test('a 10 GB Content-Length that never arrives → 400 at once and close', async () => {
    const head = 'POST /containers/create?name=huge HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n{"Image":"busybox"';
    const r = await rawExchange(h, head, { waitMs: 10_000 });
    assert.equal(r.how, 'end', 'the daemon should answer and close, not wait for 10 GB');
    assert.equal(r.status, 400);
    assert.equal(r.headers['connection'], 'close');
    assert.match(JSON.parse(r.body.toString()).message, /request body too large/);
    // A streaming endpoint accepts the upload; the client gives up half way.
    const put = await rawExchange(h, 'PUT /containers/top1/archive?path=/tmp HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: 10737418240\r\n\r\n' + 'x'.repeat(4096), { waitMs: 1000 });
    assert.ok(put.how === 'timeout' || put.status >= 400, `unexpected answer ${put.raw.toString('latin1').slice(0, 200)}`);
    const bad = await rawExchange(h, 'POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: -5\r\n\r\n');
    assert.equal(bad.status, 400);
    const garbage = await rawExchange(h, 'NOT HTTP AT ALL\r\n\r\n');
    assert.equal(garbage.status, 400);
    const chunked = await rawExchange(h, 'POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n5\r\n{"Ima\r\nZZ\r\n');
    assert.equal(chunked.status, 400);
    await healthy('10 GB body');
  });

  await t.test('a path with .. in archive endpoints stays inside the container', async () => {
    const hostHostname = (await import('node:os')).hostname();
    const g = await rawExchange(h, request('GET', '/containers/top1/archive?path=' + encodeURIComponent('../../../../../../etc/hostname')));
    assert.equal(g.status, 200);
    const stat = JSON.parse(Buffer.from(g.headers['x-docker-container-path-stat']!, 'base64').toString()) as { name: string };
    assert.equal(stat.name, 'hostname');
    const tarBody = g.body;
    // The file in the tar is the container's /etc/hostname (its short id), not the host's.
    const plain = await rawExchange(h, request('GET', '/containers/top1/archive?path=/etc/hostname'));
    assert.equal(plain.status, 200);
    assert.deepEqual(tarBody, plain.body, '../../etc/hostname is not the container\'s /etc/hostname');
    assert.ok(!tarBody.subarray(512, 1024).toString().startsWith(hostHostname + '\n'), 'got the host\'s /etc/hostname');
    // A tar whose member climbs out of the target is refused before anything is written.
    const evil = tarOf([{ name: '../../../../../../tmp/berth-escape-' + top.slice(0, 8), data: 'pwned\n' }]);
    const p = await rawExchange(h, Buffer.concat([Buffer.from(request('PUT', '/containers/top1/archive?path=/tmp', undefined, { 'Content-Type': 'application/x-tar', 'Content-Length': String(evil.length) })), evil]));
    assert.equal(p.status, 400, p.raw.toString('latin1').slice(0, 300));
    assert.match(JSON.parse(p.body.toString()).message, /\.\./);
    assert.equal(existsSync('/tmp/berth-escape-' + top.slice(0, 8)), false);
    const head = await rawExchange(h, request('HEAD', '/containers/top1/archive?path=' + encodeURIComponent('/etc/../../..')));
    assert.equal(head.status, 200);
    assert.equal(JSON.parse(Buffer.from(head.headers['x-docker-container-path-stat']!, 'base64').toString()).name, '/');
    await healthy('.. paths');
  });

  await t.test('Upgrade: tcp on a non-hijack endpoint is answered as a normal request', async () => {
    const g = await rawExchange(h, 'GET /containers/json HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    assert.equal(g.status, 200);
    assert.equal(g.how, 'end');
    assert.equal((JSON.parse(g.body.toString()) as unknown[]).length, 1);
    const body = '{"Image":"busybox","Cmd":["true"]}';
    const c = await rawExchange(h, `POST /containers/create?name=upg HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.equal(c.status, 201, c.raw.toString('latin1').slice(0, 300));
    const d = await call(h, 'DELETE', '/containers/upg');
    assert.equal(d.status, 204);
    const bad = await rawExchange(h, `POST /containers/create?name=upg2 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"Image":`);
    assert.equal(bad.status, 400);
    await healthy('upgrade on a non-hijack endpoint');
  });

  await t.test('clients vanishing mid-stream', async () => {
    await vanishAfter(h, request('GET', '/containers/top1/logs?follow=1&stdout=1&stderr=1'), (b) => b.includes('tick'));
    await healthy('logs -f');
    await vanishAfter(h, request('GET', '/events'), (b) => b.includes('\r\n\r\n'));
    await healthy('events');
    await vanishAfter(h, request('GET', '/containers/top1/stats?stream=1'), (b) => b.includes('"cpu_stats"'));
    await healthy('stats stream');
    await vanishAfter(
      h,
      'POST /containers/top1/attach?stream=1&stdout=1&stderr=1&stdin=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n',
      (b) => b.includes('101 UPGRADED') && b.includes('tick'),
    );
    await healthy('attach');
    const ex = await call(h, 'POST', '/containers/top1/exec', '{"Cmd":["sh","-c","while true; do echo x; sleep 0.1; done"],"AttachStdout":true}');
    assert.equal(ex.status, 201);
    const execId = (ex.json as { Id: string }).Id;
    const startBody = '{"Detach":false}';
    await vanishAfter(
      h,
      `POST /exec/${execId}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${startBody.length}\r\n\r\n${startBody}`,
      (b) => b.includes('101 UPGRADED') && b.includes('x\n'),
    );
    await healthy('exec start');

    // A registry that starts the manifest answer and then stalls: the pull hangs until the client
    // leaves, and then berthd must drop its registry connection. (A registry that never sends
    // headers is not used: undici's fetch keeps such a socket after an abort until its own 300 s
    // headers timeout, see docs/compatibility.md.)
    const held = new Set<Socket>();
    const reg = createServer((s) => {
      held.add(s);
      s.on('close', () => held.delete(s));
      s.on('error', () => undefined);
      s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100000\r\n\r\n{"schemaVersion":'));
    });
    await new Promise<void>((r) => reg.listen(0, '127.0.0.1', () => r()));
    const port = (reg.address() as { port: number }).port;
    try {
      const pullReq = request('POST', `/images/create?fromImage=127.0.0.1:${port}/hang/img&tag=latest`, undefined, { 'X-Registry-Auth': 'e30=' });
      await vanishAfter(h, pullReq, (b) => b.includes('\r\n\r\n'), 20_000);
      await waitFor(async () => held.size === 0, 15_000).catch(() => {
        throw new Error(`berthd kept ${held.size} connection(s) to the registry after the client left`);
      });
      await healthy('pull');
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => reg.close(() => r()));
    }
    const st = await call(h, 'GET', '/containers/top1/json');
    assert.equal((st.json as { State: { Running: boolean } }).State.Running, true);
  });
});

/** A minimal ustar archive of regular files. */
function tarOf(files: Array<{ name: string; data: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const data = Buffer.from(f.data);
    const hdr = Buffer.alloc(512);
    hdr.write(f.name, 0, 100, 'utf8');
    hdr.write('0000644\0', 100);
    hdr.write('0000000\0', 108);
    hdr.write('0000000\0', 116);
    hdr.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    hdr.write('00000000000\0', 136);
    hdr.write('        ', 148);
    hdr.write('0', 156);
    hdr.write('ustar\0', 257);
    hdr.write('00', 263);
    let sum = 0;
    for (const b of hdr) sum += b;
    hdr.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(hdr, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { Deframer } from '../wire/stdcopy.js';
import { createFakeEngine, type FakeEngine } from './fake-engine.fixture.js';
import { createApiServer, type ApiServer } from './server.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let dir: string;
let sock: string;
let api: ApiServer;
let fake: FakeEngine;
const logs: string[] = [];

function req(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ socketPath: sock, method, path, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body !== undefined) r.end(body);
    else r.end();
  });
}

function json(r: Reply): any {
  return JSON.parse(r.body.toString());
}

function lastCall(method: string): unknown[] {
  const c = [...fake.calls].reverse().find((x) => x.method === method);
  assert.ok(c, `expected a call to ${method}`);
  return c.args;
}

/** A raw client socket that collects everything the server sends. */
class Raw {
  readonly s: Socket;
  buf = Buffer.alloc(0);
  ended = false;
  private waiters: Array<() => void> = [];
  constructor() {
    this.s = connect(sock);
    this.s.on('data', (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      this.kick();
    });
    this.s.on('end', () => {
      this.ended = true;
      this.kick();
    });
  }
  private kick(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  async until(pred: (b: Buffer) => boolean, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this.buf)) {
      if (this.ended) throw new Error(`stream ended; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      if (Date.now() > deadline) throw new Error(`timeout; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  async untilEnd(ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error(`no EOF; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  /** Split off the HTTP head; returns [head, rest]. */
  head(): [string, Buffer] {
    const i = this.buf.indexOf('\r\n\r\n');
    assert.ok(i >= 0, 'no complete head');
    return [this.buf.subarray(0, i).toString('latin1'), this.buf.subarray(i + 4)];
  }
}

function frames(b: Buffer): Array<{ stream: number; data: string }> {
  return new Deframer().push(b).map((f) => ({ stream: f.stream, data: f.data.toString() }));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-api-'));
  sock = join(dir, 'api.sock');
  fake = createFakeEngine();
  api = createApiServer(fake.engine, { log: (m) => logs.push(m) });
  await api.listen(sock);
});

after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ping and versions', () => {
  it('GET /_ping answers OK with Docker headers', async () => {
    const r = await req('GET', '/_ping');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'OK');
    assert.equal(r.headers['api-version'], '1.51');
    assert.equal(r.headers['ostype'], 'linux');
    assert.equal(r.headers['docker-experimental'], 'false');
    assert.equal(r.headers['builder-version'], '1');
    assert.equal(r.headers['swarm'], 'inactive');
    assert.equal(r.headers['cache-control'], 'no-cache, no-store, must-revalidate');
    assert.equal(r.headers['pragma'], 'no-cache');
    assert.equal(r.headers['server'], 'Docker/28.2.2 (linux)');
  });

  it('HEAD /_ping has text/plain and Content-Length 0', async () => {
    const r = await req('HEAD', '/v1.50/_ping');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.headers['content-length'], '0');
    assert.equal(r.headers['api-version'], '1.51');
  });

  it('accepts a version prefix and rejects too new / too old with Docker wording', async () => {
    const ok = await req('GET', '/v1.24/version');
    assert.equal(ok.status, 200);
    assert.equal(json(ok).ApiVersion, '1.51');
    const plain = await req('GET', '/version');
    assert.equal(json(plain).ApiVersion, json(ok).ApiVersion);
    const neu = await req('GET', '/v1.52/version');
    assert.equal(neu.status, 400);
    assert.equal(json(neu).message, 'client version 1.52 is too new. Maximum supported API version is 1.51');
    assert.equal(neu.headers['api-version'], '1.51', 'common headers on errors too');
    const old = await req('GET', '/v1.23/containers/json');
    assert.equal(old.status, 400);
    assert.equal(
      json(old).message,
      'client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version',
    );
  });

  it('unknown paths and wrong methods give 404 page not found', async () => {
    for (const [m, p] of [['GET', '/nope'], ['DELETE', '/version'], ['GET', '/v1.50/containers/c1/bogus']]) {
      const r = await req(m!, p!);
      assert.equal(r.status, 404, `${m} ${p}`);
      assert.deepEqual(json(r), { message: 'page not found' });
    }
  });
});

describe('errors and status codes', () => {
  it('maps engine error kinds', async () => {
    const nf = await req('GET', '/v1.50/containers/zzz/json');
    assert.equal(nf.status, 404);
    assert.equal(json(nf).message, 'No such container: zzz');
    const kill = await req('POST', '/containers/stopped1/kill');
    assert.equal(kill.status, 409);
    const start = await req('POST', '/containers/c1/start');
    assert.equal(start.status, 304);
    assert.equal(start.body.length, 0);
    const stop = await req('POST', '/containers/c1/stop?t=3');
    assert.equal(stop.status, 204);
    assert.deepEqual(lastCall('containers.stop'), ['c1', { timeout: 3 }]);
  });

  it('hides internal error details on the wire and logs the stack', async () => {
    const r = await req('GET', '/containers/boom/json');
    assert.equal(r.status, 500);
    assert.equal(json(r).message, 'internal server error');
    assert.ok(logs.some((l) => l.includes('secret internal detail') && l.includes('at ')), 'stack logged');
  });

  it('rejects malformed JSON with 400 and a clear message', async () => {
    const r = await req('POST', '/containers/create', '{"Image":', { 'Content-Type': 'application/json' });
    assert.equal(r.status, 400);
    assert.match(json(r).message, /invalid JSON/);
    const empty = await req('POST', '/containers/create');
    assert.equal(empty.status, 400);
  });

  it('create returns 201 with Id and passes name and a chunked body', async () => {
    const r = await new Promise<Reply>((resolve, reject) => {
      const cr = httpRequest({ socketPath: sock, method: 'POST', path: '/v1.50/containers/create?name=web', agent: false, headers: { 'Content-Type': 'application/json' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      });
      cr.on('error', reject);
      cr.write('{"Image":"busy');
      cr.end('box","Tty":true}');
    });
    assert.equal(r.status, 201);
    assert.deepEqual(json(r), { Id: 'a'.repeat(64), Warnings: [] });
    assert.deepEqual(lastCall('containers.create'), [{ name: 'web', body: { Image: 'busybox', Tty: true } }]);
  });

  it('answers unbuilt and out-of-scope families cleanly', async () => {
    const net = await req('POST', '/networks/create', '{"Name":"x"}');
    assert.equal(net.status, 501);
    assert.match(json(net).message, /not supported/);
    const swarm = await req('GET', '/v1.50/swarm');
    assert.equal(swarm.status, 503);
    assert.match(json(swarm).message, /not a swarm manager/);
    const plugins = await req('GET', '/plugins');
    assert.deepEqual(json(plugins), []);
    const nets = json(await req('GET', '/networks'));
    assert.deepEqual(nets.map((n: any) => n.Name), ['bridge', 'host', 'none']);
    const br = await req('GET', '/networks/bridge');
    assert.equal(json(br).Driver, 'bridge');
    const missing = await req('GET', '/networks/proj_default');
    assert.equal(missing.status, 404);
    assert.equal(json(missing).message, 'network proj_default not found');
  });
});

describe('query parsing and routing', () => {
  it('normalises both filter shapes and Docker booleans', async () => {
    await req('GET', '/containers/json?all=True&size=0&filters=' + encodeURIComponent('{"label":{"a=b":true},"status":{"exited":true}}'));
    assert.deepEqual(lastCall('containers.list'), [{ all: true, size: false, filters: { label: ['a=b'], status: ['exited'] } }]);
    await req('GET', '/containers/json?all=0&limit=-1&filters=' + encodeURIComponent('{"label":["com.docker.compose.project=p"]}'));
    assert.deepEqual(lastCall('containers.list'), [{ all: false, size: false, filters: { label: ['com.docker.compose.project=p'] } }]);
    const bad = await req('GET', '/containers/json?filters=notjson');
    assert.equal(bad.status, 400);
  });

  it('routes image names with / and : on the path suffix', async () => {
    const r = await req('GET', '/v1.50/images/localhost:5000/foo/json');
    assert.equal(r.status, 200);
    assert.deepEqual(lastCall('images.inspect'), ['localhost:5000/foo']);
    const d = await req('DELETE', '/images/foo:bar?force=1');
    assert.equal(d.status, 200);
    assert.deepEqual(lastCall('images.remove'), ['foo:bar', { force: true, noprune: false }]);
    const t = await req('POST', '/images/docker.io/library/busybox/tag?repo=docker.io/library/foo&tag=bar');
    assert.equal(t.status, 201);
    assert.deepEqual(lastCall('images.tag'), ['docker.io/library/busybox', 'docker.io/library/foo', 'bar']);
    const nf = await req('GET', '/images/missing/json');
    assert.equal(nf.status, 404);
    assert.equal(json(nf).message, 'No such image: missing');
  });

  it('imports with fromSrc=- as a JSON progress stream', async () => {
    const r = await req('POST', '/images/create?fromSrc=-&repo=imp&tag=1&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3DB', 'ROOTFS');
    assert.equal(r.status, 200);
    const lines = r.body.toString().trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.at(-1), { status: 'sha256:' + 'd'.repeat(64) });
    assert.deepEqual(lastCall('images.import'), ['ROOTFS', { repo: 'imp', tag: '1', changes: ['CMD ["sh"]', 'ENV A=B'] }]);
    const pull = await req('POST', '/images/create?fromImage=docker.io/library/busybox&tag=latest');
    assert.equal(pull.status, 200);
    const msg = JSON.parse(pull.body.toString().trim());
    assert.match(msg.error, /registry pulls are not supported yet/);
    assert.equal(msg.errorDetail.message, msg.error);
  });

  it('commits with query options and a config body', async () => {
    const r = await req('POST', '/commit?container=c1&repo=docker.io/library/myimg&tag=2&changes=USER%20foo&author=me', '{"Cmd":["echo"]}');
    assert.equal(r.status, 201);
    assert.deepEqual(json(r), { Id: 'sha256:' + 'f'.repeat(64) });
    assert.deepEqual(lastCall('commit'), [
      { container: 'c1', pause: true, changes: ['USER foo'], repo: 'docker.io/library/myimg', tag: '2', author: 'me', config: { Cmd: ['echo'] } },
    ]);
  });
});

describe('wait', () => {
  it('flushes headers before the container exits, then sends the status', async () => {
    const got = await new Promise<{ status: number; early: boolean; body: string }>((resolve, reject) => {
      let exited = false;
      const r = httpRequest({ socketPath: sock, method: 'POST', path: '/v1.50/containers/c1/wait?condition=next-exit', agent: false }, (res) => {
        const early = !exited;
        let body = '';
        res.on('data', (b: Buffer) => (body += b.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, early, body }));
        setTimeout(() => {
          exited = true;
          fake.exit(3);
        }, 30);
      });
      r.on('error', reject);
      r.end();
    });
    assert.equal(got.status, 200);
    assert.ok(got.early, 'headers arrived before the exit');
    assert.equal(got.body, '{"StatusCode":3,"Error":null}\n');
    assert.deepEqual(lastCall('containers.wait'), ['c1', 'next-exit']);
  });

  it('rejects an unknown condition with 400', async () => {
    const r = await req('POST', '/containers/c1/wait?condition=bogus');
    assert.equal(r.status, 400);
  });
});

describe('logs', () => {
  it('multiplexes without TTY, with timestamps per line', async () => {
    const r = await req('GET', '/v1.50/containers/c1/logs?stdout=1&stderr=1&timestamps=1&tail=all');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/vnd.docker.multiplexed-stream');
    assert.deepEqual(frames(r.body), [
      { stream: 1, data: '2024-01-01T00:00:00.500000000Z line one\n2024-01-01T00:00:00.500000000Z line ' },
      { stream: 1, data: 'two\n' },
      { stream: 2, data: '2024-01-01T00:00:00.123456789Z oops\n' },
    ]);
  });

  it('is raw for TTY containers and for old API versions uses the raw content type', async () => {
    const r = await req('GET', '/containers/tty1/logs?stdout=1&stderr=1');
    assert.equal(r.headers['content-type'], 'application/vnd.docker.raw-stream');
    assert.equal(r.body.toString(), 'line one\nline two\noops\n');
    const old = await req('GET', '/v1.41/containers/c1/logs?stdout=1');
    assert.equal(old.headers['content-type'], 'application/vnd.docker.raw-stream');
    assert.equal(frames(old.body).length, 3, 'still framed');
    const none = await req('GET', '/containers/c1/logs');
    assert.equal(none.status, 400);
  });
});

describe('hijacked attach and exec', () => {
  it('attach: 101 head, stdin from head echoed, half-close keeps output, EOF after output', async () => {
    const raw = new Raw();
    raw.s.write(
      'POST /v1.50/containers/c1/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1\r\nHost: d\r\n' +
        'Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\nhello\n',
    );
    await raw.until((b) => b.includes('echo:hello'));
    const [head, rest] = raw.head();
    assert.match(head, /^HTTP\/1\.1 101 UPGRADED\r\n/);
    assert.match(head, /\r\nContent-Type: application\/vnd\.docker\.multiplexed-stream\r\n/i);
    assert.match(head, /\r\nUpgrade: tcp/i);
    assert.match(head, /\r\nApi-Version: 1\.51/i);
    assert.deepEqual(frames(rest), [{ stream: 1, data: 'echo:hello\n' }]);
    raw.s.write('more\n');
    await raw.until((b) => b.includes('echo:more'));
    raw.s.end(); // half-close: stdin ends, output continues
    await raw.untilEnd();
    assert.deepEqual(frames(raw.head()[1]), [
      { stream: 1, data: 'echo:hello\n' },
      { stream: 1, data: 'echo:more\n' },
      { stream: 2, data: 'bye\n' },
    ]);
    assert.equal(fake.stdinSeen.get('attach:c1')!.toString(), 'hello\nmore\n');
  });

  it('attach: errors before the hijack are plain JSON responses', async () => {
    const raw = new Raw();
    raw.s.write('POST /containers/stopped1/attach?stdin=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
    await raw.untilEnd();
    const [head, body] = raw.head();
    assert.match(head, /^HTTP\/1\.1 409 Conflict/);
    assert.match(JSON.parse(body.toString()).message, /stopped container/);
  });

  it('attach: a chunked terminator is not stdin; TTY is raw; detach keys end the stream', async () => {
    const raw = new Raw();
    raw.s.write(
      'POST /containers/tty1/attach?stdin=1&stdout=1&stream=1&detachKeys=ctrl-x,q HTTP/1.1\r\nHost: d\r\n' +
        'Connection: Upgrade\r\nUpgrade: tcp\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    await raw.until((b) => b.includes('\r\n\r\n'));
    assert.match(raw.head()[0], /Content-Type: application\/vnd\.docker\.raw-stream/i);
    raw.s.write('ab\x18c\x18');
    await raw.until((b) => b.includes('ab\x18c'));
    raw.s.write('qZZZ');
    await raw.untilEnd();
    assert.equal(raw.head()[1].toString('latin1'), 'ab\x18c');
    assert.equal(fake.stdinSeen.get('attach:tty1')!.toString('latin1'), 'ab\x18c');
    raw.s.destroy();
  });

  it('exec start: JSON body inside head is the body, the rest is stdin', async () => {
    const body = '{"Detach":false,"Tty":false,"ConsoleSize":[30,90]}';
    const raw = new Raw();
    raw.s.write(
      `POST /v1.50/exec/${'e'.repeat(64)}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}stdin-bytes`,
    );
    await raw.until((b) => b.includes('echo:stdin-bytes'));
    assert.deepEqual(lastCall('containers.execStart'), ['e'.repeat(64), { Detach: false, Tty: false, ConsoleSize: [30, 90] }]);
    raw.s.end();
    await raw.untilEnd();
    assert.equal(fake.stdinSeen.get(`exec:${'e'.repeat(64)}`)!.toString(), 'stdin-bytes');
  });

  it('exec start: detached answers 200 without a stream; unknown exec is 404', async () => {
    const d = await req('POST', `/exec/${'e'.repeat(64)}/start`, '{"Detach":true}', { 'Content-Type': 'application/json' });
    assert.equal(d.status, 200);
    assert.equal(d.body.length, 0);
    const nf = await req('POST', '/exec/nope/start', '{}');
    assert.equal(nf.status, 404);
  });

  it('an Upgrade request to a non-hijack endpoint gets a normal one-shot answer', async () => {
    const raw = new Raw();
    raw.s.write('GET /v1.50/_ping HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    await raw.untilEnd();
    const [head, body] = raw.head();
    assert.match(head, /^HTTP\/1\.1 200 OK/);
    assert.match(head, /Swarm: inactive/);
    assert.equal(body.toString(), 'OK');
    const grpc = new Raw();
    grpc.s.write('POST /grpc HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n');
    await grpc.untilEnd();
    assert.match(grpc.head()[0], /^HTTP\/1\.1 404 /);
  });

  it('attach without Upgrade answers a raw 200 with Connection: close', async () => {
    const raw = new Raw();
    raw.s.write('POST /containers/c1/attach?stdin=1&stdout=1&stream=1 HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\n\r\nhi\n');
    await raw.untilEnd();
    const [head, rest] = raw.head();
    assert.match(head, /^HTTP\/1\.1 200 OK/);
    assert.match(head, /Connection: close/i);
    assert.doesNotMatch(head, /Transfer-Encoding/i);
    assert.deepEqual(frames(rest), [
      { stream: 1, data: 'echo:hi\n' },
      { stream: 2, data: 'bye\n' },
    ]);
  });
});

describe('archive, stats, events', () => {
  it('sends X-Docker-Container-Path-Stat on HEAD and GET', async () => {
    const h = await req('HEAD', '/v1.50/containers/c1/archive?path=/etc/hosts');
    assert.equal(h.status, 200);
    const stat = JSON.parse(Buffer.from(String(h.headers['x-docker-container-path-stat']), 'base64').toString());
    assert.deepEqual(stat, { name: 'hosts', size: 12, mode: 0o644, mtime: '2024-01-01T00:00:00Z', linkTarget: '' });
    const g = await req('GET', '/containers/c1/archive?path=/etc/hosts');
    assert.equal(g.headers['content-type'], 'application/x-tar');
    assert.ok(g.headers['x-docker-container-path-stat']);
    assert.equal(g.body.toString(), 'TAR:hosts');
    const missing = await req('HEAD', '/containers/c1/archive?path=/nope');
    assert.equal(missing.status, 404);
    const put = await req('PUT', '/containers/c1/archive?path=/tmp&noOverwriteDirNonDir=true', 'TARBODY');
    assert.equal(put.status, 200);
    assert.deepEqual(lastCall('containers.putArchive'), ['c1', '/tmp', 'TARBODY', { noOverwriteDirNonDir: true, copyUIDGID: false }]);
  });

  it('stats: one object with stream=0, NDJSON when streaming, 404 when missing', async () => {
    const one = await req('GET', '/containers/c1/stats?stream=0');
    assert.deepEqual(json(one), { id: 'c1', read: '2024-01-01T00:00:00.123456789Z', n: 0 });
    const many = await req('GET', '/containers/c1/stats');
    assert.equal(many.body.toString().trim().split('\n').length, 3);
    const nf = await req('GET', '/containers/zzz/stats?stream=1');
    assert.equal(nf.status, 404);
  });

  it('events: headers flushed at once, events streamed as NDJSON', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const r = httpRequest({ socketPath: sock, method: 'GET', path: '/events?since=1700000000.5&filters=' + encodeURIComponent('{"type":["container"]}'), agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        res.once('data', (b: Buffer) => {
          res.destroy();
          resolve(b.toString());
        });
        fake.emitEvent({ Type: 'container', Action: 'start', Actor: { ID: 'x', Attributes: {} }, scope: 'local', time: 1, timeNano: 1, status: 'start', id: 'x' });
      });
      r.on('error', reject);
      r.end();
    });
    assert.equal(JSON.parse(got).Action, 'start');
    assert.ok(got.endsWith('\n'));
    assert.deepEqual(lastCall('system.events'), [{ since: 1700000000.5, until: undefined, filters: { type: ['container'] } }]);
  });
});

describe('real docker CLI against the fake engine', { skip: !existsSync('/usr/local/bin/docker') && 'no /usr/local/bin/docker' }, () => {
  it('docker version parses /version', async () => {
    const r = await runAsync(['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), '28.2.2 1.51');
  });
  it('docker ps parses /containers/json', async () => {
    const r = await runAsync(['ps', '--format', '{{.Names}} {{.Status}}']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), 'c1 Up 2 minutes');
  });
  it('docker exec -i streams stdin and demultiplexes output over the hijack', async () => {
    const r = await runAsync(['exec', '-i', 'c1', 'cat'], 'hello\n');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'echo:hello\n');
    assert.equal(r.err, 'bye\n');
  });
  it('docker logs -t demultiplexes frames and shows fixed-width timestamps', async () => {
    const r = await runAsync(['logs', '-t', 'c1']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '2024-01-01T00:00:00.500000000Z line one\n2024-01-01T00:00:00.500000000Z line two\n');
    assert.equal(r.err, '2024-01-01T00:00:00.123456789Z oops\n');
  });
  it('echo hi | docker run -i: create, attach, wait (headers before start), start, exit code', async () => {
    const r = await runAsync(['run', '-i', 'busybox', 'cat'], 'hi\n');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'echo:hi\n');
    assert.equal(r.err, 'bye\n');
    assert.equal(lastCall('containers.wait')[1], 'next-exit');
  });
});

/** Run the docker CLI without blocking the event loop (the server lives in this process). */
function runAsync(args: string[], stdin?: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      '/usr/local/bin/docker',
      ['-H', `unix://${sock}`, ...args],
      { timeout: 15000, env: { ...process.env, DOCKER_CONFIG: dir, HOME: dir } },
      (err, out, errOut) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: errOut }),
    );
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';

import { ApiClient, encodeQuery } from './api-client.js';
import { ApiError, ConnectionError } from './api-error.js';
import { parseHost } from './host.js';
import { readNdjson } from './ndjson.js';
import { copyOutput, forwardStdin } from './attach-io.js';
import { frame, STDOUT, STDERR } from '../wire/stdcopy.js';

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

async function withServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
  fn: (client: ApiClient, seen: Seen[], server: http.Server) => Promise<void>,
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-client-'));
  const sock = path.join(dir, 's.sock');
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    await fn(new ApiClient({ host: `unix://${sock}` }), seen, server);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('parseHost handles unix, bare paths and tcp', () => {
  assert.deepEqual(parseHost('unix:///run/x.sock'), { kind: 'unix', socketPath: '/run/x.sock' });
  assert.deepEqual(parseHost('/tmp/a.sock'), { kind: 'unix', socketPath: '/tmp/a.sock' });
  assert.deepEqual(parseHost('tcp://127.0.0.1:2375'), { kind: 'tcp', host: '127.0.0.1', port: 2375 });
  assert.deepEqual(parseHost('tcp://[::1]:99'), { kind: 'tcp', host: '::1', port: 99 });
  assert.throws(() => parseHost('ftp://x'));
  assert.throws(() => parseHost('tcp://h:99999'));
});

test('encodeQuery drops undefined, repeats arrays, JSON-encodes objects, maps booleans', () => {
  assert.equal(encodeQuery({ a: 1, b: undefined, t: ['x', 'y'], f: { s: { up: true } }, all: true }),
    '?a=1&t=x&t=y&f=%7B%22s%22%3A%7B%22up%22%3Atrue%7D%7D&all=1');
  assert.equal(encodeQuery({}), '');
});

test('json requests use the version prefix and send JSON bodies', async () => {
  await withServer((_req, res) => {
    res.writeHead(201, { 'Content-Type': 'application/json' });
    res.end('{"Id":"abc","Warnings":[]}');
  }, async (c, seen) => {
    const r = await c.post<{ Id: string }>('/containers/create', { name: 'web' }, { Image: 'busybox' });
    assert.equal(r.Id, 'abc');
    assert.equal(seen[0]!.url, '/v1.51/containers/create?name=web');
    assert.equal(seen[0]!.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(seen[0]!.body), { Image: 'busybox' });
  });
});

test('non-2xx JSON error becomes ApiError with status and message', async () => {
  await withServer((_req, res) => {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"message":"No such container: nope"}');
  }, async (c) => {
    await assert.rejects(c.get('/containers/nope/json'), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 404);
      assert.equal(e.kind, 'not-found');
      assert.equal(e.message, 'No such container: nope');
      return true;
    });
  });
});

test('ping reads Api-Version and negotiate lowers the version', async () => {
  await withServer((req, res) => {
    res.writeHead(200, { 'Api-Version': '1.45', Ostype: 'linux' });
    res.end(req.method === 'HEAD' ? undefined : 'OK');
  }, async (c, seen) => {
    const p = await c.negotiate();
    assert.equal(p.apiVersion, '1.45');
    assert.equal(seen[0]!.method, 'HEAD');
    assert.equal(seen[0]!.url, '/_ping');
    assert.equal(c.apiVersion, '1.45');
  });
});

test('connection failure is a ConnectionError', async () => {
  const c = new ApiClient({ host: 'unix:///nonexistent/berth.sock' });
  await assert.rejects(c.ping(), (e: unknown) => e instanceof ConnectionError);
});

test('ndjson streams values as they arrive', async () => {
  await withServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"status":"a"}\n{"sta');
    setTimeout(() => res.end('tus":"b"}\r\n\n{"status":"c"}'), 10);
  }, async (c) => {
    const got: string[] = [];
    for await (const m of c.ndjson<{ status: string }>('POST', '/images/create')) got.push(m.status);
    assert.deepEqual(got, ['a', 'b', 'c']);
  });
});

test('readNdjson handles split multibyte characters', async () => {
  const b = Buffer.from('{"s":"é"}\n');
  const src = Readable.from([b.subarray(0, 7), b.subarray(7)]);
  const out: unknown[] = [];
  for await (const v of readNdjson(src)) out.push(v);
  assert.deepEqual(out, [{ s: 'é' }]);
});

test('hijack: 101 upgrade gives a raw socket; stdin half-close and multiplexed output work', async () => {
  await withServer(() => { /* not used */ }, async (c, _seen, server) => {
    let gotStdin = '';
    let upgradeReq: http.IncomingMessage | undefined;
    server.on('upgrade', (req: http.IncomingMessage, socket: import('node:net').Socket) => {
      upgradeReq = req;
      socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
      socket.on('data', (d: Buffer) => (gotStdin += d.toString()));
      socket.on('end', () => {
        socket.write(frame(STDOUT, Buffer.from(gotStdin)));
        socket.end(frame(STDERR, Buffer.from('err\n')));
      });
    });
    const h = await c.hijack('/containers/x/attach', { query: { stream: 1, stdin: 1, stdout: 1, stderr: 1 } });
    assert.equal(h.multiplexed, true);
    assert.equal(upgradeReq!.headers['upgrade'], 'tcp');
    assert.equal(upgradeReq!.url, '/v1.51/containers/x/attach?stream=1&stdin=1&stdout=1&stderr=1');
    const stdin = Readable.from([Buffer.from('hi\n')]);
    const fwd = forwardStdin(stdin, h.socket);
    const out = new PassThrough();
    const err = new PassThrough();
    const outChunks: Buffer[] = [];
    const errChunks: Buffer[] = [];
    out.on('data', (d: Buffer) => outChunks.push(d));
    err.on('data', (d: Buffer) => errChunks.push(d));
    await copyOutput(h.socket, true, out, err);
    await fwd.done;
    assert.equal(Buffer.concat(outChunks).toString(), 'hi\n');
    assert.equal(Buffer.concat(errChunks).toString(), 'err\n');
  });
});

test('hijack: a JSON error before the upgrade is rejected as ApiError', async () => {
  await withServer((_req, res) => {
    res.writeHead(409, { 'Content-Type': 'application/json' });
    res.end('{"message":"container is not running"}');
  }, async (c) => {
    await assert.rejects(c.hijack('/exec/1/start', { body: { Detach: false } }), (e: unknown) =>
      e instanceof ApiError && e.status === 409 && e.message === 'container is not running');
  });
});

test('lazy client: no /_ping first; an older daemon\'s "too new" answer lowers the version and the request is made again', async () => {
  await withServer((req, res) => {
    if (req.url!.startsWith('/v1.51/')) {
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'client version 1.51 is too new. Maximum supported API version is 1.43' }));
    } else if (req.url === '/_ping') res.setHeader('Api-Version', '1.43').end(req.method === 'HEAD' ? undefined : 'OK');
    else res.setHeader('Content-Type', 'application/json').end('[{"Id":"x"}]');
  }, async (eager, seen) => {
    const c = new ApiClient({ host: eager.host, lazy: {} });
    assert.deepEqual(await c.get('/containers/json'), [{ Id: 'x' }]);
    assert.equal(c.apiVersion, '1.43');
    assert.deepEqual(await c.post('/containers/x/start'), [{ Id: 'x' }]);
    assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`), ['GET /v1.51/containers/json', 'GET /v1.43/containers/json', 'POST /v1.43/containers/x/start']);
    // a streamed request negotiates first when nothing was asked yet
    seen.length = 0;
    const s = new ApiClient({ host: eager.host, lazy: {} });
    const res = await s.request('GET', '/events');
    res.resume();
    assert.deepEqual(seen.map((x) => `${x.method} ${x.url}`), ['HEAD /_ping', 'GET /v1.43/events']);
    s.close();
    c.close();
  });
});

test('lazy client: when nothing listens, onUnreachable runs once (it may start the daemon) and the request is made again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-client-'));
  const sock = path.join(dir, 's.sock');
  const server = http.createServer((req, res) => res.setHeader('Content-Type', 'application/json').end('{"Version":"1"}'));
  let calls = 0;
  try {
    const c = new ApiClient({ host: `unix://${sock}`, lazy: { onUnreachable: async () => {
      calls++;
      await new Promise<void>((r) => server.listen(sock, r));
    } } });
    assert.deepEqual(await c.get('/version'), { Version: '1' });
    assert.equal(calls, 1);
    const none = new ApiClient({ host: `unix://${path.join(dir, 'none.sock')}`, lazy: { onUnreachable: async () => void calls++ } });
    await assert.rejects(none.get('/version'), ConnectionError);
    assert.equal(calls, 2); // tried once, then the ConnectionError
    c.close();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

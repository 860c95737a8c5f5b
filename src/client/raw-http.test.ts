import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

import { encodeRequest, rawExchange, ResponseParser, type RawResponse } from './raw-http.js';

/** Feed `text` to a parser split at every `step` bytes; returns the response and at which feed it completed. */
function parse(method: string, text: string, step: number, ended = false): { res: RawResponse | undefined; at: number } {
  const p = new ResponseParser(method);
  const b = Buffer.from(text, 'latin1');
  for (let i = 0; i < b.length; i += step) {
    const r = p.feed(b.subarray(i, i + step));
    if (r) return { res: r, at: i + step };
  }
  return { res: ended ? p.end() : undefined, at: b.length };
}

test('parser: Content-Length, chunked and read-until-close bodies, at any split', () => {
  const cl = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.51\r\nContent-Length: 11\r\n\r\n{"a":"xyz"}';
  const chunked = 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\nb;ext=1\r\n:"xyzxyzxy"\r\n1\r\n}\r\n0\r\nTrailer: x\r\n\r\n';
  for (const step of [1, 2, 3, 7, 1000]) {
    const a = parse('GET', cl, step).res!;
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-type'], 'application/json');
    assert.equal(a.headers['api-version'], '1.51');
    assert.equal(a.body.toString(), '{"a":"xyz"}');
    const c = parse('POST', chunked, step).res!;
    assert.equal(c.status, 201);
    assert.equal(c.body.toString(), '{"a":"xyzxyzxy"}');
    const e = parse('GET', 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', step, true).res!;
    assert.equal(e.body.toString(), 'until the end');
  }
});

test('parser: HEAD, 204 and 304 have no body; 1xx answers are skipped; repeated headers are joined', () => {
  const head = parse('HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.51\r\n\r\n', 5).res!;
  assert.equal(head.body.length, 0);
  assert.equal(head.headers['content-length'], '2');
  assert.equal(parse('DELETE', 'HTTP/1.1 204 No Content\r\n\r\n', 4).res!.status, 204);
  assert.equal(parse('POST', 'HTTP/1.1 304 Not Modified\r\n\r\n', 100).res!.status, 304);
  const cont = parse('POST', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nWarning: a\r\nwarning: b\r\nContent-Length: 2\r\n\r\nok', 6).res!;
  assert.equal(cont.status, 200);
  assert.equal(cont.headers['warning'], 'a, b');
  assert.equal(cont.body.toString(), 'ok');
});

test('parser: malformed answers and early ends are errors', () => {
  assert.throws(() => parse('GET', 'SSH-2.0-OpenSSH\r\n\r\n', 100), /invalid HTTP response/);
  assert.throws(() => parse('GET', 'HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n', 100), /invalid HTTP response from the daemon: Content-Length/);
  assert.throws(() => parse('GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 100), /chunk size/);
  assert.throws(() => parse('GET', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', 100, true), /socket hang up/);
  assert.throws(() => parse('GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 100, true), /socket hang up/);
  assert.throws(() => parse('GET', `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`, 4096), /head too large/);
});

test('encodeRequest: Content-Length as node:http sends it, Connection: close, no header injection', () => {
  const get = encodeRequest({ method: 'GET', path: '/v1.51/containers/json?all=1', headers: { Host: 'berth' } }).toString();
  assert.equal(get, 'GET /v1.51/containers/json?all=1 HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n');
  const post = encodeRequest({ method: 'POST', path: '/x', headers: {} }).toString();
  assert.match(post, /\r\nContent-Length: 0\r\n/);
  const body = encodeRequest({ method: 'POST', path: '/x', headers: { 'Content-Type': 'application/json', 'Content-Length': '2' }, body: Buffer.from('{}') }).toString();
  assert.equal(body, 'POST /x HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
  assert.throws(() => encodeRequest({ method: 'GET', path: '/', headers: { 'X-Registry-Auth': 'a\r\nEvil: 1' } }), /invalid header/);
});

test('rawExchange against node:http on a UNIX socket: chunked and fixed bodies, request body, keep-alive server, ENOENT', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-raw-'));
  const sock = path.join(dir, 's.sock');
  const seen: string[] = [];
  const big = 'x'.repeat(300_000);
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers['content-length'] ?? '-'} ${req.headers['connection']} ${body}`);
      if (req.url === '/big') {
        res.write(big.slice(0, 1000)); // no Content-Length: chunked
        setTimeout(() => res.end(big.slice(1000)), 20);
      } else if (req.url === '/missing') {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"message":"No such container: x"}');
      } else res.setHeader('Api-Version', '1.51').end(JSON.stringify({ ok: true, body }));
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const addr = { kind: 'unix' as const, socketPath: sock };
    const a = await rawExchange(addr, { method: 'POST', path: '/echo', headers: { Host: 'berth', 'Content-Type': 'application/json' }, body: Buffer.from('{"n":1}') });
    assert.equal(a.status, 200);
    assert.equal(a.headers['api-version'], '1.51');
    assert.deepEqual(JSON.parse(a.body.toString()), { ok: true, body: '{"n":1}' });
    const b = await rawExchange(addr, { method: 'GET', path: '/big', headers: { Host: 'berth' } });
    assert.equal(b.headers['transfer-encoding'], 'chunked');
    assert.equal(b.body.toString(), big);
    const h = await rawExchange(addr, { method: 'HEAD', path: '/_ping', headers: { Host: 'berth' } });
    assert.equal(h.status, 200);
    assert.equal(h.body.length, 0);
    const m = await rawExchange(addr, { method: 'GET', path: '/missing', headers: { Host: 'berth' } });
    assert.equal(m.status, 404);
    assert.match(m.body.toString(), /No such container/);
    assert.deepEqual(seen, ['POST /echo 7 close {"n":1}', 'GET /big - close ', 'HEAD /_ping - close ', 'GET /missing - close ']);
    await assert.rejects(rawExchange({ kind: 'unix', socketPath: path.join(dir, 'none.sock') }, { method: 'GET', path: '/', headers: {} }), { code: 'ENOENT' });
  } finally {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rawExchange over TCP (tcp://host:port hosts); a daemon closing early is a hang-up', async () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/cut') {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 10);
    } else res.setHeader('Content-Type', 'application/json').end('{"Version":"1"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const addr = { kind: 'tcp' as const, host: '127.0.0.1', port };
    const r = await rawExchange(addr, { method: 'GET', path: '/version', headers: { Host: 'berth' } });
    assert.equal(r.body.toString(), '{"Version":"1"}');
    await assert.rejects(rawExchange(addr, { method: 'GET', path: '/cut', headers: { Host: 'berth' } }), /socket hang up/);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

/**
 * `GET /containers/{id}/attach/ws` against a real berthd with a raw RFC 6455 client written here:
 * handshake, stdin frames into the container, output frames back (unmultiplexed), ping/pong, close,
 * and the handshake errors.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, startDaemon, waitFor, Waiters, type TestDaemon } from './harness.js';

const skip = firstSkip(requireRoot(), requireBuilt(), requireBinary('conmon'), requireBinary('crun'), requireBinary('socat'));

interface Frame {
  opcode: number;
  payload: Buffer;
}

/** A minimal websocket client over the daemon's UNIX socket. */
class WsClient {
  private buf = Buffer.alloc(0);
  readonly frames: Frame[] = [];
  head = '';
  status = 0;
  headers: Record<string, string> = {};
  ended = false;
  private readonly waiters = new Waiters();

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
      this.waiters.wake();
    });
    sock.on('end', () => {
      this.ended = true;
      this.waiters.wake();
    });
    sock.on('error', () => undefined);
  }

  static open(h: TestDaemon, path: string, key: string, extra: Record<string, string> = {}): Promise<WsClient> {
    const sock = connect(h.socket);
    const c = new WsClient(sock);
    const headers = { Host: 'd', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', Origin: 'http://localhost', ...extra };
    sock.write(`GET ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    return c.until(() => c.status !== 0 || c.ended).then(() => c);
  }

  private parse(): void {
    if (!this.status) {
      const i = this.buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      this.head = this.buf.subarray(0, i).toString('latin1');
      this.buf = this.buf.subarray(i + 4);
      const lines = this.head.split('\r\n');
      this.status = Number(/^HTTP\/1\.1 (\d+)/.exec(lines[0]!)?.[1] ?? 0);
      for (const l of lines.slice(1)) {
        const j = l.indexOf(':');
        if (j > 0) this.headers[l.slice(0, j).toLowerCase()] = l.slice(j + 1).trim();
      }
      if (this.status !== 101) return;
    }
    if (this.status !== 101) return;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      assert.equal(b[1]! & 0x80, 0, 'server frames must not be masked');
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) return;
      assert.equal(b[0]! & 0x80, 0x80, 'server frames are final');
      this.frames.push({ opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(off, off + len)) });
      this.buf = b.subarray(off + len);
    }
  }

  /** Body bytes after a non-101 head. */
  rest(): string {
    return this.buf.toString('utf8');
  }

  until(cond: () => boolean, ms = 15_000): Promise<void> {
    return this.waiters.until(cond, ms, () => `websocket: condition not met; frames ${JSON.stringify(this.text())}`);
  }

  /** Concatenated payloads of data frames. */
  text(): string {
    return Buffer.concat(this.frames.filter((f) => f.opcode === 1 || f.opcode === 2).map((f) => f.payload)).toString('utf8');
  }

  send(opcode: number, payload: Buffer, fin = true): void {
    const mask = randomBytes(4);
    const n = payload.length;
    const head = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | n]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, n >> 8, n & 0xff]);
    const body = Buffer.from(payload.map((x, i) => x ^ mask[i & 3]!));
    this.sock.write(Buffer.concat([head, mask, body]));
  }
}

test('attach over websocket: handshake, stdin, output, ping, close', { skip, timeout: 120_000 }, async (t) => {
  const h = await startDaemon();
  t.after(() => cleanup(h));
  await importBusybox(h);
  // Echoes each stdin line on stdout and on stderr; "quit" ends it. `run -d -i` leaves StdinOnce
  // false, so a client that goes away must not close the container's stdin.
  const script = 'while read l; do [ "$l" = quit ] && break; echo "OUT:$l"; echo "ERR:$l" >&2; done; echo bye';
  const id = (await h.cliOk(['run', '-d', '-i', '--name', 'wsc', 'busybox', 'sh', '-c', script])).trim();

  const key = randomBytes(16).toString('base64');
  const ws = await WsClient.open(h, '/v1.51/containers/wsc/attach/ws?stream=1&stdin=1&stdout=1&stderr=1', key);
  assert.equal(ws.status, 101, ws.head + ws.rest());
  assert.equal(ws.headers['upgrade']?.toLowerCase(), 'websocket');
  assert.equal(ws.headers['connection']?.toLowerCase(), 'upgrade');
  const expected = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  assert.equal(ws.headers['sec-websocket-accept'], expected);

  // stdin as a text frame, and one message split over a fragment + continuation.
  ws.send(1, Buffer.from('hello\n'));
  await ws.until(() => ws.text().includes('OUT:hello\n') && ws.text().includes('ERR:hello\n'));
  ws.send(2, Buffer.from('wor'), false);
  ws.send(0, Buffer.from('ld\n'), true);
  await ws.until(() => ws.text().includes('OUT:world\n'));
  // No multiplexing headers on websocket streams: the first data byte is the text itself.
  const firstData = ws.frames.find((f) => f.opcode === 1 || f.opcode === 2)!;
  assert.ok(firstData.payload.toString().startsWith('OUT:') || firstData.payload.toString().startsWith('ERR:'), JSON.stringify(firstData.payload.toString()));
  assert.equal(firstData.opcode, 2, 'API >= 1.28 sends binary frames');

  ws.send(9, Buffer.from('pingdata'));
  await ws.until(() => ws.frames.some((f) => f.opcode === 10 && f.payload.toString() === 'pingdata'));

  // Close: the server echoes the close frame and ends the connection; the container keeps running.
  const close = Buffer.alloc(2);
  close.writeUInt16BE(1000);
  ws.send(8, close);
  await ws.until(() => ws.ended && ws.frames.some((f) => f.opcode === 8));
  assert.equal(ws.frames.find((f) => f.opcode === 8)!.payload.readUInt16BE(0), 1000);
  ws.sock.destroy();
  const st = JSON.parse(await h.cliOk(['inspect', '--format', '{{json .State}}', id])) as { Running: boolean };
  assert.equal(st.Running, true);

  // Text frames below API 1.28; logs=1 replays what the container printed.
  const old = await WsClient.open(h, '/v1.27/containers/wsc/attach/ws?logs=1&stream=0&stdout=1', randomBytes(16).toString('base64'));
  assert.equal(old.status, 101);
  await old.until(() => old.text().includes('OUT:world'));
  assert.equal(old.frames.find((f) => f.opcode === 1 || f.opcode === 2)!.opcode, 1);
  await old.until(() => old.ended);
  old.sock.destroy();

  // Output ends with the process: the close frame follows "bye".
  const last = await WsClient.open(h, '/containers/wsc/attach/ws?stream=1&stdin=1&stdout=1', randomBytes(16).toString('base64'));
  assert.equal(last.status, 101);
  last.send(1, Buffer.from('end\n'));
  await last.until(() => last.text().includes('OUT:end\n'));
  last.send(1, Buffer.from('quit\n'));
  await last.until(() => last.text().includes('bye\n') && last.frames.some((f) => f.opcode === 8));
  last.sock.destroy();
  await waitFor(async () => (await h.cliOk(['inspect', '--format', '{{.State.Running}}', id])).trim() === 'false');
});

test('attach over websocket: handshake errors are plain HTTP errors', { skip, timeout: 120_000 }, async (t) => {
  const h = await startDaemon();
  t.after(() => cleanup(h));
  await importBusybox(h);
  await h.cliOk(['run', '-d', '--name', 'wse', 'busybox', 'sleep', '300']);

  const missing = await WsClient.open(h, '/containers/nope/attach/ws?stream=1&stdout=1', randomBytes(16).toString('base64'));
  assert.equal(missing.status, 404);
  assert.match(missing.rest(), /No such container: nope/);

  const badKey = await WsClient.open(h, '/containers/wse/attach/ws?stream=1&stdout=1', 'not-a-key');
  assert.equal(badKey.status, 400);
  assert.match(badKey.rest(), /Sec-WebSocket-Key/);

  const badVersion = await WsClient.open(h, '/containers/wse/attach/ws?stream=1&stdout=1', randomBytes(16).toString('base64'), { 'Sec-WebSocket-Version': '8' });
  assert.equal(badVersion.status, 400);

  // Unmasked client frames violate RFC 6455 §5.1: the server closes with 1002.
  const ws = await WsClient.open(h, '/containers/wse/attach/ws?stream=1&stdin=1&stdout=1', randomBytes(16).toString('base64'));
  assert.equal(ws.status, 101);
  ws.sock.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
  await ws.until(() => ws.frames.some((f) => f.opcode === 8));
  assert.equal(ws.frames.find((f) => f.opcode === 8)!.payload.readUInt16BE(0), 1002);
  ws.sock.destroy();

  // A plain GET without Upgrade is refused, not hung.
  const plain = await new Promise<string>((resolve) => {
    const s = connect(h.socket);
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', () => resolve(out));
    s.write('GET /containers/wse/attach/ws?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n');
  });
  assert.match(plain, /^HTTP\/1\.1 400/);
  assert.ok(await h.ping());
});

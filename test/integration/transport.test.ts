/**
 * Transport details of issue 4 against a real berthd, over raw sockets: no idle keep-alive timeout,
 * chunked request bodies, server-side detach keys on attach and exec (default ctrl-p ctrl-q and a
 * custom sequence), and stdin half-close on attach (output still flows, then the stream ends).
 * Plus the docker CLI's `attach --detach-keys` and `exec -it` detach under a pseudo-terminal.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, runCommand, startDaemon, waitFor, Waiters, type TestDaemon } from './harness.js';

const DOCKER = '/usr/local/bin/docker';
const skip = firstSkip(requireRoot(), requireBuilt(), requireBinary('conmon'), requireBinary('socat'));

/** One raw connection with a byte log and helpers to wait for content and for the server's FIN. */
class Conn {
  data = Buffer.alloc(0);
  ended = false;
  private readonly waiters = new Waiters();
  readonly sock: Socket;

  constructor(h: TestDaemon) {
    this.sock = connect({ path: h.socket, allowHalfOpen: true });
    this.sock.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    this.sock.on('end', () => {
      this.ended = true;
      this.wake();
    });
    this.sock.on('error', () => undefined);
  }

  private wake(): void {
    this.waiters.wake();
  }

  text(): string {
    return this.data.toString('latin1');
  }

  until(cond: () => boolean, ms = 15_000): Promise<void> {
    return this.waiters.until(cond, ms, () => `condition not met; got ${JSON.stringify(this.text().slice(-400))}`);
  }

  /** Wait for a complete Content-Length response after byte offset `from`; returns its status and body. */
  async response(from = 0): Promise<{ status: number; body: string; end: number }> {
    let parsed: { status: number; body: string; end: number } | undefined;
    await this.until(() => {
      const t = this.text().slice(from);
      const i = t.indexOf('\r\n\r\n');
      if (i < 0) return false;
      const len = Number(/content-length: (\d+)/i.exec(t.slice(0, i))?.[1] ?? 0);
      if (t.length < i + 4 + len) return false;
      parsed = { status: Number(t.slice(9, 12)), body: t.slice(i + 4, i + 4 + len), end: from + i + 4 + len };
      return true;
    });
    return parsed!;
  }
}

async function api(h: TestDaemon, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const c = new Conn(h);
  const b = body === undefined ? '' : JSON.stringify(body);
  c.sock.write(`${method} ${path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`);
  const r = await c.response();
  c.sock.destroy();
  let json: unknown;
  try {
    json = JSON.parse(r.body);
  } catch {
    json = r.body;
  }
  return { status: r.status, json };
}

test('transport: keep-alive without idle timeout, chunked bodies, detach keys, stdin half-close', { skip, timeout: 180_000 }, async (t) => {
  const h = await startDaemon();
  t.after(() => cleanup(h));
  await importBusybox(h);

  await t.test('an idle keep-alive connection is still served after 6 s (Node would close it at 5 s)', async () => {
    const c = new Conn(h);
    c.sock.write('GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n');
    const first = await c.response();
    assert.equal(first.status, 200);
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(c.ended, false, 'the daemon closed an idle keep-alive connection');
    c.sock.write('GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n');
    const second = await c.response(first.end);
    assert.equal(second.status, 200);
    assert.equal(second.body, 'OK');
    c.sock.destroy();
  });

  await t.test('chunked request bodies (create, and exec start over an upgrade)', async () => {
    const c = new Conn(h);
    const body = JSON.stringify({ Image: 'busybox', Cmd: ['sh'], Tty: true, OpenStdin: true });
    const chunks = [body.slice(0, 7), body.slice(7, 20), body.slice(20)].map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('');
    c.sock.write(`POST /containers/create?name=tty1 HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
    const r = await c.response();
    assert.equal(r.status, 201, r.body);
    c.sock.destroy();
    assert.equal((await api(h, 'POST', '/containers/tty1/start')).status, 204);

    const ex = await api(h, 'POST', '/containers/tty1/exec', { Cmd: ['echo', 'chunked-exec'], AttachStdout: true });
    assert.equal(ex.status, 201);
    const id = (ex.json as { Id: string }).Id;
    const u = new Conn(h);
    const start = '{"Detach":false,"Tty":false}';
    u.sock.write(`POST /exec/${id}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${start.length.toString(16)}\r\n${start}\r\n0\r\n\r\n`);
    await u.until(() => u.ended);
    assert.match(u.text(), /^HTTP\/1\.1 101 UPGRADED\r\n/);
    assert.ok(u.text().includes('chunked-exec\n'));
    u.sock.destroy();
  });

  await t.test('attach: default detach keys ctrl-p ctrl-q end the stream, the container keeps running', async () => {
    const c = new Conn(h);
    c.sock.write('POST /containers/tty1/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    await c.until(() => c.text().includes('101 UPGRADED'));
    c.sock.write('echo hel""lo-1\n');
    await c.until(() => c.text().includes('hello-1'));
    c.sock.write(Buffer.from([0x10, 0x11]));
    await c.until(() => c.ended);
    c.sock.destroy();
    const st = await api(h, 'GET', '/containers/tty1/json');
    assert.equal((st.json as { State: { Running: boolean } }).State.Running, true);
  });

  await t.test('attach: a custom detachKeys sequence; its first byte alone passes through', async () => {
    const c = new Conn(h);
    c.sock.write('POST /containers/tty1/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,x HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    await c.until(() => c.text().includes('101 UPGRADED'));
    // ctrl-p ctrl-q is not the sequence now: the shell gets it (and ignores it); ctrl-a then "e"
    // is not the sequence either, so both bytes reach the shell: "\x01echo" would break the word,
    // so send ctrl-a followed by a newline (an empty command line).
    c.sock.write(Buffer.from([0x10, 0x11]));
    c.sock.write(Buffer.from([0x01, 0x0a]));
    c.sock.write('echo still""-here\n');
    await c.until(() => c.text().includes('still-here'));
    assert.equal(c.ended, false);
    c.sock.write(Buffer.from([0x01]));
    c.sock.write('x');
    await c.until(() => c.ended);
    c.sock.destroy();
    const bad = await api(h, 'POST', '/containers/tty1/attach?stream=1&stdin=1&detachKeys=ctrl-%3F%3F');
    assert.equal(bad.status, 400);
    assert.match(String((bad.json as { message: string }).message), /Invalid detach keys/);
  });

  await t.test('exec -it: DetachKeys of the exec end the stream, the exec process keeps running', async () => {
    const ex = await api(h, 'POST', '/containers/tty1/exec', { Cmd: ['sh'], Tty: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, DetachKeys: 'ctrl-e,e' });
    assert.equal(ex.status, 201);
    const id = (ex.json as { Id: string }).Id;
    const c = new Conn(h);
    const start = '{"Detach":false,"Tty":true}';
    c.sock.write(`POST /exec/${id}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${start.length}\r\n\r\n${start}`);
    await c.until(() => c.text().includes('101 UPGRADED'));
    c.sock.write('echo in""-exec\n');
    await c.until(() => c.text().includes('in-exec'));
    c.sock.write(Buffer.from([0x05, 0x65]));
    await c.until(() => c.ended);
    c.sock.destroy();
    const info = await api(h, 'GET', `/exec/${id}/json`);
    assert.equal((info.json as { Running: boolean }).Running, true);
  });

  await t.test('attach: stdin half-close ends the process input, output still arrives, then the stream ends', async () => {
    const cr = await api(h, 'POST', '/containers/create?name=cat1', { Image: 'busybox', Cmd: ['sh', '-c', 'cat; echo after-eof'], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true });
    assert.equal(cr.status, 201);
    const c = new Conn(h);
    c.sock.write('POST /containers/cat1/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    await c.until(() => c.text().includes('101 UPGRADED'));
    // stdin and its end arrive before start (as `echo x | docker run -i` does).
    c.sock.write('line-a\nline-b\n');
    c.sock.end();
    assert.equal((await api(h, 'POST', '/containers/cat1/start')).status, 204);
    await c.until(() => c.ended);
    const payload = c.data.subarray(c.data.indexOf('\r\n\r\n') + 4);
    // Multiplexed frames (API 1.51, no TTY): stdout frames carry the text.
    let out = '';
    for (let i = 0; i + 8 <= payload.length; ) {
      const len = payload.readUInt32BE(i + 4);
      if (payload[i] === 1) out += payload.subarray(i + 8, i + 8 + len).toString();
      i += 8 + len;
    }
    assert.equal(out, 'line-a\nline-b\nafter-eof\n');
    c.sock.destroy();
    await waitFor(async () => ((await api(h, 'GET', '/containers/cat1/json')).json as { State: { Running: boolean } }).State.Running === false);
  });

  await t.test('attach to a paused container: a clean 409 before any upgrade', async () => {
    assert.equal((await api(h, 'POST', '/containers/tty1/pause')).status, 204);
    const c = new Conn(h);
    c.sock.write('POST /containers/tty1/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    const r = await c.response();
    c.sock.destroy();
    assert.equal(r.status, 409);
    assert.match(r.body, /You cannot attach to a paused container, unpause it first/);
    assert.equal((await api(h, 'POST', '/containers/tty1/unpause')).status, 204);
  });

  await t.test('docker CLI: attach --detach-keys and exec -it detach under a pseudo-terminal', { skip: firstSkip(requireBinary(DOCKER), requireBinary('script')) }, async () => {
    const env = { DOCKER_HOST: h.host, DOCKER_CONFIG: join(h.baseDir, 'docker-config') };
    const viaPty = async (cmd: string, steps: Array<string | Buffer>): Promise<string> => {
      // `script` copies its stdin to the pty; a small shell feeds the steps with pauses.
      const feed = steps.map((s) => `sleep 1; printf '${[...Buffer.from(s)].map((b) => '\\' + b.toString(8).padStart(3, '0')).join('')}'`).join('; ') + '; sleep 3';
      const r = await runCommand('bash', ['-c', `(${feed}) | script -qec "${DOCKER} ${cmd}" /dev/null`], { env, timeoutMs: 40_000 });
      return r.stdout;
    };
    const a = await viaPty('attach --detach-keys ctrl-a,x tty1', ['echo via""-cli\n', Buffer.from([0x01, 0x78])]);
    assert.match(a, /via-cli/);
    assert.match(a, /read escape sequence/);
    const e = await viaPty('exec -it tty1 sh', ['echo exec""-cli\n', Buffer.from([0x10, 0x11])]);
    assert.match(e, /exec-cli/);
    assert.match(e, /read escape sequence/);
    const st = await api(h, 'GET', '/containers/tty1/json');
    assert.equal((st.json as { State: { Running: boolean } }).State.Running, true);
  });
});

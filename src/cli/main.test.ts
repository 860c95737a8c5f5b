import { test } from 'node:test';
import assert from 'node:assert/strict';

import { frame, STDOUT } from '../wire/stdcopy.js';
import { reply, runCli, startFakeDaemon } from './fake-daemon.test-helper.js';

const ID = 'a'.repeat(64);

test('version --format renders client and server fields', async () => {
  const d = await startFakeDaemon([(req, res, _b, url) => url.pathname === '/version' && reply(res, 200, { Version: '9.9', ApiVersion: '1.51' })]);
  try {
    const r = await runCli(d.host, ['version', '--format', '{{.Server.Version}} {{.Client.Version}}']);
    assert.equal(r.code, 0);
    assert.equal(r.out, '9.9 0.1.0\n');
    // one round trip: no /_ping negotiation, the unversioned /version carries the API version
    assert.deepEqual(d.seen.map((s) => `${s.method} ${s.path}`), ['GET /version']);
  } finally {
    await d.close();
  }
});

test('version takes an older daemon\'s API version as the client\'s (what /_ping negotiation gave)', async () => {
  const d = await startFakeDaemon([(req, res, _b, url) => url.pathname === '/version' && reply(res, 200, { Version: '1.0', ApiVersion: '1.43' })]);
  try {
    const r = await runCli(d.host, ['version', '--format', '{{.Client.ApiVersion}} {{.Server.ApiVersion}}']);
    assert.equal(r.code, 0);
    assert.equal(r.out, '1.43 1.43\n');
    const plain = await runCli(d.host, ['version']);
    assert.match(plain.out, /^ API version:\s+1\.43$/m);
  } finally {
    await d.close();
  }
});

test('ps sends flags as query and renders docker table', async () => {
  const now = Math.floor(Date.now() / 1000);
  const d = await startFakeDaemon([(req, res, _b, url) => url.pathname === '/containers/json' && reply(res, 200, [
    { Id: ID, Names: ['/web'], Image: 'busybox', Command: 'sleep 1000000000000000000', Created: now - 120, Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }], State: 'running', Status: 'Up 2 minutes' },
  ])]);
  try {
    const r = await runCli(d.host, ['ps', '-a', '--filter', 'status=running', '--filter', 'label=a=b']);
    assert.equal(r.code, 0);
    const q = d.seen.find((s) => s.path === '/containers/json')!.query;
    assert.equal(q.get('all'), '1');
    assert.deepEqual(JSON.parse(q.get('filters')!), { status: { running: true }, label: { 'a=b': true } });
    const lines = r.out.split('\n');
    assert.equal(lines[0], 'CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS                  NAMES');
    assert.equal(lines[1], `${'a'.repeat(12)}   busybox   "sleep 1000000000000…"   2 minutes ago   Up 2 minutes   0.0.0.0:8080->80/tcp   web`);
    const q2 = await runCli(d.host, ['ps', '-q', '--no-trunc']);
    assert.equal(q2.out, `${ID}\n`);
    const f = await runCli(d.host, ['ps', '--format', '{{.Names}}\\t{{.State}}']);
    assert.equal(f.out, 'web\trunning\n');
  } finally {
    await d.close();
  }
});

test('daemon errors: "Error response from daemon" exit 1; run prints berth: prefix and exits 125', async () => {
  const d = await startFakeDaemon([
    (req, res, _b, url) => url.pathname.startsWith('/containers/nope') && reply(res, 404, { message: 'No such container: nope' }),
    (req, res, _b, url) => url.pathname === '/containers/create' && reply(res, 409, { message: 'Conflict. The container name "/x" is already in use' }),
  ]);
  try {
    const r = await runCli(d.host, ['stop', 'nope']);
    assert.equal(r.code, 1);
    assert.equal(r.err, 'Error response from daemon: No such container: nope\n');
    const r2 = await runCli(d.host, ['run', '--name', 'x', 'busybox']);
    assert.equal(r2.code, 125);
    assert.match(r2.err, /^berth: Error response from daemon: Conflict\./);
    const r3 = await runCli(d.host, ['inspect', 'nope']);
    assert.equal(r3.code, 1);
    assert.equal(r3.out, '[]\n');
    assert.match(r3.err, /Error: No such object: nope/);
  } finally {
    await d.close();
  }
});

test('run -i: pull on missing image, create → attach → wait → start, stdin piped, exit code from wait', async () => {
  let pulled = false;
  let started = false;
  let exitNow: ((code: number) => void) | undefined;
  const exited = new Promise<number>((r) => (exitNow = r));
  let stdinData = '';
  let stdinClosed = false;
  let sock: import('node:net').Socket | undefined;
  const maybeFinish = (): void => {
    if (started && stdinClosed && sock) {
      sock.write(frame(STDOUT, Buffer.from(stdinData)));
      sock.end();
      exitNow!(3);
    }
  };
  const d = await startFakeDaemon([
    (req, res, body, url) => {
      if (url.pathname !== '/containers/create') return false;
      if (!pulled) return reply(res, 404, { message: 'No such image: busybox:latest' });
      const b = JSON.parse(body) as Record<string, unknown>;
      assert.equal(b['OpenStdin'], true);
      assert.equal(b['StdinOnce'], true);
      assert.equal(b['AttachStdin'], true);
      assert.deepEqual(b['Cmd'], ['cat']);
      assert.equal((b['HostConfig'] as Record<string, unknown>)['AutoRemove'], true);
      return reply(res, 201, { Id: ID, Warnings: [] });
    },
    (req, res, _b, url) => {
      if (url.pathname !== '/images/create') return false;
      assert.equal(url.searchParams.get('fromImage'), 'docker.io/library/busybox');
      assert.equal(url.searchParams.get('tag'), 'latest');
      pulled = true;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"status":"Pulling from library/busybox","id":"latest"}\n{"status":"Status: Downloaded newer image for busybox:latest"}\n');
      return true;
    },
    (req, res, _b, url) => {
      if (url.pathname !== `/containers/${ID}/wait`) return false;
      assert.equal(url.searchParams.get('condition'), 'removed');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      void exited.then((code) => res.end(JSON.stringify({ StatusCode: code, Error: null }) + '\n'));
      return true;
    },
    (req, res, _b, url) => {
      if (url.pathname !== `/containers/${ID}/start`) return false;
      started = true;
      reply(res, 204);
      setImmediate(maybeFinish);
      return true;
    },
  ], (req, socket, url) => {
    assert.equal(url.pathname, `/containers/${ID}/attach`);
    assert.equal(url.searchParams.get('stdin'), '1');
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    sock = socket;
    socket.on('data', (c: Buffer) => (stdinData += c.toString()));
    socket.on('end', () => {
      stdinClosed = true;
      maybeFinish();
    });
  });
  try {
    const r = await runCli(d.host, ['run', '--rm', '-i', 'busybox', 'cat'], 'hi\n');
    assert.equal(r.out, 'hi\n');
    assert.equal(r.code, 3);
    assert.match(r.err, /Unable to find image 'busybox:latest' locally/);
    const order = d.seen.filter((s) => s.path !== '/_ping').map((s) => `${s.method} ${s.path}`);
    assert.deepEqual(order, [
      'POST /containers/create', 'POST /images/create', 'POST /containers/create',
      `POST /containers/${ID}/attach`, `POST /containers/${ID}/wait`, `POST /containers/${ID}/start`,
    ]);
  } finally {
    await d.close();
  }
});

test('run: start failing with "executable file not found" exits 127', async () => {
  const d = await startFakeDaemon([
    (req, res, _b, url) => url.pathname === '/containers/create' && reply(res, 201, { Id: ID, Warnings: [] }),
    (req, res, _b, url) => {
      if (url.pathname !== `/containers/${ID}/wait`) return false;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      setTimeout(() => res.end('{"StatusCode":127}\n'), 20);
      return true;
    },
    (req, res, _b, url) => url.pathname === `/containers/${ID}/start` && reply(res, 400, { message: 'exec: "nope": executable file not found in $PATH' }),
  ], (req, socket) => {
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  });
  try {
    const r = await runCli(d.host, ['run', 'busybox', 'nope']);
    assert.equal(r.code, 127);
    assert.match(r.err, /^berth: Error response from daemon: exec: "nope": executable file not found/);
  } finally {
    await d.close();
  }
});

test('run -d prints the full id and sends start without attach', async () => {
  const d = await startFakeDaemon([
    (req, res, body, url) => {
      if (url.pathname !== '/containers/create') return false;
      assert.equal(url.searchParams.get('name'), 'web');
      const b = JSON.parse(body) as Record<string, Record<string, unknown>>;
      assert.deepEqual(b['HostConfig']!['PortBindings'], { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
      assert.deepEqual(b['ExposedPorts'], { '80/tcp': {} });
      assert.deepEqual(b['HostConfig']!['RestartPolicy'], { Name: 'unless-stopped', MaximumRetryCount: 0 });
      assert.deepEqual(b['Healthcheck'], { Test: ['CMD-SHELL', 'true'], Interval: 5e9 });
      assert.deepEqual(b['Env'], ['A=B']);
      return reply(res, 201, { Id: ID, Warnings: [] });
    },
    (req, res, _b, url) => url.pathname === `/containers/${ID}/start` && reply(res, 204),
  ]);
  try {
    const r = await runCli(d.host, ['run', '-d', '--name', 'web', '-p', '8080:80', '--restart', 'unless-stopped', '--health-cmd', 'true', '--health-interval', '5s', '-e', 'A=B', 'busybox', 'sleep', '1']);
    assert.equal(r.code, 0);
    assert.equal(r.out, `${ID}\n`);
    assert.ok(!d.seen.some((s) => s.path.endsWith('/attach')));
  } finally {
    await d.close();
  }
});

test('images renders rows per tag with human sizes; inspect --format', async () => {
  const now = Math.floor(Date.now() / 1000);
  const img = { Id: `sha256:${'b'.repeat(64)}`, RepoTags: ['busybox:latest', 'localhost:5000/x:1'], RepoDigests: [], Created: now - 3 * 86400, Size: 4_261_000 };
  const d = await startFakeDaemon([
    (req, res, _b, url) => url.pathname === '/images/json' && reply(res, 200, [img]),
    (req, res, _b, url) => url.pathname === '/containers/web/json' && reply(res, 200, { Id: ID, State: { Status: 'running' }, Config: { Labels: { k: 'v' } } }),
  ]);
  try {
    const r = await runCli(d.host, ['images']);
    assert.equal(r.out, [
      'REPOSITORY         TAG       IMAGE ID       CREATED      SIZE',
      `busybox            latest    ${'b'.repeat(12)}   3 days ago   4.26MB`,
      `localhost:5000/x   1         ${'b'.repeat(12)}   3 days ago   4.26MB`,
      '',
    ].join('\n'));
    const q = await runCli(d.host, ['images', '-q']);
    assert.equal(q.out, `${'b'.repeat(12)}\n`);
    const i = await runCli(d.host, ['inspect', '--format', '{{.State.Status}} {{index .Config.Labels "k"}}', 'web']);
    assert.equal(i.out, 'running v\n');
  } finally {
    await d.close();
  }
});

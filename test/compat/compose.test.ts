/**
 * Compat suite: docker-compose 1.29 (Debian's python package) against berthd (issue 4 §5). A
 * three-service app on a user network with a named volume, a healthcheck and `depends_on`:
 * `up -d`, `ps`, `logs`, `exec -T`, `down -v`, with DOCKER_HOST=unix://<test socket>.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, runCommand, startDaemon, type CliResult, type TestDaemon } from '../integration/harness.js';
import { dockerEnv, dockerOk } from './compat-util.js';

const COMPOSE = process.env['BERTH_COMPAT_COMPOSE'] ?? 'docker-compose';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary(COMPOSE));

// web serves a file it writes into the named volume; db is healthy once it has started; worker waits
// for both (db must be healthy) and then checks that `web` resolves on the user network. The static
// busybox's getaddrinfo crashes, so worker resolves with nslookup (its own DNS client) and pings.
const COMPOSE_FILE = `version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello-from-volume > /www/index.html; echo web-started; exec httpd -f -p 8080 -h /www"]
    volumes:
      - www:/www
    networks: [appnet]
  db:
    image: busybox
    command: ["sh", "-c", "echo db-started; exec sleep 600"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      timeout: 5s
      retries: 3
    networks: [appnet]
  worker:
    image: busybox
    command: ["sh", "-c", "echo worker-started; exec sleep 600"]
    depends_on:
      web:
        condition: service_started
      db:
        condition: service_healthy
    networks: [appnet]
volumes:
  www: {}
networks:
  appnet: {}
`;

describe('docker-compose 1.29 against berthd', { skip }, () => {
  let h: TestDaemon;
  let dir = '';
  const project = `bc${process.pid}`;

  /** Runs docker-compose in the project directory against the test daemon. */
  function compose(args: string[], timeoutMs = 120_000): Promise<CliResult> {
    return runCommand('bash', ['-c', 'cd "$1" && shift && exec "$@"', 'compose', dir, COMPOSE, '-p', project, ...args], {
      env: { ...dockerEnv(h), COMPOSE_INTERACTIVE_NO_CLI: '1', COMPOSE_HTTP_TIMEOUT: '120' },
      timeoutMs,
    });
  }

  /** Like {@link compose} but fails the test (with both outputs) unless it exits 0. */
  async function composeOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await compose(args, timeoutMs);
    assert.equal(r.code, 0, `docker-compose ${args.join(' ')} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    h = await startDaemon();
    await importBusybox(h);
    dir = join(h.baseDir, 'app');
    await runCommand('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'docker-compose.yml'), COMPOSE_FILE);
  });

  after(async () => {
    if (h) {
      if (dir) await compose(['down', '-v', '-t', '1']).catch(() => undefined);
      await cleanup(h);
    }
  });

  test('up -d creates the network, the volume and three running containers', async () => {
    await composeOk(['up', '-d']);
    const nets = await dockerOk(h, ['network', 'ls', '--format', '{{.Name}}']);
    assert.ok(nets.split('\n').includes(`${project}_appnet`), nets);
    const vols = await dockerOk(h, ['volume', 'ls', '--format', '{{.Name}}']);
    assert.ok(vols.split('\n').includes(`${project}_www`), vols);
    const names = (await dockerOk(h, ['ps', '--format', '{{.Names}}'])).trim().split('\n').sort();
    assert.deepEqual(names, [`${project}_db_1`, `${project}_web_1`, `${project}_worker_1`]);
  });

  test('inspect: compose labels, network aliases, volume bind, worker started after db was healthy', async () => {
    const info = JSON.parse(await dockerOk(h, ['inspect', `${project}_web_1`, `${project}_db_1`, `${project}_worker_1`])) as any[];
    const [web, db, worker] = info;
    assert.equal(web.Config.Labels['com.docker.compose.project'], project);
    assert.equal(web.Config.Labels['com.docker.compose.service'], 'web');
    const ep = web.NetworkSettings.Networks[`${project}_appnet`];
    assert.ok(ep, JSON.stringify(web.NetworkSettings.Networks));
    assert.ok(ep.Aliases.includes('web'), JSON.stringify(ep.Aliases));
    assert.match(ep.IPAddress, /^\d+\.\d+\.\d+\.\d+$/);
    const mount = web.Mounts.find((m: any) => m.Destination === '/www');
    assert.equal(mount?.Type, 'volume');
    assert.equal(mount?.Name, `${project}_www`);
    assert.equal(db.State.Health.Status, 'healthy');
    const healthyAt = Math.min(...db.State.Health.Log.filter((l: any) => l.ExitCode === 0).map((l: any) => Date.parse(l.End)));
    assert.ok(Date.parse(worker.State.StartedAt) >= healthyAt, `worker ${worker.State.StartedAt} before db healthy ${healthyAt}`);
  });

  test('ps lists the services as Up, db as healthy', async () => {
    const out = await composeOk(['ps']);
    for (const svc of ['web', 'db', 'worker']) assert.match(out, new RegExp(`${project}_${svc}_1\\s.*\\sUp`), out);
    assert.match(out, new RegExp(`${project}_db_1\\s.*\\(healthy\\)`), out);
    const q = (await composeOk(['ps', '-q'])).trim().split('\n');
    assert.equal(q.length, 3);
    for (const id of q) assert.match(id, /^[0-9a-f]{64}$/);
  });

  test('logs shows each service output, prefixed by service and number', async () => {
    const out = await composeOk(['logs', '--no-color']);
    assert.match(out, new RegExp(`Attaching to .*${project}_web_1`), out);
    for (const svc of ['web', 'db', 'worker']) assert.match(out, new RegExp(`^${svc}_1\\s+\\| ${svc}-started$`, 'm'), out);
    const one = await composeOk(['logs', '--no-color', 'db']);
    assert.doesNotMatch(one, /web-started/, one);
  });

  test('a second up -d finds the project by its labels and leaves it as it is', async () => {
    const before = (await dockerOk(h, ['ps', '-q', '--no-trunc'])).trim().split('\n').sort();
    const r = await compose(['up', '-d']);
    assert.equal(r.code, 0, r.stderr);
    for (const svc of ['web', 'db', 'worker']) assert.match(r.stderr, new RegExp(`${project}_${svc}_1 is up-to-date`), r.stderr);
    const now = (await dockerOk(h, ['ps', '-q', '--no-trunc'])).trim().split('\n').sort();
    assert.deepEqual(now, before);
  });

  test('exec -T: the volume file is served and web is reachable by name from worker', async () => {
    assert.equal(await composeOk(['exec', '-T', 'web', 'cat', '/www/index.html']), 'hello-from-volume\n');
    // ping's own status is checked in the output (compose takes the exit code from exec inspect)
    const pr = await compose(['exec', '-T', 'worker', 'sh', '-c', 'ping -c1 -W 5 web; echo rc=$?']);
    const ping = pr.stdout;
    const why = `exit ${pr.code}\nstdout: ${ping}\nstderr: ${pr.stderr}`;
    assert.match(ping, /1 packets received/, why);
    assert.match(ping, /^rc=0$/m, why);
    const script = "ip=$(nslookup web 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}'); " +
      "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 \"$ip\" 8080";
    const http = await composeOk(['exec', '-T', 'worker', 'sh', '-c', script]);
    assert.match(http, /^HTTP\/1\.[01] 200/, http);
    assert.match(http, /hello-from-volume/);
    const failed = await compose(['exec', '-T', 'worker', 'sh', '-c', 'exit 7']);
    assert.equal(failed.code, 7);
  });

  test('down -v removes the containers, the network and the volume', async () => {
    await composeOk(['down', '-v', '-t', '1']);
    assert.equal((await dockerOk(h, ['ps', '-aq'])).trim(), '');
    const nets = await dockerOk(h, ['network', 'ls', '--format', '{{.Name}}']);
    assert.ok(!nets.split('\n').includes(`${project}_appnet`), nets);
    const vols = await dockerOk(h, ['volume', 'ls', '--format', '{{.Name}}']);
    assert.ok(!vols.split('\n').includes(`${project}_www`), vols);
  });
});

/**
 * Compat suite: the real docker CLI 28.x (DOCKER_HOST=unix://<test socket>) against berthd.
 * Covers the request sequences of compat notes §4: run (--rm, -i with piped stdin, -it under a
 * pseudo-terminal), exec (-it), cp both ways, logs -f, events, stats, inspect, wait, commit, ps and
 * images formats, rm -f, volumes; plus the API-version rules of §1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, runCommand, startDaemon, type TestDaemon } from '../integration/harness.js';
import { docker, DOCKER_CLI, dockerEnv, dockerOk, rawRequest } from './compat-util.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary(DOCKER_CLI), requireBinary('script'));

/** Runs `docker <cmd>` under a pseudo-terminal (util-linux `script`), as a user's terminal would. */
function dockerTty(h: TestDaemon, cmd: string): ReturnType<typeof runCommand> {
  return runCommand('script', ['-qec', `${DOCKER_CLI} ${cmd}`, '/dev/null'], { env: dockerEnv(h), timeoutMs: 60_000 });
}

describe('docker CLI 28.x against berthd', { skip }, () => {
  let h: TestDaemon;

  before(async () => {
    h = await startDaemon();
    await importBusybox(h);
  });

  after(async () => {
    if (h) await cleanup(h);
  });

  test('API version negotiation: _ping headers, /vX.Y prefix, out-of-range versions', async () => {
    const ping = await rawRequest(h, 'HEAD', '/_ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.headers['api-version'], '1.51');
    assert.equal(ping.headers['ostype'], 'linux');
    const v = await rawRequest(h, 'GET', '/v1.50/version');
    assert.equal(v.status, 200);
    assert.equal((JSON.parse(v.body) as { ApiVersion: string }).ApiVersion, '1.51');
    const high = await rawRequest(h, 'GET', '/v1.99/version');
    assert.equal(high.status, 400);
    assert.match(high.body, /client version 1\.99 is too new\. Maximum supported API version is 1\.51/);
    const low = await rawRequest(h, 'GET', '/v1.12/version');
    assert.equal(low.status, 400);
    assert.match(low.body, /client version 1\.12 is too old/);
    const cv = await dockerOk(h, ['version', '--format', '{{.Client.APIVersion}} {{.Server.APIVersion}}']);
    assert.equal(cv.trim(), '1.50 1.51');
  });

  test('run --rm: output, exit code, nothing left behind', async () => {
    const r = await docker(h, ['run', '--rm', 'busybox', 'echo', 'hello']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    const e = await docker(h, ['run', '--rm', 'busybox', 'sh', '-c', 'echo oops >&2; exit 3']);
    assert.equal(e.code, 3);
    assert.equal(e.stderr, 'oops\n');
    assert.equal((await dockerOk(h, ['ps', '-aq'])).trim(), '');
  });

  test('run --rm of a missing command exits 127 and still removes the container', async () => {
    // The CLI waits for condition=removed after a failed start: dockerd removes AutoRemove
    // containers whose start fails, and so must berthd, or `docker run --rm` hangs.
    const r = await docker(h, ['run', '--rm', 'busybox', 'no-such-command'], { timeoutMs: 30_000 });
    assert.equal(r.code, 127, r.stderr);
    assert.match(r.stderr, /executable file not found/);
    assert.equal((await dockerOk(h, ['ps', '-aq'])).trim(), '');
  });

  test('run -i with piped stdin', async () => {
    const r = await docker(h, ['run', '-i', '--rm', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'line one\nline two\ndone\n');
  });

  test('run -it under a pseudo-terminal', async () => {
    const r = await dockerTty(h, `run -it --rm busybox sh -c 'tty; echo in-tty; exit 4'`);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/\d+\r?\n/);
    assert.match(r.stdout, /in-tty\r\n/); // a TTY turns \n into \r\n
  });

  test('exec and exec -it, with exit codes', async () => {
    await dockerOk(h, ['run', '-d', '--name', 'ex1', 'busybox', 'sleep', '300']);
    const r = await docker(h, ['exec', 'ex1', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
    assert.equal(r.code, 5);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    const i = await docker(h, ['exec', '-i', 'ex1', 'sh', '-c', 'read x; echo got:$x'], { input: 'abc\n' });
    assert.equal(i.stdout, 'got:abc\n', i.stderr);
    const t = await dockerTty(h, `exec -it ex1 sh -c 'tty; exit 6'`);
    assert.equal(t.code, 6, t.stderr);
    assert.match(t.stdout, /\/dev\/pts\/\d+/);
    await dockerOk(h, ['rm', '-f', 'ex1']);
  });

  test('cp into and out of a container (file and directory)', async () => {
    const dir = join(h.baseDir, 'cp');
    mkdirSync(join(dir, 'out'), { recursive: true });
    writeFileSync(join(dir, 'in.txt'), 'copied in\n');
    await dockerOk(h, ['run', '-d', '--name', 'cp1', 'busybox', 'sleep', '300']);
    await dockerOk(h, ['cp', join(dir, 'in.txt'), 'cp1:/tmp/']);
    assert.equal(await dockerOk(h, ['exec', 'cp1', 'cat', '/tmp/in.txt']), 'copied in\n');
    await dockerOk(h, ['exec', 'cp1', 'sh', '-c', 'mkdir -p /tmp/d/sub && echo deep > /tmp/d/sub/f']);
    await dockerOk(h, ['cp', 'cp1:/tmp/in.txt', join(dir, 'out', 'back.txt')]);
    assert.equal(readFileSync(join(dir, 'out', 'back.txt'), 'utf8'), 'copied in\n');
    await dockerOk(h, ['cp', 'cp1:/tmp/d', join(dir, 'out', 'd')]);
    assert.equal(readFileSync(join(dir, 'out', 'd', 'sub', 'f'), 'utf8'), 'deep\n');
    const missing = await docker(h, ['cp', 'cp1:/no/such/path', join(dir, 'out')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Error response from daemon: Could not find the file \/no\/such\/path in container/);
    await dockerOk(h, ['rm', '-f', 'cp1']);
    assert.equal(existsSync(join(dir, 'out', 'path')), false);
  });

  test('logs -f follows until the container exits', async () => {
    await dockerOk(h, ['run', '-d', '--name', 'lg1', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo l$i; echo e$i >&2; sleep 0.4; done']);
    const r = await docker(h, ['logs', '-f', 'lg1'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'l1\nl2\nl3\n');
    assert.equal(r.stderr, 'e1\ne2\ne3\n');
    // tail counts lines of both streams together: the last two are l3 (stdout) and e3 (stderr)
    const tail = await docker(h, ['logs', '--tail', '2', '-t', 'lg1']);
    assert.match(tail.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z l3\n$/);
    assert.match(tail.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z e3\n$/);
    await dockerOk(h, ['rm', 'lg1']);
  });

  test('events --since/--until with Docker action names and filters', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const run = await docker(h, ['run', '--name', 'ev1', 'busybox', 'sh', '-c', 'exit 7']);
    assert.equal(run.code, 7);
    await dockerOk(h, ['rm', 'ev1']);
    const until = Math.ceil(Date.now() / 1000) + 1;
    const r = await docker(h, ['events', '--since', String(since), '--until', String(until), '--filter', 'container=ev1', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    for (const want of ['container create ev1', 'container start ev1', 'container die ev1', 'container destroy ev1']) {
      assert.ok(lines.some((l) => l.trim() === want), `missing "${want}" in:\n${r.stdout}`);
    }
    const die = await docker(h, ['events', '--since', String(since), '--until', String(until), '--filter', 'event=die', '--format', '{{json .}}']);
    const msgs = die.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(msgs.length >= 1);
    for (const m of msgs) {
      assert.equal(m['Action'], 'die');
      assert.equal(m['status'], 'die'); // legacy fields (compose v1 reads them)
      assert.equal(typeof m['timeNano'], 'number');
    }
    const ev1 = msgs.find((m) => (m['Actor'] as { Attributes: Record<string, string> }).Attributes['name'] === 'ev1');
    assert.equal((ev1?.['Actor'] as { Attributes: Record<string, string> } | undefined)?.Attributes['exitCode'], '7', die.stdout);
  });

  test('stats --no-stream', async () => {
    await dockerOk(h, ['run', '-d', '--name', 'st1', 'busybox', 'sleep', '300']);
    const r = await docker(h, ['stats', '--no-stream', '--format', '{{json .}}', 'st1'], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim()) as Record<string, string>;
    assert.equal(s['Name'], 'st1');
    assert.match(s['CPUPerc']!, /^\d+\.\d\d%$/);
    assert.match(s['MemUsage']!, /B \/ /);
    assert.ok(Number(s['PIDs']) >= 1, r.stdout);
    await dockerOk(h, ['rm', '-f', 'st1']);
  });

  test('inspect fields clients read; wait returns the exit code', async () => {
    await dockerOk(h, ['create', '--name', 'in1', '-e', 'A=1', '--label', 'k=v', 'busybox', 'sh', '-c', 'exit 9']);
    const f = '{{.Name}}|{{.State.Status}}|{{.Config.Image}}|{{index .Config.Labels "k"}}|{{.HostConfig.LogConfig.Type}}|{{.Path}}|{{json .Args}}|{{.State.FinishedAt}}';
    assert.equal((await dockerOk(h, ['inspect', '-f', f, 'in1'])).trim(), '/in1|created|busybox|v|json-file|sh|["-c","exit 9"]|0001-01-01T00:00:00Z');
    const j = JSON.parse(await dockerOk(h, ['inspect', 'in1'])) as Array<Record<string, any>>;
    assert.equal(j.length, 1);
    assert.match(j[0]!['Id'], /^[0-9a-f]{64}$/);
    assert.match(j[0]!['Image'], /^sha256:[0-9a-f]{64}$/);
    assert.ok((j[0]!['Config']['Env'] as string[]).includes('A=1'));
    assert.equal(j[0]!['Config']['Tty'], false);
    await dockerOk(h, ['start', 'in1']);
    const w = await docker(h, ['wait', 'in1']);
    assert.equal(w.stdout.trim(), '9', w.stderr);
    assert.equal((await dockerOk(h, ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'in1'])).trim(), 'exited 9');
    const missing = await docker(h, ['inspect', 'no-such-thing']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such object: no-such-thing/);
    await dockerOk(h, ['rm', 'in1']);
  });

  test('commit makes a runnable image; images and ps formats', async () => {
    await dockerOk(h, ['run', '--name', 'cm1', 'busybox', 'sh', '-c', 'echo baked > /baked']);
    const id = (await dockerOk(h, ['commit', '-c', 'CMD ["cat", "/baked"]', 'cm1', 'committed:v2'])).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await dockerOk(h, ['run', '--rm', 'committed:v2']), 'baked\n');
    const imgs = (await dockerOk(h, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).trim().split('\n');
    assert.ok(imgs.includes(`committed:v2 ${id.slice(7, 19)}`), imgs.join('\n'));
    assert.ok(imgs.some((l) => l.startsWith('busybox:latest ')));
    const ps = (await dockerOk(h, ['ps', '-a', '--format', '{{.Names}}|{{.Image}}|{{.State}}|{{.Status}}'])).trim();
    assert.match(ps, /^cm1\|busybox\|exited\|Exited \(0\) .* ago$/m);
    await dockerOk(h, ['run', '-d', '--name', 'ps1', 'busybox', 'sleep', '300']);
    const running = (await dockerOk(h, ['ps', '--format', '{{.Names}} {{.Status}}'])).trim();
    assert.match(running, /^ps1 Up /);
    assert.doesNotMatch(running, /cm1/);
    const filtered = (await dockerOk(h, ['ps', '-a', '--filter', 'status=exited', '--format', '{{.Names}}'])).trim().split('\n');
    assert.deepEqual(filtered, ['cm1'], await dockerOk(h, ['ps', '-a']));
    await dockerOk(h, ['rm', 'cm1']);
    const rmi = await dockerOk(h, ['rmi', 'committed:v2']);
    assert.match(rmi, /Untagged: committed:v2/);
  });

  test('rm -f of a running container; errors are Docker-worded', async () => {
    await dockerOk(h, ['run', '-d', '--name', 'rm1', 'busybox', 'sleep', '300']);
    const busy = await docker(h, ['rm', 'rm1']);
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /Error response from daemon: .*(running|stop the container)/i);
    assert.equal((await dockerOk(h, ['rm', '-f', 'rm1'])).trim(), 'rm1');
    const gone = await docker(h, ['rm', 'rm1']);
    assert.match(gone.stderr, /Error response from daemon: No such container: rm1/);
    await dockerOk(h, ['create', '--name', 'dup', 'busybox']);
    const dup = await docker(h, ['create', '--name', 'dup', 'busybox']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /Conflict\. The container name "\/dup" is already in use/);
    await dockerOk(h, ['rm', 'dup']);
    const noimg = await docker(h, ['run', '--rm', '--pull', 'never', 'no-such-image:1', 'true']);
    assert.equal(noimg.code, 125);
    assert.match(noimg.stderr, /No such image: no-such-image:1/);
  });

  test('top, pause/unpause, update, rename, diff, export, stop/kill status codes', async () => {
    await dockerOk(h, ['run', '-d', '--name', 'lc1', 'busybox', 'sleep', '300']);
    const top = (await dockerOk(h, ['top', 'lc1'])).split('\n');
    assert.match(top[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD/);
    assert.match(top[1]!, /sleep 300/);
    await dockerOk(h, ['pause', 'lc1']);
    assert.equal((await dockerOk(h, ['inspect', '-f', '{{.State.Status}}', 'lc1'])).trim(), 'paused');
    await dockerOk(h, ['unpause', 'lc1']);
    // the CLI sends PidsLimit: null; the runtime must not be asked to write pids.max
    await dockerOk(h, ['update', '--memory', '64m', '--memory-swap', '128m', 'lc1']);
    assert.equal((await dockerOk(h, ['inspect', '-f', '{{.HostConfig.Memory}}', 'lc1'])).trim(), String(64 * 1024 * 1024));
    await dockerOk(h, ['rename', 'lc1', 'lc2']);
    await dockerOk(h, ['exec', 'lc2', 'touch', '/newfile']);
    assert.match(await dockerOk(h, ['diff', 'lc2']), /^A \/newfile$/m);
    const tar = await runCommand('sh', ['-c', `${DOCKER_CLI} export lc2 | tar t`], { env: dockerEnv(h) });
    assert.match(tar.stdout, /^bin\/?$/m);
    assert.match(tar.stdout, /^newfile$/m);
    await dockerOk(h, ['stop', '-t', '1', 'lc2']);
    assert.equal((await docker(h, ['stop', 'lc2'])).code, 0); // 304 is success for the CLI
    const kill = await docker(h, ['kill', 'lc2']);
    assert.equal(kill.code, 1);
    assert.match(kill.stderr, /is not running/);
    await dockerOk(h, ['rm', 'lc2']);
  });

  test('volume create / ls / inspect / use / rm / prune', async () => {
    assert.equal((await dockerOk(h, ['volume', 'create', '--label', 'a=b', 'vol1'])).trim(), 'vol1');
    assert.match(await dockerOk(h, ['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']), /^local vol1$/m);
    assert.equal((await dockerOk(h, ['volume', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Labels.a}}', 'vol1'])).trim(), 'vol1 local b');
    await dockerOk(h, ['run', '--rm', '-v', 'vol1:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f']);
    assert.equal(await dockerOk(h, ['run', '--rm', '-v', 'vol1:/data', 'busybox', 'cat', '/data/f']), 'kept\n');
    await dockerOk(h, ['create', '--name', 'vuser', '-v', 'vol1:/data', 'busybox']);
    const inUse = await docker(h, ['volume', 'rm', 'vol1']);
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /in use/);
    await dockerOk(h, ['rm', 'vuser']);
    assert.equal((await dockerOk(h, ['volume', 'rm', 'vol1'])).trim(), 'vol1');
    const none = await docker(h, ['volume', 'inspect', 'vol1']);
    assert.notEqual(none.code, 0);
    await dockerOk(h, ['volume', 'create', 'vol2']);
    await dockerOk(h, ['volume', 'prune', '-af']);
    assert.equal((await dockerOk(h, ['volume', 'ls', '-q'])).trim(), '');
  });
});

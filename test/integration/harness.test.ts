/** Self-test of the integration harness: its pure helpers, cleanup, the busybox tarball, and a daemon round trip. */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  busyboxTarball,
  cleanup,
  cleanupDir,
  findBinary,
  firstSkip,
  mountsUnder,
  parseMountInfo,
  processesMentioning,
  requireBinary,
  requireBuilt,
  requireRoot,
  runCommand,
  startDaemon,
} from './harness.js';

const MOUNTINFO = [
  '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
  '30 22 0:25 / /tmp/berth-it-abc/root/overlay/x/merged rw - overlay overlay rw,lowerdir=/a,upperdir=/b',
  '31 22 0:26 / /tmp/berth-it-abc rw - tmpfs tmpfs rw',
  '32 30 0:27 / /tmp/berth-it-abc/root/overlay/x/merged/proc rw - proc proc rw',
  '33 22 0:28 / /tmp/berth-it-abcdef/other rw - tmpfs tmpfs rw',
  '34 22 0:29 / /tmp/with\\040space rw - tmpfs tmpfs rw',
  '35 31 0:26 / /tmp/berth-it-abc rw - tmpfs tmpfs rw',
].join('\n');

test('parseMountInfo decodes mount points and fs types', () => {
  const e = parseMountInfo(MOUNTINFO + '\n\n');
  assert.equal(e.length, 7);
  assert.deepEqual(e[0], { mountId: 22, parentId: 1, mountPoint: '/', fsType: 'ext4' });
  assert.equal(e[1]!.fsType, 'overlay');
  assert.equal(e[5]!.mountPoint, '/tmp/with space');
});

test('parseMountInfo handles optional fields before the separator', () => {
  const e = parseMountInfo('40 22 0:30 / /mnt rw shared:5 master:2 - tmpfs tmpfs rw');
  assert.equal(e[0]!.mountPoint, '/mnt');
  assert.equal(e[0]!.fsType, 'tmpfs');
});

test('mountsUnder keeps only mounts under the root, deepest first, stacked mounts top first', () => {
  const got = mountsUnder(parseMountInfo(MOUNTINFO), '/tmp/berth-it-abc/');
  assert.deepEqual(got, [
    '/tmp/berth-it-abc/root/overlay/x/merged/proc',
    '/tmp/berth-it-abc/root/overlay/x/merged',
    '/tmp/berth-it-abc',
    '/tmp/berth-it-abc',
  ]);
  assert.ok(!got.some((p) => p.startsWith('/tmp/berth-it-abcdef')), 'a sibling with the same prefix must not match');
});

test('skip probes', () => {
  assert.equal(requireBinary('sh'), undefined);
  assert.match(requireBinary('no-such-binary-berth-xyz') ?? '', /needs no-such-binary-berth-xyz/);
  assert.equal(findBinary('no-such-binary-berth-xyz'), undefined);
  assert.equal(firstSkip(undefined, 'b', 'c'), 'b');
  assert.equal(firstSkip(undefined, undefined), undefined);
  assert.equal(requireRoot(), process.getuid?.() === 0 ? undefined : 'needs root');
});

test('processesMentioning finds a process by its command line, and cleanupDir kills it and removes the dir', async () => {
  const dir = realpathSync(mkdtempSync('/tmp/berth-it-selftest-'));
  mkdirSync(join(dir, 'sub'));
  const child = spawn('sh', ['-c', 'sleep 600', dir], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(processesMentioning(dir).includes(child.pid!), 'the sh child mentions the directory');
  assert.ok(!processesMentioning(dir).includes(process.pid), 'never this process');
  const problems = await cleanupDir(dir);
  assert.deepEqual(problems, []);
  await exited;
  assert.equal(child.signalCode, 'SIGKILL');
  assert.equal(existsSync(dir), false);
});

test('cleanupDir unmounts nested mounts before removing the directory', { skip: requireRoot() }, async () => {
  const dir = realpathSync(mkdtempSync('/tmp/berth-it-selftest-'));
  const outside = realpathSync(mkdtempSync('/tmp/berth-it-selftest-outside-'));
  try {
    execFileSync('touch', [join(outside, 'keep-me')]);
    mkdirSync(join(dir, 'a'));
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'a')]);
    mkdirSync(join(dir, 'a', 'b'));
    // A bind mount of a directory outside: rm -rf must not reach through it.
    execFileSync('mount', ['--bind', outside, join(dir, 'a', 'b')]);
    const before = mountsUnder(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')), dir);
    assert.equal(before.length, 2);
    assert.deepEqual(await cleanupDir(dir), []);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(mountsUnder(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')), dir), []);
    assert.ok(existsSync(join(outside, 'keep-me')), 'files behind a bind mount survive');
  } finally {
    await cleanupDir(dir);
    await cleanupDir(outside);
  }
});

test('busyboxTarball builds a rootfs tar with busybox, applet links and /etc files', { skip: firstSkip(requireBinary('tar'), existsSync('/bin/busybox') ? undefined : 'needs busybox-static') }, async () => {
  const tar = await busyboxTarball();
  assert.equal(await busyboxTarball(), tar, 'cached per process');
  assert.ok(statSync(tar).size > 500_000);
  const listing = execFileSync('tar', ['tvf', tar], { encoding: 'utf8' });
  assert.match(listing, /^-rwxr-xr-x 0\/0 .* bin\/busybox$/m);
  assert.match(listing, /^l.* bin\/sh -> \/bin\/busybox$/m);
  assert.match(listing, /^drwxrwxrwt 0\/0 .* tmp\/$/m);
  assert.match(listing, / etc\/passwd$/m);
  const passwd = execFileSync('tar', ['xOf', tar, 'etc/passwd'], { encoding: 'utf8' });
  assert.match(passwd, /^root:x:0:0:/m);
  assert.match(passwd, /^nobody:x:65534:65534:/m);
});

/** Raw GET /_ping, to check the harness's socket is really the daemon's. */
function rawPing(socketPath: string): Promise<{ status: number; body: string; apiVersion: string | undefined }> {
  return new Promise((resolve, reject) => {
    request({ socketPath, path: '/_ping' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, apiVersion: res.headers['api-version'] as string | undefined }));
    })
      .on('error', reject)
      .end();
  });
}

test('startDaemon: ping, stop, restart, kill9, cleanup', { skip: firstSkip(requireBuilt(), requireRoot()) }, async (t) => {
  const h = await startDaemon();
  t.after(() => cleanup(h));
  assert.ok(h.socket.startsWith(h.baseDir) && h.dataRoot.startsWith(h.baseDir));
  assert.equal(h.host, `unix://${h.socket}`);
  assert.ok(h.pid !== undefined);

  const p = await rawPing(h.socket);
  assert.equal(p.status, 200);
  assert.equal(p.body, 'OK');
  assert.ok(p.apiVersion, 'Api-Version header');

  const stopped = await h.stop();
  assert.ok(stopped.code !== null || stopped.signal !== null);
  assert.equal(h.pid, undefined);
  assert.equal(await h.ping(), false);

  await h.restart();
  assert.equal(await h.ping(), true);
  await h.kill9();
  assert.equal(h.pid, undefined);

  await cleanup(h);
  assert.equal(existsSync(h.baseDir), false);
  assert.deepEqual(processesMentioning(h.baseDir), []);
});

/** A stand-in berthd: serves /_ping (and an empty container list) on the -H socket. */
const FAKE_DAEMON = `
import { createServer } from 'node:http';
import { writeFileSync, rmSync } from 'node:fs';
const a = process.argv;
const root = a[a.indexOf('--data-root') + 1];
const sock = a[a.indexOf('-H') + 1].replace(/^unix:\\/\\//, '');
if (process.env.FAKE_FAIL) { console.error('fake berthd: refusing to start'); process.exit(3); }
writeFileSync(root + '/started', String(process.pid));
const srv = createServer((req, res) => {
  res.setHeader('Api-Version', '1.51');
  if (/\\/_ping$/.test(req.url.split('?')[0])) return res.end('OK');
  if (/\\/containers\\/json$/.test(req.url.split('?')[0])) { res.setHeader('Content-Type', 'application/json'); return res.end('[]'); }
  res.statusCode = 404; res.end('{"message":"page not found"}');
});
rmSync(sock, { force: true }); // a stale socket after kill -9, as a real daemon must handle
srv.listen(sock, () => console.log('fake berthd listening on ' + sock));
process.on('SIGTERM', () => srv.close(() => process.exit(0)));
`;

/** A stand-in berth CLI: `ps` lists two ids, everything else succeeds; each call is recorded beside the script. */
const FAKE_CLI = `
import { appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
const args = process.argv.slice(2);
appendFileSync(join(dirname(process.argv[1]), 'cli-calls'), JSON.stringify(args) + '\\n');
if (args.includes('ps')) console.log('aaa\\nbbb');
`;

function writeFakeDaemon(): string {
  const dir = realpathSync(mkdtempSync('/tmp/berth-it-fakebin-'));
  const p = join(dir, 'fake-berthd.mjs');
  execFileSync('sh', ['-c', 'cat > "$1"', 'sh', p], { input: FAKE_DAEMON });
  execFileSync('sh', ['-c', 'cat > "$1"', 'sh', join(dir, 'fake-berth.mjs')], { input: FAKE_CLI });
  return p;
}

test('startDaemon with a stand-in daemon: own dirs, ping, stop, restart, kill9, cleanup', async (t) => {
  const fake = writeFakeDaemon();
  t.after(() => cleanupDir(join(fake, '..')));
  const fakeCli = join(fake, '..', 'fake-berth.mjs');
  const h = await startDaemon({ berthd: fake, berth: fakeCli });
  let cleaned = false;
  t.after(() => (cleaned ? undefined : cleanup(h)));
  assert.match(h.baseDir, /^\/tmp\/berth-it-/);
  assert.equal(readFileSync(join(h.dataRoot, 'started'), 'utf8'), String(h.pid));
  assert.equal((await rawPing(h.socket)).body, 'OK');
  assert.match(h.log(), /fake berthd listening on/);

  const stopped = await h.stop();
  assert.deepEqual(stopped, { code: 0, signal: null }, 'SIGTERM lets the daemon exit cleanly');
  assert.equal(h.pid, undefined);
  assert.equal(await h.ping(), false);

  await h.restart();
  const pid = h.pid;
  assert.ok(pid !== undefined);
  assert.equal(await h.ping(), true);
  await assert.rejects(h.restart(), /still running/);
  await h.kill9();
  assert.equal(h.pid, undefined);
  assert.throws(() => process.kill(pid, 0), 'the killed daemon is gone');

  assert.equal((await h.cli(['version'], { input: 'x' })).code, 0);
  await cleanup(h); // restarts the stand-in to list containers, stops it, removes the dir
  cleaned = true;
  const calls = readFileSync(join(fake, '..', 'cli-calls'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
  assert.deepEqual(calls, [
    ['-H', h.host, 'version'],
    ['-H', h.host, 'ps', '-a', '-q', '--no-trunc'],
    ['-H', h.host, 'rm', '-f', 'aaa', 'bbb'],
  ]);
  assert.equal(existsSync(h.baseDir), false);
  assert.deepEqual(processesMentioning(h.baseDir), []);
});

test('startDaemon reports an early exit with the daemon log and leaves nothing behind', async (t) => {
  const fake = writeFakeDaemon();
  t.after(() => cleanupDir(join(fake, '..')));
  let logDir = '';
  await assert.rejects(startDaemon({ berthd: fake, env: { FAKE_FAIL: '1' } }), (e: Error) => {
    assert.match(e.message, /exited early \(code 3/);
    assert.match(e.message, /fake berthd: refusing to start/);
    logDir = /berthd log \((\/tmp\/berth-it-[^/]+)\/berthd\.log\)/.exec(e.message)?.[1] ?? '';
    return true;
  });
  assert.ok(logDir, 'the message names the log file');
  assert.equal(existsSync(logDir), false, "the failed daemon's directory is removed");
});

test('runCommand: stdin, exit codes, env, signals and timeouts', async () => {
  const echo = await runCommand('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'hello\n' });
  assert.deepEqual(echo, { code: 3, stdout: 'hello\n', stderr: 'err\n' });
  const noStdin = await runCommand('sh', ['-c', 'cat; echo done']);
  assert.equal(noStdin.stdout, 'done\n', 'stdin is /dev/null without input');
  const env = await runCommand('sh', ['-c', 'echo "$A|${BERTH_HOST:-unset}"'], { env: { A: 'x' } });
  assert.equal(env.stdout, 'x|unset\n');
  const killed = await runCommand('sh', ['-c', 'kill -TERM $$']);
  assert.equal(killed.code, 128 + 15);
  const slow = await runCommand('sleep', ['30'], { timeoutMs: 200 });
  assert.equal(slow.code, 137);
  assert.match(slow.stderr, /killed after 200 ms/);
  await assert.rejects(runCommand('/no/such/berth-binary', []), /ENOENT/);
});

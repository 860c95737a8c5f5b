/**
 * Engine core, end to end: a real berthd (own data root and socket), real conmon, crun/runc,
 * overlayfs, driven through the berth CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, waitFor, type TestDaemon } from './harness.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'));
let h: TestDaemon;

before(async () => {
  if (skip) return;
  h = await startDaemon();
  await importBusybox(h);
});

after(async () => {
  if (h) await cleanup(h);
});

test('run --rm prints output and leaves no container', { skip }, async () => {
  const r = await h.cli(['run', '--rm', 'busybox', 'echo', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello\n');
  const ps = await h.cliOk(['ps', '-aq']);
  assert.equal(ps.trim(), '');
});

test('run passes the exit code through; 127/126 for missing or non-executable commands', { skip }, async () => {
  const r = await h.cli(['run', '--rm', 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(r.code, 3);
  const nf = await h.cli(['run', '--rm', 'busybox', 'no-such-command']);
  assert.equal(nf.code, 127, nf.stderr);
  assert.match(nf.stderr, /executable file not found/);
  const ne = await h.cli(['run', '--rm', 'busybox', '/etc/passwd']);
  assert.equal(ne.code, 126, ne.stderr);
});

test('stdin is piped with -i', { skip }, async () => {
  const r = await h.cli(['run', '--rm', '-i', 'busybox', 'cat'], { input: 'hi\nthere\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hi\nthere\n');
});

test('-t gives a real terminal that follows the local terminal size (under script(1))', { skip: firstSkip(skip, requireBinary('script')) }, async () => {
  const berth = `${process.execPath} ${h.cliEntry} -H ${h.host}`;
  const cmd = `stty rows 33 cols 101; (sleep 3; stty rows 40 cols 120 < /dev/tty) & ${berth} run --rm -it busybox sh -c 'tty; stty size; sleep 5; stty size'`;
  const r = await runCommand('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = r.stdout.replace(/\r/g, '');
  assert.match(out, /\/dev\/pts\/\d+/);
  assert.match(out, /33 101/);
  assert.match(out, /40 120/);
});

test('env, workdir, user, hostname, entrypoint, labels', { skip }, async () => {
  const out = await h.cliOk([
    'run', '--rm', '-e', 'FOO=bar', '-w', '/tmp', '-u', 'nobody', '--hostname', 'boxy', '-l', 'k=v',
    'busybox', 'sh', '-c', 'echo $FOO $(pwd) $(id -un) $(hostname)',
  ]);
  assert.equal(out, 'bar /tmp nobody boxy\n');
  const ep = await h.cliOk(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'via', 'entrypoint']);
  assert.equal(ep, 'via entrypoint\n');
  const dir = mkdtempSync(join(tmpdir(), 'berth-envfile-'));
  writeFileSync(join(dir, 'env'), 'A=1\n# comment\nB=two\n');
  const ef = await h.cliOk(['run', '--rm', '--env-file', join(dir, 'env'), 'busybox', 'sh', '-c', 'echo $A $B']);
  rmSync(dir, { recursive: true });
  assert.equal(ef, '1 two\n');
});

test('detached lifecycle: logs, inspect, stop, start, restart, kill, pause, rename, wait, rm', { skip }, async () => {
  const id = (await h.cliOk(['run', '-d', '--name', 'life', 'busybox', 'sh', '-c', 'echo started; trap "echo bye; exit 7" TERM; while true; do sleep 0.1; done'])).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  await waitFor(async () => (await h.cliOk(['logs', 'life'])).includes('started'));
  assert.equal((await h.cliOk(['inspect', '-f', '{{.State.Status}}', 'life'])).trim(), 'running');
  const ps = await h.cliOk(['ps', '--format', '{{.Names}} {{.Status}}']);
  assert.match(ps, /life Up/);
  await h.cliOk(['pause', 'life']);
  assert.equal((await h.cliOk(['inspect', '-f', '{{.State.Status}}', 'life'])).trim(), 'paused');
  await h.cliOk(['unpause', 'life']);
  await h.cliOk(['stop', '-t', '5', 'life']);
  const st = await h.cliOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'life']);
  assert.equal(st.trim(), 'exited 7');
  assert.match(await h.cliOk(['logs', 'life']), /bye/);
  await h.cliOk(['start', 'life']);
  await h.cliOk(['rename', 'life', 'life2']);
  assert.equal((await h.cliOk(['inspect', '-f', '{{.Name}}', 'life2'])).trim(), '/life2');
  const killed = await h.cli(['kill', 'life2']);
  assert.equal(killed.code, 0, killed.stderr);
  const w = await h.cli(['wait', 'life2']);
  assert.equal(w.stdout.trim(), '137');
  const again = await h.cli(['kill', 'life2']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /is not running/);
  await h.cliOk(['rm', 'life2']);
  const gone = await h.cli(['inspect', 'life2']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /No such (container|object)/i);
});

test('logs --tail, -t, and -f ending with the container', { skip }, async () => {
  await h.cliOk(['run', '-d', '--name', 'logger', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; done; echo err >&2; sleep 1; echo last']);
  const f = await h.cli(['logs', '-f', 'logger'], { timeoutMs: 30_000 });
  assert.equal(f.code, 0);
  assert.equal(f.stdout, 'line1\nline2\nline3\nline4\nline5\nlast\n');
  assert.equal(f.stderr, 'err\n');
  const tail = await h.cliOk(['logs', '--tail', '2', 'logger']);
  assert.equal(tail, 'last\n');
  const ts = await h.cliOk(['logs', '-t', '--tail', '1', 'logger']);
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z last\n$/);
  await h.cliOk(['rm', 'logger']);
});

test('logs are kept in json-file shape and rotated by --log-opt max-size/max-file', { skip }, async () => {
  await h.cliOk(['run', '--name', 'rot', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=2', 'busybox', 'sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done']);
  const path = (await h.cliOk(['inspect', '-f', '{{.LogPath}}', 'rot'])).trim();
  assert.match(path, /-json\.log$/);
  const first = JSON.parse(readFileSync(path, 'utf8').split('\n')[0]!) as { log: string; stream: string; time: string };
  assert.equal(first.stream, 'stdout');
  assert.match(first.log, /^line-\d+\n$/);
  assert.ok(existsSync(`${path}.1`), 'rotated file exists');
  assert.ok(!existsSync(`${path}.2`), 'max-file=2 keeps one rotated file');
  const logs = await h.cliOk(['logs', 'rot']);
  assert.match(logs, /line-299\n$/);
  assert.doesNotMatch(logs, /^line-0\n/, 'the oldest lines were rotated away');
  await h.cliOk(['rm', 'rot']);
});

test('exec, top, stats, update', { skip }, async () => {
  await h.cliOk(['run', '-d', '--name', 'ex', 'busybox', 'sleep', '300']);
  assert.equal(await h.cliOk(['exec', 'ex', 'echo', 'inside']), 'inside\n');
  assert.equal(await h.cliOk(['exec', '-e', 'X=1', '-w', '/etc', 'ex', 'sh', '-c', 'echo $X $(pwd)']), '1 /etc\n');
  const piped = await h.cli(['exec', '-i', 'ex', 'cat'], { input: 'piped\n' });
  assert.equal(piped.stdout, 'piped\n');
  const code = await h.cli(['exec', 'ex', 'sh', '-c', 'exit 5']);
  assert.equal(code.code, 5);
  const top = await h.cliOk(['top', 'ex']);
  assert.match(top, /sleep 300/);
  const stats = await h.cliOk(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}', 'ex']);
  assert.match(stats, /^ex \S+/);
  await h.cliOk(['update', '--memory', '64m', '--memory-swap', '128m', 'ex']);
  assert.equal((await h.cliOk(['inspect', '-f', '{{.HostConfig.Memory}}', 'ex'])).trim(), String(64 * 1024 * 1024));
  await h.cliOk(['rm', '-f', 'ex']);
});

test('limits: --memory OOM kill gives 137 and OOMKilled; --pids-limit holds a fork bomb', { skip }, async () => {
  const r = await h.cli(['run', '--name', 'oom', '--memory', '32m', '--memory-swap', '32m', 'busybox', 'sh', '-c', 'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo ${#x}']);
  assert.equal(r.code, 137, r.stdout + r.stderr);
  assert.equal((await h.cliOk(['inspect', '-f', '{{.State.OOMKilled}}', 'oom'])).trim(), 'true');
  await h.cliOk(['rm', 'oom']);
  await h.cliOk(['run', '-d', '--name', 'bomb', '--pids-limit', '32', 'busybox', 'sh', '-c', 'while true; do (while true; do sleep 30 & done) 2>/dev/null; sleep 0.2; done']);
  await new Promise((r) => setTimeout(r, 1500));
  const top = await h.cliOk(['top', 'bomb']);
  const procs = top.trim().split('\n').length - 1;
  assert.ok(procs >= 20 && procs <= 32, `pids limited to 32, saw ${procs}`);
  // the host stays responsive: the daemon answers and a new container runs
  assert.equal(await h.cliOk(['run', '--rm', 'busybox', 'echo', 'alive']), 'alive\n');
  await h.cliOk(['rm', '-f', 'bomb']);
});

test('isolation: read-only rootfs, cap-drop, tmpfs, ulimit, /proc masking', { skip }, async () => {
  const ro = await h.cli(['run', '--rm', '--read-only', 'busybox', 'touch', '/x']);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr + ro.stdout, /Read-only file system/);
  const caps = await h.cliOk(['run', '--rm', '--cap-drop', 'ALL', 'busybox', 'grep', 'CapEff', '/proc/self/status']);
  assert.match(caps, /CapEff:\s+0000000000000000/);
  const tmpfs = await h.cliOk(['run', '--rm', '--read-only', '--tmpfs', '/run:size=1m', 'busybox', 'sh', '-c', 'touch /run/ok && echo ok']);
  assert.equal(tmpfs, 'ok\n');
  const ul = await h.cliOk(['run', '--rm', '--ulimit', 'nofile=256:512', 'busybox', 'sh', '-c', 'ulimit -n']);
  assert.equal(ul.trim(), '256');
  const kcore = await h.cliOk(['run', '--rm', 'busybox', 'sh', '-c', 'wc -c < /proc/keys']);
  assert.equal(kcore.trim(), '0');
  const pidns = await h.cliOk(['run', '--rm', 'busybox', 'sh', '-c', 'echo $$']);
  assert.equal(pidns.trim(), '1');
});

test('security and devices: seccomp default/unconfined, no-new-privileges, privileged, --device, --init, --cpus', { skip }, async () => {
  const status = (args: string[]) => h.cliOk(['run', '--rm', ...args, 'busybox', 'cat', '/proc/self/status']);
  assert.match(await status([]), /^Seccomp:\s+2$/m);
  assert.match(await status(['--security-opt', 'seccomp=unconfined']), /^Seccomp:\s+0$/m);
  assert.match(await status(['--security-opt', 'no-new-privileges']), /^NoNewPrivs:\s+1$/m);
  const priv = await status(['--privileged']);
  assert.match(priv, /^Seccomp:\s+0$/m);
  assert.doesNotMatch(priv, /^CapEff:\s+00000000a80425fb$/m);
  const dev = await h.cliOk(['run', '--rm', '--device', '/dev/null:/dev/mynull', 'busybox', 'sh', '-c', 'echo x > /dev/mynull && ls -l /dev/mynull']);
  assert.match(dev, /^c/);
  const init = await h.cliOk(['run', '--rm', '--init', 'busybox', 'cat', '/proc/1/cmdline']);
  assert.match(init, /docker-init/);
  const id = (await h.cliOk(['run', '-d', '--cpus', '0.5', '--cpu-shares', '512', 'busybox', 'sleep', '30'])).trim();
  const quota = readFileSync(`/sys/fs/cgroup/cpu/berth/${id}/cpu.cfs_quota_us`, 'utf8').trim();
  const shares = readFileSync(`/sys/fs/cgroup/cpu/berth/${id}/cpu.shares`, 'utf8').trim();
  await h.cliOk(['rm', '-f', id]);
  assert.equal(quota, '50000');
  assert.equal(shares, '512');
});

test('cp both ways, diff, commit then run, export | import round trip', { skip }, async () => {
  await h.cliOk(['run', '-d', '--name', 'fs', 'busybox', 'sh', '-c', 'echo made > /made.txt; rm /etc/group; sleep 300']);
  await waitFor(async () => (await h.cli(['exec', 'fs', 'cat', '/made.txt'])).stdout === 'made\n');
  const dir = mkdtempSync(join(tmpdir(), 'berth-cp-'));
  try {
    writeFileSync(join(dir, 'in.txt'), 'from host\n');
    await h.cliOk(['cp', join(dir, 'in.txt'), 'fs:/tmp/']);
    assert.equal(await h.cliOk(['exec', 'fs', 'cat', '/tmp/in.txt']), 'from host\n');
    await h.cliOk(['cp', 'fs:/made.txt', join(dir, 'out.txt')]);
    assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'made\n');
    const diff = await h.cliOk(['diff', 'fs']);
    assert.match(diff, /^A \/made\.txt$/m);
    assert.match(diff, /^D \/etc\/group$/m);
    await h.cliOk(['commit', '-c', 'CMD ["cat", "/made.txt"]', '-m', 'test commit', 'fs', 'committed:1']);
    assert.equal(await h.cliOk(['run', '--rm', 'committed:1']), 'made\n');
    const gone = await h.cli(['run', '--rm', 'committed:1', 'cat', '/etc/group']);
    assert.notEqual(gone.code, 0);
    await h.cliOk(['export', '-o', join(dir, 'fs.tar'), 'fs']);
    assert.ok(existsSync(join(dir, 'fs.tar')));
    await h.cliOk(['import', join(dir, 'fs.tar'), 'reimported:1']);
    assert.equal(await h.cliOk(['run', '--rm', 'reimported:1', 'cat', '/made.txt']), 'made\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await h.cli(['rm', '-f', 'fs']);
  }
});

test('volumes: named volume seeded and kept, bind mounts, --volumes-from, rm -v', { skip }, async () => {
  await h.cliOk(['volume', 'create', 'data1']);
  await h.cliOk(['run', '--rm', '-v', 'data1:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/f']);
  assert.equal(await h.cliOk(['run', '--rm', '-v', 'data1:/data:ro', 'busybox', 'cat', '/data/f']), 'persisted\n');
  const seeded = await h.cliOk(['run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'sh', '-c', 'test -f /etc/passwd && echo seeded']);
  assert.equal(seeded, 'seeded\n');
  const dir = mkdtempSync(join(tmpdir(), 'berth-bind-'));
  try {
    writeFileSync(join(dir, 'h.txt'), 'host file\n');
    assert.equal(await h.cliOk(['run', '--rm', '-v', `${dir}:/mnt:ro`, 'busybox', 'cat', '/mnt/h.txt']), 'host file\n');
    const w = await h.cli(['run', '--rm', '-v', `${dir}:/mnt:ro`, 'busybox', 'touch', '/mnt/x']);
    assert.notEqual(w.code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await h.cliOk(['create', '--name', 'vsrc', '-v', 'data1:/data', 'busybox', 'true']);
  assert.equal(await h.cliOk(['run', '--rm', '--volumes-from', 'vsrc', 'busybox', 'cat', '/data/f']), 'persisted\n');
  const inUse = await h.cli(['volume', 'rm', 'data1']);
  assert.notEqual(inUse.code, 0);
  assert.match(inUse.stderr, /in use/);
  await h.cliOk(['rm', 'vsrc']);
  await h.cliOk(['volume', 'rm', 'data1', 'etcvol']);
  const ls = await h.cliOk(['volume', 'ls', '-q']);
  assert.doesNotMatch(ls, /data1/);
});

test('bad input: unknown image, name conflict, bad memory, unknown runtime, ambiguous nothing left behind', { skip }, async () => {
  const before = await h.cliOk(['ps', '-aq']);
  const ni = await h.cli(['run', '--rm', 'no-such-image:1']);
  assert.equal(ni.code, 125);
  assert.match(ni.stderr, /No such image|Unable to find image|not found/i);
  await h.cliOk(['create', '--name', 'taken', 'busybox', 'true']);
  const dup = await h.cli(['create', '--name', 'taken', 'busybox', 'true']);
  assert.equal(dup.code, 125);
  assert.match(dup.stderr, /already in use/);
  const mem = await h.cli(['run', '--rm', '--memory', 'lots', 'busybox', 'true']);
  assert.equal(mem.code, 125);
  const rt = await h.cli(['run', '--rm', '--runtime', 'nope', 'busybox', 'true']);
  assert.equal(rt.code, 125);
  assert.match(rt.stderr, /unknown or invalid runtime/);
  await h.cliOk(['rm', 'taken']);
  // a start that fails leaves no mount, cgroup or conmon behind
  const id = (await h.cliOk(['create', 'busybox', 'nosuchcmd'])).trim();
  const st = await h.cli(['start', id]);
  assert.notEqual(st.code, 0);
  assert.match(st.stderr, /executable file not found/);
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(id), 'no mount left');
  assert.ok(!existsSync(`/sys/fs/cgroup/memory/berth/${id}`) && !existsSync(`/sys/fs/cgroup/berth/${id}`), 'no cgroup left');
  const ps = await runCommand('ps', ['-eo', 'args']);
  assert.ok(!ps.stdout.includes(id), 'no conmon left');
  assert.equal((await h.cliOk(['inspect', '-f', '{{.State.ExitCode}}', id])).trim(), '127');
  await h.cliOk(['rm', id]);
  const amb = await h.cli(['inspect', '--type', 'container', '']);
  assert.notEqual(amb.code, 0);
  assert.equal(await h.cliOk(['ps', '-aq']), before);
});

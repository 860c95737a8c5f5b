/**
 * Containers outlive the daemon (conmon), restart policies, health checks, and each runtime.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, waitFor as waitUntil, type TestDaemon } from './harness.js';

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

const waitFor = (fn: () => Promise<boolean>): Promise<void> => waitUntil(fn, 20_000, 150);

test('SIGKILL to berthd leaves a -d container running; a new berthd finds it, shows logs, stops it', { skip }, async () => {
  const id = (await h.cliOk(['run', '-d', '--name', 'survivor', 'busybox', 'sh', '-c', 'echo before; trap "exit 9" TERM; while true; do sleep 0.1; done'])).trim();
  await waitFor(async () => (await h.cliOk(['logs', 'survivor'])).includes('before'));
  const pid = Number((await h.cliOk(['inspect', '-f', '{{.State.Pid}}', 'survivor'])).trim());
  assert.ok(pid > 0);
  await h.kill9();
  process.kill(pid, 0); // still alive without the daemon
  await h.restart();
  const ps = await h.cliOk(['ps', '--format', '{{.ID}} {{.Names}} {{.State}}']);
  assert.match(ps, new RegExp(`^${id.slice(0, 12)} survivor running$`, 'm'));
  assert.equal(await h.cliOk(['logs', 'survivor']), 'before\n');
  await h.cliOk(['stop', 'survivor']);
  assert.equal((await h.cliOk(['inspect', '-f', '{{.State.ExitCode}}', 'survivor'])).trim(), '9');
  await h.cliOk(['rm', 'survivor']);
});

test('an exit while the daemon is down is picked up after restart', { skip }, async () => {
  await h.cliOk(['run', '-d', '--name', 'shortlived', 'busybox', 'sh', '-c', 'sleep 1; exit 4']);
  await h.kill9();
  await new Promise((r) => setTimeout(r, 2000));
  await h.restart();
  await waitFor(async () => (await h.cliOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'shortlived'])).trim() === 'exited 4');
  await h.cliOk(['rm', 'shortlived']);
});

test('--restart always restarts a container that dies; on-failure:2 stops after two retries', { skip }, async () => {
  await h.cliOk(['run', '-d', '--name', 'phoenix', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.3; exit 1']);
  await waitFor(async () => Number((await h.cliOk(['inspect', '-f', '{{.RestartCount}}', 'phoenix'])).trim()) >= 2);
  await h.cliOk(['rm', '-f', 'phoenix']);
  await h.cliOk(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3']);
  await waitFor(async () => (await h.cliOk(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky'])).trim() === '2 exited');
  await h.cliOk(['rm', 'flaky']);
});

test('--restart always container is restarted after a daemon restart', { skip }, async () => {
  await h.cliOk(['run', '-d', '--name', 'keeper', '--restart', 'always', 'busybox', 'sleep', '300']);
  const pid1 = (await h.cliOk(['inspect', '-f', '{{.State.Pid}}', 'keeper'])).trim();
  await h.kill9();
  process.kill(Number(pid1), 'SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  await h.restart();
  await waitFor(async () => {
    const [st, pid] = (await h.cliOk(['inspect', '-f', '{{.State.Status}} {{.State.Pid}}', 'keeper'])).trim().split(' ');
    return st === 'running' && pid !== pid1;
  });
  await h.cliOk(['rm', '-f', 'keeper']);
});

test('healthcheck drives State.Health', { skip }, async () => {
  await h.cliOk(['run', '-d', '--name', 'doc', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '300ms', '--health-retries', '2', 'busybox', 'sleep', '300']);
  await waitFor(async () => (await h.cliOk(['inspect', '-f', '{{.State.Health.Status}}', 'doc'])).trim() === 'unhealthy');
  await h.cliOk(['exec', 'doc', 'touch', '/tmp/ok']);
  await waitFor(async () => (await h.cliOk(['inspect', '-f', '{{.State.Health.Status}}', 'doc'])).trim() === 'healthy');
  await h.cliOk(['rm', '-f', 'doc']);
});

for (const rt of ['crun', 'runc', 'runsc']) {
  test(`the same image runs under --runtime ${rt}`, { skip: firstSkip(skip, requireBinary(rt)) }, async () => {
    const r = await h.cli(['run', '--rm', '--runtime', rt, 'busybox', 'sh', '-c', 'echo hello from $0; exit 2']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, 'hello from sh\n');
  });
}

test('info shows the runtime choice and cgroup layout', { skip }, async () => {
  const out = await h.cliOk(['info', '--format', '{{.DefaultRuntime}} {{.CgroupVersion}}']);
  assert.match(out, /^(crun|runc) [12]\n$/);
});

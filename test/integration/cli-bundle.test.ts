/**
 * The installed `berth` command (issue 7: CLI start-up): the wrapper scripts/setup.sh writes
 * (scripts/lib/cli-wrappers.sh), the launcher dist/src/bin/berth-launcher.cjs with its V8 code
 * cache, and the one-file bundle. Driven against a real berthd, plus the daemon auto-start in a
 * private mount and network namespace (so the default socket of the machine is never touched).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  cleanup, cleanupDir, firstSkip, importBusybox, processesMentioning, repoRoot, requireBinary, requireBuilt, requireRoot,
  runCommand, startDaemon, waitFor, type TestDaemon,
} from './harness.js';

const binDir = join(repoRoot, 'dist/src/bin');
const launcher = join(binDir, 'berth-launcher.cjs');
const bundle = join(binDir, 'berth-cli.bundle.cjs');
const requireBundle = (): string | undefined => (existsSync(bundle) && existsSync(launcher) ? undefined : `${bundle} not built (npm run build)`);
const skip = firstSkip(requireBuilt(), requireBundle(), requireRoot(), requireBinary('conmon'), requireBinary('crun'));

let h: TestDaemon;
let wrappers: string;

before(async () => {
  if (skip) return;
  wrappers = mkdtempSync(join(tmpdir(), 'berth-wrappers-'));
  const w = await runCommand('bash', ['-c', '. "$0/scripts/lib/cli-wrappers.sh" && write_cli_wrappers "$0" "$1" "$2"', repoRoot, wrappers, process.execPath]);
  assert.equal(w.code, 0, w.stderr);
  h = await startDaemon();
  await importBusybox(h);
});

after(async () => {
  if (h) await cleanup(h);
  if (wrappers) rmSync(wrappers, { recursive: true, force: true });
});

/** The installed command: `<wrappers>/berth -H <test daemon> ...args`. */
const berth = (args: string[], env: Record<string, string | undefined> = {}): ReturnType<typeof runCommand> =>
  runCommand(join(wrappers, 'berth'), ['-H', h.host, ...args], { env: { BERTH_HOST: undefined, ...env } });

test('the wrapper runs the bundle: version, ps, inspect, run --rm, errors and exit codes', { skip }, async () => {
  const v = await berth(['version']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^Client:\n Version: +0\.1\.0\n API version: +1\.51\n/);
  assert.match(v.stdout, /\nServer: berth\n Engine:\n  Version: +0\.1\.0\n  API version: +1\.51 \(minimum version 1\.24\)\n/);
  const f = await berth(['version', '--format', '{{.Server.ApiVersion}} {{.Client.ApiVersion}}']);
  assert.equal(f.stdout, '1.51 1.51\n', f.stderr);

  const run = await berth(['run', '--rm', 'busybox', 'echo', 'hello from berth']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'hello from berth\n');
  const code = await berth(['run', '--rm', 'busybox', 'sh', '-c', 'exit 7']);
  assert.equal(code.code, 7, code.stderr);

  const id = (await berth(['create', '--name', 'bundled', '--network', 'none', 'busybox', 'sleep', '100'])).stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const ps = await berth(['ps', '-a', '--format', '{{.Names}} {{.State}} {{.CreatedAt}}']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /^bundled created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+\n$/);
  const table = await berth(['ps', '-a']);
  assert.match(table.stdout, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES\n[0-9a-f]{12} +busybox +"sleep 100" +.* bundled\n$/);
  const ins = await berth(['inspect', '--format', '{{.Id}} {{.Name}}', 'bundled']);
  assert.equal(ins.stdout, `${id} /bundled\n`, ins.stderr);

  const missing = await berth(['inspect', 'no-such-thing']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^Error: No such object: no-such-thing\n$|^Error response from daemon: No such/);
  const bad = await berth(['run', '--no-such-flag', 'busybox']);
  assert.equal(bad.code, 125);
  const down = await runCommand(join(wrappers, 'berth'), ['-H', `unix://${h.baseDir}/nothing.sock`, 'version'], {});
  assert.equal(down.code, 1);
  assert.match(down.stdout, /^Client:\n/);
  assert.match(down.stderr, /Cannot connect to the berth daemon at unix:\/\/.*nothing\.sock\. Is the berth daemon running\?/);
  assert.equal((await berth(['rm', 'bundled'])).code, 0);
});

test('NODE_EXTRA_CA_CERTS is moved aside for the CLI (no certificate parsing at start-up)', { skip }, async () => {
  // Node warns on stderr when it loads NODE_EXTRA_CA_CERTS and the file is missing: the CLI must not load it
  const r = await berth(['version', '--format', '{{.Server.Version}}'], { NODE_EXTRA_CA_CERTS: '/nonexistent/berth-test-ca.pem' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '0.1.0\n');
  assert.doesNotMatch(r.stderr, /extra certs/);
  // the plain ESM entry (no wrapper) does load it: the check above can fail
  const direct = await runCommand(process.execPath, [join(binDir, 'berth.js'), '-H', h.host, 'version', '--format', '{{.Server.Version}}'], { env: { NODE_EXTRA_CA_CERTS: '/nonexistent/berth-test-ca.pem' } });
  assert.match(direct.stderr, /Ignoring extra certs from `\/nonexistent\/berth-test-ca\.pem`/);
});

test('code cache: written on first run, stamped with the bundle, rejected garbage is replaced', { skip }, async () => {
  // a private copy of launcher + bundle, so the shared dist/ cache is not raced
  const dir = mkdtempSync(join(tmpdir(), 'berth-cc-'));
  try {
    copyFileSync(launcher, join(dir, 'berth-launcher.cjs'));
    copyFileSync(bundle, join(dir, 'berth-cli.bundle.cjs'));
    const cache = join(dir, 'berth-cli.bundle.cjs.v8cache');
    const run = (): ReturnType<typeof runCommand> =>
      runCommand(process.execPath, [join(dir, 'berth-launcher.cjs'), '-H', h.host, 'version', '--format', '{{.Server.Version}}'], { env: { NODE_EXTRA_CA_CERTS: undefined } });
    const first = await run();
    assert.equal(first.stdout, '0.1.0\n', first.stderr);
    const written = readFileSync(cache);
    const nl = written.indexOf(10);
    assert.match(written.toString('latin1', 0, nl), new RegExp(`^berth-v8cache 1 ${readFileSync(bundle).length} [\\d.]+ ${process.version.replace(/\./g, '\\.')} ${process.arch}$`));
    assert.ok(written.length - nl > 10_000, `cache of ${written.length} bytes`);
    // accepted cache: the next run uses it and leaves the file alone
    const second = await run();
    assert.equal(second.stdout, '0.1.0\n', second.stderr);
    assert.deepEqual(readFileSync(cache), written);
    // garbage with a valid stamp: V8 rejects it, the CLI still works and writes a good cache
    writeFileSync(cache, Buffer.concat([written.subarray(0, nl + 1), Buffer.alloc(5000, 7)]));
    const third = await run();
    assert.equal(third.stdout, '0.1.0\n', third.stderr);
    const rewritten = readFileSync(cache);
    assert.deepEqual(rewritten.subarray(0, nl + 1), written.subarray(0, nl + 1));
    assert.ok(rewritten.length > 10_000 && rewritten[nl + 1] !== 7, 'V8 bytes rewritten');
    // BERTH_CODE_CACHE=0: no cache read or written
    rmSync(cache);
    const off = await runCommand(process.execPath, [join(dir, 'berth-launcher.cjs'), '-H', h.host, 'version', '--format', '{{.Server.Version}}'], { env: { BERTH_CODE_CACHE: '0' } });
    assert.equal(off.stdout, '0.1.0\n', off.stderr);
    assert.equal(existsSync(cache), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('auto-start: with no daemon on the default socket the installed CLI starts berthd (private mount+net namespace)', { skip: firstSkip(skip, requireBinary('unshare')) }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'berth-autostart-'));
  const dataRoot = join(base, 'root');
  try {
    // a tmpfs over /run/berth hides the machine's default socket; the daemon's bridge lives in the new netns
    const script = 'mount -t tmpfs tmpfs /run/berth && exec "$0" version --format "{{.Server.Version}}"';
    const r = await runCommand('unshare', ['-m', '-n', '--propagation', 'private', 'sh', '-c', script, join(wrappers, 'berth')], {
      env: { BERTH_HOST: undefined, BERTH_DATA_ROOT: dataRoot, NODE_EXTRA_CA_CERTS: '/nonexistent/berth-test-ca.pem' },
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0.1.0\n');
    assert.doesNotMatch(r.stderr, /extra certs/);
    const pids = processesMentioning(dataRoot);
    assert.equal(pids.length, 1, `daemons: ${pids.join(',')}`);
    // the daemon got NODE_EXTRA_CA_CERTS back (it talks to registries); the saved copy is gone
    const env = readFileSync(`/proc/${pids[0]}/environ`, 'utf8').split('\0');
    assert.ok(env.includes('NODE_EXTRA_CA_CERTS=/nonexistent/berth-test-ca.pem'), 'NODE_EXTRA_CA_CERTS restored for berthd');
    assert.ok(!env.some((e) => e.startsWith('BERTH_SAVED_NODE_EXTRA_CA_CERTS=')));
    assert.match(readFileSync(join(dataRoot, 'berthd.log'), 'utf8'), /berthd listening on unix:\/\/\/run\/berth\/berth\.sock/);
  } finally {
    for (const pid of processesMentioning(dataRoot)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await waitFor(async () => processesMentioning(dataRoot).length === 0, 15_000).catch(() => {
      for (const pid of processesMentioning(dataRoot)) process.kill(pid, 'SIGKILL');
    });
    await cleanupDir(base);
  }
});

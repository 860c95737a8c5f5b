/**
 * Bearer-token auth against a real `docker-registry` (issue 3): the registry runs with
 * `auth: token` and trusts the certificate of a test token server (token-server.ts) that signs
 * RS256 JWTs and grants per repository — admin: everything; alice: pull+push on alice/*, pull on
 * shared/*; everyone (anonymous too): pull on public/*. A recording proxy sits in front of the
 * registry, so tests assert on what went over the wire (uploads, 401s) as well as on the token
 * requests (who asked which scopes). berthd does the work; the docker CLI 28 talks to berthd too
 * where its output is what users see (login).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, findBinary, runCommand, type TestDaemon } from './harness.js';
import { RecordingProxy, startRegistry, stopRegistry, type Registry } from './registry-helpers.js';
import { TokenServer } from './token-server.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'), requireBinary('docker-registry'), requireBinary('openssl'));

let h: TestDaemon;
let tmp: string;
let tokens: TokenServer;
let registry: Registry;
let proxy: RecordingProxy;
let server: string;
/** DOCKER_CONFIG dirs: one per identity, so each CLI call sends that identity's credentials. */
const envs: Record<'admin' | 'alice' | 'anon', Record<string, string>> = { admin: {}, alice: {}, anon: {} };

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(join(tmpdir(), 'berth-token-test-'));
  tokens = new TokenServer(tmp, { admin: 'adm1n', alice: 's3cret' }, [
    { user: 'admin', prefix: '', actions: ['pull', 'push'] },
    { user: 'alice', prefix: 'alice/', actions: ['pull', 'push'] },
    { user: 'alice', prefix: 'shared/', actions: ['pull'] },
    { user: '*', prefix: 'public/', actions: ['pull'] },
  ]);
  await tokens.start();
  registry = await startRegistry(tmp, 'token-registry', tokens.registryYaml());
  proxy = new RecordingProxy(registry.port);
  await proxy.start();
  server = `127.0.0.1:${proxy.port}`;
  for (const who of ['admin', 'alice', 'anon'] as const) {
    const dir = join(tmp, `docker-config-${who}`);
    mkdirSync(dir, { recursive: true });
    envs[who] = { DOCKER_CONFIG: dir };
  }
  h = await startDaemon();
  await importBusybox(h);
  // a 4-layer image (busybox + three COPY layers of incompressible data), so per-blob behaviour shows
  const ctxDir = join(tmp, 'ctx');
  mkdirSync(ctxDir, { recursive: true });
  for (const f of ['a', 'b', 'c']) writeFileSync(join(ctxDir, f), randomBytes(300_000));
  writeFileSync(join(ctxDir, 'Dockerfile'), 'FROM busybox\nCOPY a /a\nCOPY b /b\nCOPY c /c\n');
  await h.cliOk(['build', '-q', '-t', 'multi:1', ctxDir]);
  for (const [who, pass] of [['admin', 'adm1n'], ['alice', 's3cret']] as const) {
    await h.cliOk(['login', '-u', who, '--password-stdin', server], { env: envs[who], input: `${pass}\n` });
  }
  // seed repositories nobody else may push to
  for (const repo of ['public/busybox', 'shared/busybox']) {
    await h.cliOk(['tag', 'busybox', `${server}/${repo}:latest`]);
    await h.cliOk(['push', `${server}/${repo}:latest`], { env: envs.admin });
  }
});

after(async () => {
  if (h) await cleanup(h);
  await proxy?.close();
  await stopRegistry(registry);
  await tokens?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const cli = (who: keyof typeof envs, args: string[], input?: string) => h.cli(args, { env: envs[who], ...(input !== undefined ? { input } : {}) });

async function inspect(ref: string): Promise<{ Id: string; RepoDigests: string[] }> {
  return JSON.parse(await h.cliOk(['image', 'inspect', ref]))[0];
}

/** Token requests made from now on (call the result after the operation). */
function tokenLog(): () => typeof tokens.requests {
  const from = tokens.requests.length;
  return () => tokens.requests.slice(from);
}

/** Proxy requests made from now on. */
function wireLog(): () => typeof proxy.requests {
  const from = proxy.requests.length;
  return () => proxy.requests.slice(from);
}

test('login: good credentials succeed, bad ones are a clear 401 (berth and docker CLI)', { skip }, async () => {
  const env = { DOCKER_CONFIG: join(tmp, 'docker-config-login') };
  const seen = tokenLog();
  const bad = await h.cli(['login', '-u', 'alice', '--password-stdin', server], { env, input: 'wrong\n' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, new RegExp(`Get "http://${server.replace(/\./g, '\\.')}/v2/": unauthorized: incorrect username or password`));
  assert.deepEqual(seen().map((r) => [r.user, r.status]), [['alice', 401]], 'one token request, refused');

  const good = await h.cli(['login', '-u', 'alice', '--password-stdin', server], { env, input: 's3cret\n' });
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /Login Succeeded/);
  const cfg = JSON.parse(readFileSync(join(env.DOCKER_CONFIG, 'config.json'), 'utf8'));
  assert.equal(cfg.auths[server].auth, Buffer.from('alice:s3cret').toString('base64'));

  const docker = findBinary('docker');
  if (docker) {
    const denv = { DOCKER_HOST: h.host, DOCKER_CONFIG: join(tmp, 'docker-cli-config') };
    const dbad = await runCommand(docker, ['login', '-u', 'alice', '--password-stdin', server], { env: denv, input: 'nope\n' });
    assert.equal(dbad.code, 1);
    assert.match(dbad.stderr, /Error response from daemon: Get "http:\/\/127\.0\.0\.1:\d+\/v2\/": unauthorized: incorrect username or password/);
    const dgood = await runCommand(docker, ['login', '-u', 'alice', '--password-stdin', server], { env: denv, input: 's3cret\n' });
    assert.equal(dgood.code, 0, dgood.stderr);
    assert.match(dgood.stdout, /Login Succeeded/);
  }
});

test('anonymous pull of a public repository; a private one is refused', { skip }, async () => {
  const name = `${server}/public/busybox:latest`;
  await h.cli(['rmi', name]);
  const seen = tokenLog();
  const pull = await cli('anon', ['pull', name]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, /Status: (Downloaded newer image|Image is up to date)/);
  const reqs = seen();
  assert.ok(reqs.length >= 1);
  for (const r of reqs) {
    assert.equal(r.user, '', 'anonymous token requests carry no credentials');
    assert.deepEqual(r.scopes, ['repository:public/busybox:pull']);
  }
  const priv = await cli('anon', ['pull', `${server}/alice/nothing:latest`]);
  assert.equal(priv.code, 1);
  // Docker 20.10 against this registry and token server says exactly this
  assert.match(priv.stderr, /pull access denied for 127\.0\.0\.1:\d+\/alice\/nothing, repository does not exist or may require 'docker login': denied: requested access to the resource is denied/);
});

test('push and pull back with login: same digests, one token per scope (not one per blob)', { skip }, async () => {
  const name = `${server}/alice/multi:1`;
  await h.cliOk(['tag', 'multi:1', name]);
  const id = (await inspect(name)).Id;
  let seen = tokenLog();
  const push = await cli('alice', ['push', name]);
  assert.equal(push.code, 0, push.stderr);
  const m = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push.stdout);
  assert.ok(m, push.stdout);
  assert.equal((push.stdout.match(/Pushed/g) ?? []).length, 3, push.stdout);
  // busybox's layer is known to be in public/busybox (which alice may pull): mounted from there
  assert.match(push.stdout, /Mounted from (public|shared)\/busybox/);
  // 4 layers + config + manifest (HEADs, POSTs, PUTs): one token for the push scope, one for the mount
  const pushReqs = seen();
  assert.ok(pushReqs.every((r) => r.user === 'alice' && r.scopes.includes('repository:alice/multi:pull,push')), JSON.stringify(pushReqs));
  const plain = pushReqs.filter((r) => r.scopes.length === 1);
  assert.equal(plain.length, 1, JSON.stringify(pushReqs));
  assert.deepEqual(plain[0]!.granted, [{ type: 'repository', name: 'alice/multi', actions: ['pull', 'push'] }]);
  assert.equal(pushReqs.length, 2, JSON.stringify(pushReqs));

  await h.cliOk(['rmi', name, 'multi:1']);
  seen = tokenLog();
  const wire = wireLog();
  const pull = await cli('alice', ['pull', name]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`Digest: ${m[1]}`));
  const img = await inspect(name);
  assert.equal(img.Id, id, 'same config digest');
  assert.deepEqual(img.RepoDigests, [`${server}/alice/multi@${m[1]}`]);
  const pullReqs = seen();
  assert.deepEqual(pullReqs.map((r) => r.scopes.join(' ')), ['repository:alice/multi:pull'], JSON.stringify(pullReqs));
  const blobGets = wire().filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.url));
  assert.ok(blobGets.length >= 4, `blobs were downloaded: ${blobGets.length}`);
  assert.ok(blobGets.every((r) => r.status === 200), 'every blob GET carried a valid token (no 401 round trips)');
  await h.cliOk(['tag', name, 'multi:1']);
});

test('a push to a repository the user may only pull is "denied: requested access to the resource is denied"', { skip }, async () => {
  const name = `${server}/shared/busybox:evil`;
  await h.cliOk(['tag', 'busybox', name]);
  const seen = tokenLog();
  const push = await cli('alice', ['push', name]);
  assert.equal(push.code, 1, push.stdout);
  assert.match(push.stderr, /denied: requested access to the resource is denied/);
  const reqs = seen();
  assert.ok(reqs.length >= 1);
  assert.ok(reqs.every((r) => r.scopes.join(' ') === 'repository:shared/busybox:pull,push'));
  assert.deepEqual(reqs[0]!.granted, [{ type: 'repository', name: 'shared/busybox', actions: ['pull'] }]);
  // nothing was tagged on the registry
  const tags = await fetch(`http://${server}/v2/shared/busybox/tags/list`, { headers: { authorization: `Bearer ${tokens.sign('admin', [{ type: 'repository', name: 'shared/busybox', actions: ['pull'] }])}` } });
  assert.deepEqual((await tags.json() as { tags: string[] }).tags, ['latest']);
  await h.cliOk(['rmi', name]);
});

test('an expired token is renewed during a pull that outlives it', { skip }, async () => {
  // one download at a time, each blob slowed down: the pull lasts longer than the token lives
  const cfg = join(tmp, 'daemon-serial.json');
  writeFileSync(cfg, JSON.stringify({ 'max-concurrent-downloads': 1 }));
  const h2 = await startDaemon({ args: ['--config-file', cfg] });
  const ttl = tokens.ttlSeconds;
  try {
    tokens.ttlSeconds = 2;
    proxy.rules = [{ method: 'GET', path: /\/v2\/alice\/multi\/blobs\/sha256:/, action: 'slow', afterBytes: 60_000 }];
    const seen = tokenLog();
    const wire = wireLog();
    const pull = await h2.cli(['pull', `${server}/alice/multi:1`], { env: envs.alice, timeoutMs: 120_000 });
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, /Status: Downloaded newer image/);
    const reqs = seen();
    assert.ok(reqs.length >= 2, `the token was renewed: ${reqs.length} token request(s)`);
    assert.ok(reqs.every((r) => r.user === 'alice' && r.status === 200 && r.scopes.join(' ') === 'repository:alice/multi:pull'));
    const refused = wire().filter((r) => r.status === 401);
    assert.ok(refused.length >= 1, 'the registry refused the expired token at least once');
    assert.equal(JSON.parse(await h2.cliOk(['image', 'inspect', `${server}/alice/multi:1`]))[0].Id, (await inspect('multi:1')).Id);
  } finally {
    tokens.ttlSeconds = ttl;
    proxy.rules = [];
    await cleanup(h2);
  }
});

test('cross-repository mount under token auth: one token for both scopes, "Mounted from", no upload', { skip }, async () => {
  const src = `${server}/alice/a:1`;
  const dst = `${server}/alice/b:1`;
  await h.cliOk(['tag', 'multi:1', src]);
  await h.cliOk(['tag', 'multi:1', dst]);
  const first = await cli('alice', ['push', src]);
  assert.equal(first.code, 0, first.stderr);
  const seen = tokenLog();
  const wire = wireLog();
  const push = await cli('alice', ['push', dst]);
  assert.equal(push.code, 0, push.stderr);
  assert.equal((push.stdout.match(/Mounted from alice\/a/g) ?? []).length, 4, push.stdout);
  assert.doesNotMatch(push.stdout, /Pushed/);
  const w = wire();
  const mounts = w.filter((r) => r.method === 'POST' && /\/v2\/alice\/b\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=alice%2Fa$/.test(r.url));
  assert.equal(mounts.length, 5, 'four layers and the config were mounted');
  assert.ok(mounts.every((r) => r.status === 201));
  assert.equal(w.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && /\/blobs\/uploads\//.test(r.url)).length, 0, 'no blob was uploaded');
  const both = seen().filter((r) => r.scopes.includes('repository:alice/b:pull,push') && r.scopes.includes('repository:alice/a:pull'));
  assert.equal(both.length, 1, `one token request with both scopes: ${JSON.stringify(seen())}`);
  assert.deepEqual(both[0]!.granted, [
    { type: 'repository', name: 'alice/b', actions: ['pull', 'push'] },
    { type: 'repository', name: 'alice/a', actions: ['pull'] },
  ]);
  await h.cliOk(['rmi', src, dst]);
});

test('a mount from a repository the user may not pull falls back to an upload', { skip }, async () => {
  // admin pushes an image alice cannot read; berth then knows its blobs are in private/m
  const ctxDir = join(tmp, 'ctx2');
  mkdirSync(ctxDir, { recursive: true });
  writeFileSync(join(ctxDir, 'x'), randomBytes(200_000));
  writeFileSync(join(ctxDir, 'Dockerfile'), 'FROM busybox\nCOPY x /x\n');
  await h.cliOk(['build', '-q', '-t', `${server}/private/m:1`, ctxDir]);
  const adminPush = await cli('admin', ['push', `${server}/private/m:1`]);
  assert.equal(adminPush.code, 0, adminPush.stderr);
  const name = `${server}/alice/c:1`;
  await h.cliOk(['tag', `${server}/private/m:1`, name]);
  const seen = tokenLog();
  const wire = wireLog();
  const push = await cli('alice', ['push', name]);
  assert.equal(push.code, 0, push.stderr);
  assert.doesNotMatch(push.stdout, /Mounted from private/);
  assert.match(push.stdout, /Pushed/);
  const digest = /1: digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
  assert.ok(digest, push.stdout);
  const w = wire();
  const mounts = w.filter((r) => r.method === 'POST' && /[?&]from=private%2Fm/.test(r.url));
  // private/m is now the most recent source of all three blobs (busybox's layer, the new layer, the config)
  assert.equal(mounts.length, 3, 'every blob: mount tried');
  assert.ok(mounts.every((r) => r.status === 401), 'and refused');
  assert.ok(w.some((r) => r.method === 'PUT' && /\/v2\/alice\/c\/blobs\/uploads\//.test(r.url) && r.status === 201), 'the blobs were uploaded');
  const asked = seen().filter((r) => r.scopes.includes('repository:private/m:pull'));
  assert.equal(asked.length, 1, 'one token request for the mount scopes');
  assert.ok(!asked[0]!.granted.some((g) => g.name === 'private/m'), 'no access granted to the source');
  // the refused source is forgotten (as Docker does), so later pushes do not ask it again
  const sources = JSON.parse(readFileSync(join(h.dataRoot, 'metadata', 'blob-sources.json'), 'utf8')) as Record<string, string[]>;
  const refused = Object.values(sources).filter((l) => l.includes(`${server}/private/m`));
  assert.equal(refused.length, 0, JSON.stringify(sources));

  await h.cliOk(['rmi', name]);
  const pull = await cli('alice', ['pull', name]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`Digest: ${digest}`));
  await h.cliOk(['rmi', name, `${server}/private/m:1`]);
});

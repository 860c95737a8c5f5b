/**
 * Registry client end to end (issue 3): a real berthd and Debian's `docker-registry` on loopback
 * (once open, once with htpasswd basic auth): push → rmi → pull → run, pull by digest, save | load,
 * a tampered blob rejected with nothing stored, login/logout with good and bad credentials.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, type TestDaemon } from './harness.js';
import { startRegistry, stopRegistry, type Registry } from './registry-helpers.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'), requireBinary('docker-registry'));

let h: TestDaemon;
let tmp: string;
let open: Registry;
let authed: Registry | undefined;
let env: Record<string, string>;

/** A bcrypt htpasswd line (python3's crypt module), or undefined when it cannot be made. */
function htpasswdLine(user: string, pass: string): string | undefined {
  try {
    const hash = execFileSync('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', pass], { encoding: 'utf8' }).trim();
    return hash.startsWith('$2') ? `${user}:${hash}` : undefined;
  } catch {
    return undefined;
  }
}

const htLine = skip ? undefined : htpasswdLine('alice', 's3cret');

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(join(tmpdir(), 'berth-registry-test-'));
  env = { DOCKER_CONFIG: join(tmp, 'docker-config') };
  open = await startRegistry(tmp, 'open');
  const line = htLine;
  if (line) {
    writeFileSync(join(tmp, 'htpasswd'), `${line}\n`);
    authed = await startRegistry(tmp, 'authed', ['auth:', '  htpasswd:', '    realm: berth-test', `    path: ${join(tmp, 'htpasswd')}`].join('\n'));
  }
  h = await startDaemon();
  await importBusybox(h);
});

after(async () => {
  await stopRegistry(open);
  await stopRegistry(authed);
  if (h) await cleanup(h);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const cli = (args: string[], input?: string | Buffer) => h.cli(args, { env, ...(input !== undefined ? { input } : {}) });
const cliOk = (args: string[]) => h.cliOk(args, { env });

async function inspect(ref: string): Promise<{ Id: string; RepoDigests: string[]; RepoTags: string[] }> {
  return JSON.parse(await cliOk(['image', 'inspect', ref]))[0];
}

test('push busybox, rmi, pull it back with the same digests, and run it', { skip }, async () => {
  const name = `127.0.0.1:${open.port}/busybox:latest`;
  await cliOk(['tag', 'busybox', name]);
  const before = await inspect(name);
  const push = await cli(['push', name]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stdout, /The push refers to repository \[127\.0\.0\.1:\d+\/busybox\]/);
  const m = /latest: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push.stdout);
  assert.ok(m, push.stdout);
  const pushedDigest = m[1]!;
  assert.ok((await inspect(name)).RepoDigests.includes(`127.0.0.1:${open.port}/busybox@${pushedDigest}`));

  // a second push finds every blob present
  const again = await cli(['push', name]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Layer already exists/);

  await cliOk(['rmi', name]);
  await cliOk(['rmi', 'busybox']);
  assert.equal((await cli(['image', 'inspect', name])).code, 1);

  const pull = await cli(['pull', name]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, /Pulling fs layer/);
  assert.match(pull.stdout, /Pull complete/);
  assert.match(pull.stdout, new RegExp(`Digest: ${pushedDigest}`));
  assert.match(pull.stdout, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/busybox:latest/);
  const after = await inspect(name);
  assert.equal(after.Id, before.Id, 'config digest (image id) survives the round trip');
  assert.deepEqual(after.RepoDigests, [`127.0.0.1:${open.port}/busybox@${pushedDigest}`]);

  const run = await cli(['run', '--rm', name, 'echo', 'ok']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'ok\n');

  // by digest: everything present, nothing downloaded
  const byDigest = await cli(['pull', `127.0.0.1:${open.port}/busybox@${pushedDigest}`]);
  assert.equal(byDigest.code, 0, byDigest.stderr);
  assert.match(byDigest.stdout, /Already exists/);
  assert.match(byDigest.stdout, /Status: Image is up to date/);

  // the pulled layer is a plain tar: written once, as files, with a recipe instead of a blob copy
  const layerDigests = JSON.parse(await cliOk(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', name])) as string[];
  for (const d of layerDigests) {
    assert.ok(!existsSync(join(h.dataRoot, 'content/blobs/sha256', d.slice(7))), `no blob file for ${d}`);
  }
  assert.ok(readdirSync(join(h.dataRoot, 'layers')).some((n) => existsSync(join(h.dataRoot, 'layers', n, 'tar-split'))), 'a layer keeps a tar-split recipe');
  // pushed to an empty registry, the blob rebuilt from it uploads and verifies (same digests again)
  const fresh = await startRegistry(tmp, 'fresh');
  try {
    const other = `127.0.0.1:${fresh.port}/copy/busybox:latest`;
    await cliOk(['tag', name, other]);
    const up = await cli(['push', other]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /Pushed/);
    assert.match(up.stdout, new RegExp(`latest: digest: ${pushedDigest} `));
    await cliOk(['rmi', other]);
  } finally {
    await stopRegistry(fresh);
  }
  await cliOk(['tag', name, 'busybox:latest']);
});

test('an unknown tag is "manifest unknown"', { skip }, async () => {
  const r = await cli(['pull', `127.0.0.1:${open.port}/busybox:no-such-tag`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /manifest for 127\.0\.0\.1:\d+\/busybox:no-such-tag not found: manifest unknown/);
});

test('save | load round trip', { skip }, async () => {
  await cliOk(['tag', 'busybox', 'saved:v1']);
  const id = (await inspect('saved:v1')).Id;
  const file = join(tmp, 'saved.tar');
  await cliOk(['save', '-o', file, 'saved:v1']);
  const listing = execFileSync('tar', ['tf', file], { encoding: 'utf8' }).split('\n');
  for (const f of ['manifest.json', 'index.json', 'oci-layout', 'repositories', `blobs/sha256/${id.slice(7)}`]) assert.ok(listing.includes(f), `${f} in ${listing.join(' ')}`);
  const manifest = JSON.parse(execFileSync('tar', ['xOf', file, 'manifest.json'], { encoding: 'utf8' }));
  assert.deepEqual(manifest[0].RepoTags, ['saved:v1']);
  await cliOk(['rmi', 'saved:v1']);
  const load = await cli(['load', '-i', file]);
  assert.equal(load.code, 0, load.stderr);
  assert.equal(load.stdout, 'Loaded image: saved:v1\n');
  assert.equal((await inspect('saved:v1')).Id, id);
  const run = await cli(['run', '--rm', 'saved:v1', 'echo', 'loaded']);
  assert.equal(run.stdout, 'loaded\n', run.stderr);
  // stdin form, as `berth save x | berth load`
  const load2 = await cli(['load'], readFileSync(file));
  assert.equal(load2.code, 0, load2.stderr);
});

test('a tampered blob is rejected and nothing of it is stored', { skip }, async () => {
  const src = join(tmp, 'tamper-src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'hello.txt'), 'x'.repeat(100_000));
  const tarFile = join(tmp, 'tamper.tar');
  execFileSync('tar', ['-C', src, '-cf', tarFile, '.']);
  const name = `127.0.0.1:${open.port}/tampered:1`;
  await cliOk(['import', tarFile, name]);
  const layerDigest: string = JSON.parse(await cliOk(['image', 'inspect', name]))[0].RootFS.Layers[0];
  const push = await cli(['push', name]);
  assert.equal(push.code, 0, push.stderr);
  await cliOk(['rmi', name]);
  // the import stored the tar uncompressed, so the blob digest is the diff id
  const hex = layerDigest.slice(7);
  const blob = join(open.dir, 'storage/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  assert.ok(existsSync(blob), blob);
  const bytes = readFileSync(blob);
  bytes[bytes.length - 2000] = bytes[bytes.length - 2000]! ^ 0xff;
  writeFileSync(blob, bytes);
  const r = await cli(['pull', name]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /verification failed for digest/);
  const blobs = readdirSync(join(h.dataRoot, 'content/blobs/sha256'));
  assert.ok(!blobs.includes(hex), 'the tampered blob was not stored');
  assert.deepEqual(readdirSync(join(h.dataRoot, 'content/ingest')), []);
  assert.equal((await cli(['image', 'inspect', name])).code, 1);
});

test('login/logout with htpasswd auth; push and pull need the credentials', { skip: skip ?? (htLine ? undefined : 'no bcrypt htpasswd generator (python3 crypt)') }, async (t) => {
  if (!authed) return t.skip('no bcrypt');
  const server = `127.0.0.1:${authed.port}`;
  const bad = await cli(['login', '-u', 'alice', '--password-stdin', server], 'wrong\n');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /401 Unauthorized/);
  const good = await cli(['login', '-u', 'alice', '--password-stdin', server], 's3cret\n');
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /Login Succeeded/);
  const cfg = JSON.parse(readFileSync(join(env['DOCKER_CONFIG']!, 'config.json'), 'utf8'));
  assert.equal(cfg.auths[server].auth, Buffer.from('alice:s3cret').toString('base64'));

  const name = `${server}/app:v1`;
  await cliOk(['tag', 'busybox', name]);
  const push = await cli(['push', name]);
  assert.equal(push.code, 0, push.stderr);
  await cliOk(['rmi', name]);
  const pull = await cli(['pull', name]);
  assert.equal(pull.code, 0, pull.stderr);

  const out = await cli(['logout', server]);
  assert.match(out.stdout, /Removing login credentials/);
  await cliOk(['rmi', name]);
  const denied = await cli(['pull', name]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /pull access denied for 127\.0\.0\.1:\d+\/app, repository does not exist or may require 'docker login'/);
});

test('daemon.json registry-mirrors, pull -a, and save --format oci | load', { skip }, async () => {
  const base = `127.0.0.1:${open.port}/library/mirrored`;
  await cliOk(['tag', 'busybox', `${base}:latest`]);
  await cliOk(['tag', 'busybox', `${base}:v2`]);
  for (const t of ['latest', 'v2']) assert.equal((await cli(['push', `${base}:${t}`])).code, 0);
  await cliOk(['rmi', `${base}:latest`, `${base}:v2`]);

  // -a pulls every tag; a tag with -a is refused
  const bad = await cli(['pull', '-a', `${base}:v2`]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /tag can't be used with --all-tags\/-a/);
  const all = await cli(['pull', '-a', base]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, new RegExp(`Status: (Downloaded newer image|Image is up to date) for ${base.replace(/\./g, '\\.')}`));
  assert.equal((await inspect(`${base}:latest`)).Id, (await inspect(`${base}:v2`)).Id);

  // a daemon whose config lists the loopback registry as a mirror pulls docker.io/library/mirrored from it
  const cfg = join(tmp, 'daemon.json');
  writeFileSync(cfg, JSON.stringify({ 'registry-mirrors': [`http://127.0.0.1:${open.port}`], 'insecure-registries': ['registry.invalid:5000'] }));
  const h2 = await startDaemon({ args: ['--config-file', cfg] });
  try {
    const pull = await h2.cli(['pull', 'mirrored'], { env });
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, /Status: Downloaded newer image for mirrored:latest/);
    const id = JSON.parse(await h2.cliOk(['image', 'inspect', 'mirrored'], { env }))[0].Id;
    assert.equal(id, (await inspect(`${base}:latest`)).Id);

    // OCI layout only, loadable by berth load
    const file = join(tmp, 'oci.tar');
    await h2.cliOk(['save', '--format', 'oci', '-o', file, 'mirrored'], { env });
    const listing = execFileSync('tar', ['tf', file], { encoding: 'utf8' }).split('\n');
    assert.ok(listing.includes('oci-layout') && listing.includes('index.json'));
    assert.ok(!listing.includes('manifest.json'));
    await h2.cliOk(['rmi', 'mirrored'], { env });
    const load = await h2.cli(['load', '-i', file], { env });
    assert.equal(load.code, 0, load.stderr);
    assert.equal(load.stdout, 'Loaded image: mirrored:latest\n');
    const run = await h2.cli(['run', '--rm', 'mirrored', 'echo', 'mirrored'], { env });
    assert.equal(run.stdout, 'mirrored\n', run.stderr);
  } finally {
    await cleanup(h2);
  }
});

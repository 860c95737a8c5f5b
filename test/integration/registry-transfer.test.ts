/**
 * Registry transfers against a real `docker-registry` (issue 3): zstd layers, cross-repository
 * mounts and chunked uploads on push, interrupted and stalled downloads, concurrent pulls of one
 * image, and a prune while a pull runs. A recording proxy (registry-helpers.ts) sits between
 * berthd and the registry: it counts requests and cuts, stalls or slows blob bodies on demand.
 * berthd runs with daemon.json `registry-chunk-size` 256 KiB and `registry-stall-timeout` 2 s.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, waitFor, type TestDaemon } from './harness.js';
import { pushRawImage, RecordingProxy, sha256, startRegistry, stopRegistry, type Registry } from './registry-helpers.js';
import { rawRequest } from '../compat/compat-util.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'), requireBinary('docker-registry'), requireBinary('zstd'));

const CHUNK = 256 * 1024;

let h: TestDaemon;
let tmp: string;
let reg: Registry;
let proxy: RecordingProxy;
/** `127.0.0.1:<proxy port>`: the registry as berth sees it. */
let via: string;
/** Direct URL of the registry (for raw pushes that bypass the proxy). */
let direct: string;

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(join(tmpdir(), 'berth-registry-transfer-'));
  reg = await startRegistry(tmp, 'reg');
  direct = `http://127.0.0.1:${reg.port}`;
  proxy = new RecordingProxy(reg.port);
  await proxy.start();
  via = `127.0.0.1:${proxy.port}`;
  const cfg = join(tmp, 'daemon.json');
  writeFileSync(cfg, JSON.stringify({ 'registry-chunk-size': CHUNK, 'registry-stall-timeout': 2 }));
  h = await startDaemon({ args: ['--config-file', cfg] });
  await importBusybox(h);
});

after(async () => {
  await proxy?.close();
  await stopRegistry(reg);
  if (h) await cleanup(h);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const cli = (args: string[]) => h.cli(args);
const cliOk = (args: string[]) => h.cliOk(args);

async function inspect(ref: string): Promise<{ Id: string; RepoDigests: string[]; RootFS: { Layers: string[] } }> {
  return JSON.parse(await cliOk(['image', 'inspect', ref]))[0];
}

/** tar a directory (entries relative to it) and return the bytes. */
function tarDir(dir: string): Buffer {
  return execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 256 << 20 });
}

/** A rootfs dir with a static busybox at /bin/busybox and /bin/sh, plus the given files. */
function rootfs(name: string, files: Record<string, string | Buffer>, withBusybox: boolean): string {
  const dir = join(tmp, name);
  mkdirSync(join(dir, 'bin'), { recursive: true });
  if (withBusybox) {
    copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
    symlinkSync('busybox', join(dir, 'bin/sh'));
  }
  for (const [p, c] of Object.entries(files)) writeFileSync(join(dir, p), c);
  return dir;
}

/** The data root holds no blob with this digest, no ingest file and no half-unpacked layer. */
/**
 * Nothing partial is visible. With `keptPrefix` the cut download's prefix stays private in the
 * ingest area (as may the prefixes of the pull's other layers, cancelled by the failure).
 */
function assertNothingPartial(digest: string, opts: { keptPrefix?: boolean } = {}): void {
  const blobs = readdirSync(join(h.dataRoot, 'content/blobs/sha256'));
  assert.ok(!blobs.includes(digest.slice(7)), `blob ${digest} is not stored`);
  const ingest = readdirSync(join(h.dataRoot, 'content/ingest'));
  if (opts.keptPrefix) {
    assert.ok(ingest.includes(`partial-${digest.slice(7)}`), `the prefix of ${digest} is kept: ${ingest.join(' ')}`);
    assert.ok(ingest.every((n) => /^partial-[0-9a-f]{64}$/.test(n)), `only download prefixes in the ingest area: ${ingest.join(' ')}`);
  } else assert.deepEqual(ingest, [], 'no ingest files left');
  assert.deepEqual(readdirSync(join(h.dataRoot, 'layers')).filter((n) => n.startsWith('tmp-')), [], 'no temporary layer dirs left');
}

/** A two-layer image whose second layer is ~3 MB of random data (gzip cannot shrink it). */
async function pushBigImage(repo: string): Promise<{ layer: string; config: string; base: string }> {
  const base = tarDir(rootfs(`${repo.replace(/\W/g, '_')}-base`, {}, true));
  const bigDir = join(tmp, `${repo.replace(/\W/g, '_')}-big`);
  mkdirSync(bigDir, { recursive: true });
  writeFileSync(join(bigDir, 'big.bin'), randomBytes(3 << 20));
  const big = tarDir(bigDir);
  const gz = execFileSync('gzip', ['-c', '-1'], { input: big, maxBuffer: 64 << 20 });
  const r = await pushRawImage(direct, repo, 'v1', [
    { bytes: base, mediaType: 'application/vnd.oci.image.layer.v1.tar', diffId: sha256(base) },
    { bytes: gz, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', diffId: sha256(big) },
  ]);
  return { layer: sha256(gz), config: r.configDigest, base: sha256(base) };
}

test('a zstd layer (and a gzip one above it) is pulled, verified, unpacked and runs', { skip }, async () => {
  const l1 = tarDir(rootfs('zstd-l1', { 'hello.txt': 'hello from zstd\n' }, true));
  const l1z = execFileSync('zstd', ['-q', '-c', '-3'], { input: l1, maxBuffer: 64 << 20 });
  assert.equal(l1z.readUInt32LE(0), 0xfd2fb528, 'zstd frame magic');
  const l2 = tarDir(rootfs('zstd-l2', { 'world.txt': 'and gzip\n' }, false));
  const l2g = execFileSync('gzip', ['-c'], { input: l2 });
  const { manifestDigest } = await pushRawImage(direct, 'zstd/app', 'v1', [
    { bytes: l1z, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', diffId: sha256(l1) },
    { bytes: l2g, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', diffId: sha256(l2) },
  ]);
  const name = `${via}/zstd/app:v1`;
  const pull = await cli(['pull', name]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`Digest: ${manifestDigest}`));
  const img = await inspect(name);
  assert.deepEqual(img.RootFS.Layers, [sha256(l1), sha256(l2)], 'diff IDs are of the decompressed tars');
  // the compressed blob is stored as fetched (its digest verified), so it can be pushed back as is
  assert.ok(existsSync(join(h.dataRoot, 'content/blobs/sha256', sha256(l1z).slice(7))));
  const run = await cli(['run', '--rm', name, '/bin/busybox', 'cat', '/hello.txt', '/world.txt']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'hello from zstd\nand gzip\n');

  // save | load keeps the zstd layer and its media type
  const file = join(tmp, 'zstd.tar');
  await cliOk(['save', '-o', file, name]);
  await cliOk(['rmi', name]);
  const load = await cli(['load', '-i', file]);
  assert.equal(load.code, 0, load.stderr);
  const run2 = await cli(['run', '--rm', name, '/bin/busybox', 'cat', '/hello.txt']);
  assert.equal(run2.stdout, 'hello from zstd\n', run2.stderr);
  await cliOk(['rmi', name]);
});

test('a corrupt zstd layer with a correct digest is rejected and nothing is kept', { skip }, async () => {
  const good = execFileSync('zstd', ['-q', '-c'], { input: tarDir(rootfs('zstd-bad', { 'x.txt': 'x'.repeat(50_000) }, false)) });
  const bad = Buffer.concat([good.subarray(0, 40), randomBytes(2000)]);
  await pushRawImage(direct, 'zstd/bad', 'v1', [{ bytes: bad, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', diffId: sha256(Buffer.from('whatever')) }]);
  const r = await cli(['pull', `${via}/zstd/bad:v1`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /zstd/);
  assertNothingPartial(sha256(bad));
  assert.equal((await cli(['image', 'inspect', `${via}/zstd/bad:v1`])).code, 1);
});

test('push: chunked upload above the chunk size, then a cross-repository mount; pulls back identical', { skip }, async () => {
  const src = `${via}/src/bb:1`;
  const dst = `${via}/dst/bb:1`;
  await cliOk(['tag', 'busybox', src]);
  const img = await inspect(src);
  const manifest = JSON.parse(execFileSync('cat', [join(h.dataRoot, 'content/blobs/sha256', (await manifestDigestOf('busybox')).slice(7))], { encoding: 'utf8' }));
  const layer: { digest: string; size: number } = manifest.layers[0];
  assert.ok(layer.size > 2 * CHUNK, `busybox layer (${layer.size} bytes) spans several chunks`);

  const before = proxy.requests.length;
  const push1 = await cli(['push', src]);
  assert.equal(push1.code, 0, push1.stderr);
  assert.match(push1.stdout, new RegExp(`${layer.digest.slice(7, 19)}: Pushed`));
  const d1 = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push1.stdout)?.[1];
  assert.ok(d1, push1.stdout);
  const patches = proxy.requests.slice(before).filter((r) => r.method === 'PATCH' && r.url.startsWith('/v2/src/bb/blobs/uploads/'));
  assert.equal(patches.length, Math.ceil(layer.size / CHUNK), 'one PATCH per chunk');
  assert.ok(patches.every((p) => p.status === 202));
  assert.ok(proxy.requests.slice(before).some((r) => r.method === 'PUT' && r.url.includes(`digest=${encodeURIComponent(layer.digest)}`) && r.status === 201), 'closing PUT ?digest=');

  // the same blobs in another repository of the registry: mounted, not uploaded again
  const mark = proxy.requests.length;
  await cliOk(['tag', 'busybox', dst]);
  const push2 = await cli(['push', dst]);
  assert.equal(push2.code, 0, push2.stderr);
  assert.match(push2.stdout, new RegExp(`${layer.digest.slice(7, 19)}: Mounted from src/bb`));
  const mounts = proxy.matching('POST', /^\/v2\/dst\/bb\/blobs\/uploads\/\?mount=/).filter((r) => proxy.requests.indexOf(r) >= mark);
  assert.ok(mounts.length >= 1 && mounts.every((m) => m.status === 201), JSON.stringify(mounts));
  assert.equal(proxy.requests.slice(mark).filter((r) => r.method === 'PATCH' || (r.method === 'PUT' && r.url.includes('/blobs/'))).length, 0, 'no blob bytes uploaded');
  const d2 = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push2.stdout)?.[1];
  assert.equal(d2, d1, 'same manifest digest in both repositories');

  // the registry serves byte-identical blobs under the pushed digests
  const got = Buffer.from(await (await fetch(`${direct}/v2/dst/bb/blobs/${layer.digest}`)).arrayBuffer());
  assert.equal(sha256(got), layer.digest);

  // the API's push stream for a third repository: Docker's messages in Docker's order
  await cliOk(['tag', 'busybox', `${via}/api/bb:2`]);
  const auth = Buffer.from('{}').toString('base64');
  const msgs = await apiStream(`/images/${encodeURIComponent(`${via}/api/bb`)}/push?tag=2`, { 'X-Registry-Auth': auth });
  assert.ok(!msgs.some((m) => m['error']), JSON.stringify(msgs));
  const lid = layer.digest.slice(7, 19);
  const steps = msgs.filter((m) => m['id'] === lid).map((m) => String(m['status']));
  assert.equal(steps[0], 'Preparing');
  assert.match(steps[steps.length - 1]!, /^Mounted from (src|dst)\/bb$/, steps.join(' | '));
  const st = msgs.map((m) => String(m['status'] ?? ''));
  assert.match(st[0]!, /^The push refers to repository \[127\.0\.0\.1:\d+\/api\/bb\]$/);
  assert.match(st[st.length - 2]!, new RegExp(`^2: digest: ${d1} size: \\d+$`));
  assert.deepEqual((msgs[msgs.length - 1]!['aux'] as { Tag: string; Digest: string }).Digest, d1);
  await cliOk(['rmi', `${via}/api/bb:2`]);

  // pull back into an empty store: same image id and digests
  await cliOk(['rmi', src, dst, 'busybox']);
  const pull = await cli(['pull', dst]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`Digest: ${d1}`));
  const back = await inspect(dst);
  assert.equal(back.Id, img.Id);
  assert.deepEqual(back.RepoDigests, [`${via}/dst/bb@${d1}`]);
  await cliOk(['tag', dst, 'busybox:latest']);
  await cliOk(['rmi', dst]);
});

/** POST to the daemon's API and collect the JSON message stream. */
async function apiStream(path: string, headers: Record<string, string> = {}): Promise<Record<string, unknown>[]> {
  const { body } = await rawRequest(h, 'POST', path, undefined, { headers, timeoutMs: 120_000 });
  return body.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function manifestDigestOf(ref: string): Promise<string> {
  // the engine's image record names the manifest blob
  const id = (await inspect(ref)).Id;
  const rec = JSON.parse(readFileSync(join(h.dataRoot, 'metadata/images', `${id.slice(7)}.json`), 'utf8'));
  return rec.manifestDigest;
}

test('push progress over the API: each uploaded blob reports its full size once, in chunks as monolithic', { skip }, async () => {
  // a fresh layer (random bytes) spanning several chunks, so it is uploaded, not mounted
  const tar = tarDir(rootfs('progress-once', { 'r.bin': randomBytes(3 * CHUNK) }, false));
  const name = `${via}/progress/once`;
  await h.cliOk(['import', '-', `${name}:1`], { input: tar });
  const msgs = await apiStream(`/images/${encodeURIComponent(name)}/push?tag=1`, { 'X-Registry-Auth': Buffer.from('{}').toString('base64') });
  assert.ok(!msgs.some((m) => m['error']), JSON.stringify(msgs));
  const pushed = msgs.filter((m) => m['status'] === 'Pushed').map((m) => String(m['id']));
  assert.equal(pushed.length, 1, JSON.stringify(msgs));
  const done = msgs.filter((m) => {
    const d = m['progressDetail'] as { current?: number; total?: number } | undefined;
    return m['status'] === 'Pushing' && m['id'] === pushed[0] && d?.current !== undefined && d.current === d.total;
  });
  assert.equal(done.length, 1, `one 100 % Pushing message: ${JSON.stringify(done)}`);
  await cliOk(['rmi', `${name}:1`]);
});

test('an interrupted download leaves nothing partial visible; the next pull resumes it (Range) and succeeds', { skip }, async () => {
  const { layer, base } = await pushBigImage('cut/app');
  const name = `${via}/cut/app:v1`;
  // the big layer is cut while the base layer is still (slowly) downloading: the error shown is
  // the cut, not the cancellation it causes for the other layer
  proxy.rules = [
    { method: 'GET', path: new RegExp(`/blobs/${layer}$`), action: 'cut', afterBytes: 1 << 20, times: 1 },
    { method: 'GET', path: new RegExp(`/blobs/${base}$`), action: 'slow', afterBytes: 128 * 1024, times: 1 },
  ];
  const r = await cli(['pull', name]);
  proxy.rules = [];
  assert.equal(r.code, 1);
  assert.match(r.stderr, /fetching blob sha256:[0-9a-f]+: (unexpected EOF|transfer interrupted)/);
  assertNothingPartial(layer, { keptPrefix: true });
  assert.equal((await cli(['image', 'inspect', name])).code, 1);
  const kept = statSync(join(h.dataRoot, 'content/ingest', `partial-${layer.slice(7)}`)).size;
  assert.ok(kept > 0 && kept <= 1 << 20, `kept ${kept} bytes of the cut download`);

  // the second pull goes through the API to check Docker's progress messages too
  const gets = proxy.count('GET', new RegExp(`/blobs/${layer}$`));
  const msgs = await apiStream(`/images/create?fromImage=${encodeURIComponent(`${via}/cut/app`)}&tag=v1`);
  assert.ok(!msgs.some((m) => m['error']), JSON.stringify(msgs));
  assert.equal(proxy.count('GET', new RegExp(`/blobs/${layer}$`)), gets + 1);
  // the real registry answered the resume with 206 and only the rest
  const resumed = proxy.matching('GET', new RegExp(`/blobs/${layer}$`)).at(-1)!;
  assert.deepEqual({ range: resumed.range, status: resumed.status }, { range: `bytes=${kept}-`, status: 206 });
  assertNothingPartial('sha256:' + '0'.repeat(64));
  const id = layer.slice(7, 19);
  const steps = msgs.filter((m) => m['id'] === id).map((m) => String(m['status']));
  const order = ['Pulling fs layer', 'Downloading', 'Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete'];
  const firstAt = order.map((st) => steps.indexOf(st));
  assert.ok(firstAt.every((n, i) => n >= 0 && (i === 0 || n > firstAt[i - 1]!)), `layer progress in Docker's order: ${steps.join(' | ')}`);
  const dl = msgs.find((m) => m['id'] === id && m['status'] === 'Downloading') as { progressDetail: { current: number; total: number } };
  assert.ok(dl.progressDetail.current > 0 && dl.progressDetail.total > dl.progressDetail.current - 1, JSON.stringify(dl));
  const dls = msgs.filter((m) => m['id'] === id && m['status'] === 'Downloading') as { progressDetail: { current: number; total: number } }[];
  assert.equal(dls[dls.length - 1]!.progressDetail.current, dls[dls.length - 1]!.progressDetail.total, 'the last Downloading update shows the whole blob');
  const tail = msgs.slice(-2).map((m) => String(m['status']));
  assert.match(tail[0]!, /^Digest: sha256:[0-9a-f]{64}$/);
  assert.equal(tail[1], `Status: Downloaded newer image for ${via}/cut/app:v1`);
  const run = await cli(['run', '--rm', name, '/bin/busybox', 'stat', '-c', '%s', '/big.bin']);
  assert.equal(run.stdout, `${3 << 20}\n`, run.stderr);
  await cliOk(['rmi', name]);
});

test('a stalled download fails with a clear error after the stall timeout', { skip }, async () => {
  const { layer } = await pushBigImage('stall/app');
  const name = `${via}/stall/app:v1`;
  proxy.rules = [{ method: 'GET', path: new RegExp(`/blobs/${layer}$`), action: 'stall', afterBytes: 512 * 1024, times: 1 }];
  const r = await cli(['pull', name]);
  proxy.rules = [];
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`fetching blob ${layer}: no data received for 2s`));
  assertNothingPartial(layer, { keptPrefix: true });
});

test('a registry that accepts the connection but never answers fails after the stall timeout', { skip }, async () => {
  const sockets = new Set<Socket>();
  const silent = createNetServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const port = (silent.address() as { port: number }).port;
    const r = await cli(['pull', `127.0.0.1:${port}/silent/app:v1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`GET http://127\\.0\\.0\\.1:${port}/v2/silent/app/manifests/v1: no response from the registry within 2s`));
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

test('concurrent pulls download each blob once; a prune during the pull does not break it', { skip }, async () => {
  const { layer, config } = await pushBigImage('conc/app');
  const name = `${via}/conc/app:v1`;
  // a dangling image whose removal asks for a garbage collection while the pulls run
  const junkDir = rootfs('junk', { 'junk.txt': randomBytes(1000).toString('hex') }, false);
  const junkTar = join(tmp, 'junk.tar');
  writeFileSync(junkTar, tarDir(junkDir));
  const junkId = (await cliOk(['import', junkTar])).trim();
  const junkLayer = (await inspect(junkId)).RootFS.Layers[0]!;

  const blobGets = (d: string) => proxy.count('GET', new RegExp(`/blobs/${d}$`));
  proxy.rules = [{ method: 'GET', path: new RegExp(`/blobs/${layer}$`), action: 'slow', afterBytes: 256 * 1024 }];
  const a = cli(['pull', name]);
  const b = cli(['pull', name]);
  await waitFor(async () => blobGets(layer) > 0);
  const prune = await cli(['image', 'prune', '-f']);
  assert.equal(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, new RegExp(`deleted: ${junkId}`));
  const [ra, rb] = await Promise.all([a, b]);
  proxy.rules = [];
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.equal(blobGets(layer), 1, 'the big layer was fetched once');
  assert.equal(blobGets(config), 1, 'the config was fetched once');
  const run = await cli(['run', '--rm', name, '/bin/busybox', 'stat', '-c', '%s', '/big.bin']);
  assert.equal(run.stdout, `${3 << 20}\n`, run.stderr);
  // the collection deferred by the pulls ran when they ended: the junk layer is gone
  const layers = readdirSync(join(h.dataRoot, 'layers'));
  assert.ok(!layers.includes(junkLayer.slice(7)), 'the pruned image\'s layer was collected');
  assert.ok(!readdirSync(join(h.dataRoot, 'content/blobs/sha256')).includes(junkId.slice(7)));
});

test('a pull whose client goes away does not fail a concurrent pull of the same layer', { skip }, async () => {
  const { layer } = await pushBigImage('gone/app');
  const name = `${via}/gone/app:v1`;
  const blobGets = () => proxy.count('GET', new RegExp(`/blobs/${layer}$`));
  proxy.rules = [{ method: 'GET', path: new RegExp(`/blobs/${layer}$`), action: 'slow', afterBytes: 128 * 1024 }];
  // pull A owns the transfer; its client is killed midway
  const a = spawn(process.execPath, [h.cliEntry, '-H', h.host, 'pull', name], { stdio: 'ignore' });
  const aExit = new Promise((r) => a.once('exit', r));
  await waitFor(async () => blobGets() > 0);
  const b = cli(['pull', name]);
  // B is waiting on A's transfer once the daemon has its manifest request
  await waitFor(async () => proxy.count('GET', /\/gone\/app\/manifests\/v1$/) >= 2);
  a.kill('SIGKILL');
  await aExit;
  const rb = await b;
  proxy.rules = [];
  assert.equal(rb.code, 0, rb.stderr);
  assert.equal(blobGets(), 2, 'B fetched the layer again after A was cancelled');
  const run = await cli(['run', '--rm', name, '/bin/busybox', 'stat', '-c', '%s', '/big.bin']);
  assert.equal(run.stdout, `${3 << 20}\n`, run.stderr);
});

test('GET /system/df reports real sizes: layers once, shared image sizes, containers per image, volume contents', { skip }, async () => {
  await cliOk(['volume', 'create', 'dfvol']);
  const w = await cli(['run', '--rm', '-v', 'dfvol:/data', 'busybox', 'sh', '-c', 'head -c 100000 /dev/zero > /data/f']);
  assert.equal(w.code, 0, w.stderr);
  await cliOk(['create', '--name', 'dfc', 'busybox', 'true']);
  await cliOk(['commit', 'dfc', 'dfcommit:1']);
  try {
    const df = JSON.parse((await rawRequest(h, 'GET', '/system/df')).body) as { LayersSize: number; Images: { Id: string; Size: number; SharedSize: number; Containers: number }[]; Volumes: { Name: string; UsageData: { Size: number; RefCount: number } }[] };
    const layerDirs = readdirSync(join(h.dataRoot, 'layers')).filter((n) => /^[0-9a-f]{64}$/.test(n));
    const onDisk = layerDirs.reduce((a, n) => a + (JSON.parse(readFileSync(join(h.dataRoot, 'layers', n, 'layer.json'), 'utf8')) as { size: number }).size, 0);
    assert.equal(df.LayersSize, onDisk, 'every unpacked layer counted once');
    const bbId = (await inspect('busybox')).Id;
    const commitId = (await inspect('dfcommit:1')).Id;
    const bb = df.Images.find((i) => i.Id === bbId)!;
    const committed = df.Images.find((i) => i.Id === commitId)!;
    assert.equal(bb.Containers, 1, 'dfc uses busybox');
    assert.equal(committed.Containers, 0);
    assert.ok(bb.SharedSize > 0 && bb.SharedSize === bb.Size, `busybox's only layer is shared with dfcommit (${bb.SharedSize}/${bb.Size})`);
    assert.equal(committed.SharedSize, bb.Size);
    const vol = df.Volumes.find((v) => v.Name === 'dfvol')!;
    assert.equal(vol.UsageData.Size, 100000);
    assert.equal(vol.UsageData.RefCount, 0);
    const text = await cliOk(['system', 'df']);
    assert.match(text, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/m);
    assert.match(text, /^Local Volumes\s+\d+\s+0\s+100kB/m);
  } finally {
    await cliOk(['rm', 'dfc']);
    await cliOk(['rmi', 'dfcommit:1']);
    await cliOk(['volume', 'rm', 'dfvol']);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { isKind } from '../base/errors.js';
import { hostArchitecture } from '../oci/index.js';
import { listTar, makeTar } from '../snapshot/test-helpers.js';
import { Readable } from 'node:stream';
import { loadImages, saveImages } from './archive.js';
import { LocalImageService } from './local-image-service.js';
import { pullImage, registryClients } from './pull.js';
import { parseNormalizedNamed } from '../oci/index.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Fixture {
  layer: Buffer;
  diffId: string;
  config: Buffer;
  manifest: Buffer;
}

async function fixture(arch = hostArchitecture()): Promise<Fixture> {
  const tar = await makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/hostname', content: 'box' },
    { name: 'data', content: 'y'.repeat(200_000) },
  ]);
  const layer = gzipSync(tar);
  const diffId = sha(tar);
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
  }));
  return { layer, diffId, config, manifest };
}

/** An image of one layer made of `tar` (gzipped or not), whose config names `diffId` (default: the tar's). */
function fixtureOf(tar: Buffer, opts: { gzip: boolean; diffId?: string }): Fixture {
  const layer = opts.gzip ? gzipSync(tar) : tar;
  const diffId = opts.diffId ?? sha(tar);
  const config = Buffer.from(JSON.stringify({ architecture: hostArchitecture(), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: `application/vnd.oci.image.layer.v1.tar${opts.gzip ? '+gzip' : ''}`, digest: sha(layer), size: layer.length }],
  }));
  return { layer, diffId, config, manifest };
}

type LayerMode = 'ok' | 'corrupt' | 'truncate' | 'stall';

/** A fake registry serving one image as `<repo>:latest`; the layer blob is served per `mode`. */
async function fakeRegistry(f: Fixture, repo: string, mode: LayerMode, extra: Map<string, { type: string; body: Buffer }> = new Map(), opts: { honorRange?: boolean } = {}): Promise<{ server: Server; port: number; hits: string[]; ranges: string[] }> {
  const hits: string[] = [];
  const ranges: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    hits.push(url);
    if (req.headers.range) ranges.push(req.headers.range);
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (opts.honorRange && range && url === `/v2/${repo}/blobs/${sha(f.layer)}` && mode === 'ok') {
      const from = Number(range[1]);
      res.writeHead(206, { 'content-length': String(f.layer.length - from), 'content-range': `bytes ${from}-${f.layer.length - 1}/${f.layer.length}` });
      res.end(f.layer.subarray(from));
      return;
    }
    const x = extra.get(url);
    if (x) {
      res.writeHead(200, { 'content-type': x.type, 'content-length': String(x.body.length) });
      res.end(x.body);
    } else if (url === `/v2/${repo}/manifests/latest`) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': sha(f.manifest) });
      res.end(f.manifest);
    } else if (url === `/v2/${repo}/blobs/${sha(f.config)}`) {
      res.writeHead(200, { 'content-length': String(f.config.length) });
      res.end(f.config);
    } else if (url === `/v2/${repo}/blobs/${sha(f.layer)}`) {
      res.writeHead(200, { 'content-length': String(f.layer.length) });
      if (mode === 'ok') res.end(f.layer);
      else if (mode === 'corrupt') {
        const bad = Buffer.from(f.layer);
        bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff;
        res.end(bad);
      } else {
        res.write(f.layer.subarray(0, f.layer.length >> 1));
        if (mode === 'truncate') setTimeout(() => res.socket?.destroy(), 20);
        // 'stall': keep the connection open, send nothing more
      }
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"NOT_FOUND","message":"not found"}]}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, hits, ranges };
}

async function withSvc(fn: (svc: LocalImageService, root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'berth-pull-'));
  const svc = new LocalImageService({ root });
  await svc.init();
  try {
    await fn(svc, root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function drain(it: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const m of it) out.push(m);
  return out;
}

/**
 * Nothing half-written may be visible: no layer blob, no temp layer dirs, and no ingest files but
 * (with `keptPrefix`) the private prefix of the cut download, kept for a resume.
 */
async function assertNoPartial(svc: LocalImageService, root: string, f: Fixture, opts: { keptPrefix?: boolean } = {}): Promise<void> {
  assert.equal(await svc.content.has(sha(f.layer)), false, 'layer blob must not be stored');
  assert.equal(svc.layers.get(f.diffId), undefined, 'layer must not be committed');
  assert.deepEqual(await readdir(join(root, 'content', 'ingest')), opts.keptPrefix ? [`partial-${sha(f.layer).slice(7)}`] : []);
  const layers = await readdir(join(root, 'layers')).catch(() => [] as string[]);
  assert.deepEqual(layers, []);
}


/** Run `fn` against a fake registry made from `args`, closing it (and its connections) afterwards. */
async function withRegistry<T>(args: Parameters<typeof fakeRegistry>, fn: (reg: Awaited<ReturnType<typeof fakeRegistry>>) => Promise<T>): Promise<T> {
  const reg = await fakeRegistry(...args);
  try {
    return await fn(reg);
  } finally {
    reg.server.closeAllConnections();
    reg.server.close();
  }
}

test('one-pass pull stores the verified blob and the unpacked layer', async () => {
  const f = await fixture();
  await withRegistry([f, 'ns/app', 'ok'], async (reg) => {
    await withSvc(async (svc) => {
      const msgs = await drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/app`));
      assert.ok(msgs.some((m) => (m as { status?: string }).status === 'Pull complete'));
      assert.ok(await svc.content.has(sha(f.layer)));
      assert.equal(svc.layers.get(f.diffId)?.diffId, f.diffId);
      // the layer blob was downloaded exactly once
      assert.equal(reg.hits.filter((h) => h.endsWith(sha(f.layer))).length, 1);
    });
  });
});

test('a corrupt layer blob leaves neither blob nor layer', async () => {
  const f = await fixture();
  await withRegistry([f, 'ns/app', 'corrupt'], async (reg) => {
    await withSvc(async (svc, root) => {
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/app`)), (err: Error) => {
        assert.match(err.message, /filesystem layer verification failed for digest sha256:[0-9a-f]{64}: digest mismatch/);
        return true;
      });
      await assertNoPartial(svc, root, f);
    });
  });
});

test('a truncated transfer fails clearly and stores nothing', async () => {
  const f = await fixture();
  await withRegistry([f, 'ns/app', 'truncate'], async (reg) => {
    await withSvc(async (svc, root) => {
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/app`)), (err: Error) => {
        assert.match(err.message, /fetching blob sha256:[0-9a-f]{64}: (transfer interrupted|unexpected EOF)/);
        assert.ok(isKind(err, 'unavailable'));
        return true;
      });
      await assertNoPartial(svc, root, f, { keptPrefix: true });
    });
  });
});

test('a stalled transfer fails after the idle timeout and stores nothing', async () => {
  const f = await fixture();
  await withRegistry([f, 'ns/app', 'stall'], async (reg) => {
    await withSvc(async (svc, root) => {
      const t0 = Date.now();
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/app`, { idleTimeoutMs: 300 })), (err: Error) => {
        assert.match(err.message, /no data received/);
        assert.ok(isKind(err, 'deadline-exceeded'));
        return true;
      });
      assert.ok(Date.now() - t0 < 10_000);
      await assertNoPartial(svc, root, f, { keptPrefix: true });
    });
  });
});

test('a cut download of a compressed layer keeps its prefix privately; the next pull asks only for the rest (Range) and completes', async () => {
  for (const gzip of [true]) {
    const tar = await makeTar([{ name: 'etc/', type: 'directory' }, { name: 'rand', content: createHash('sha512').update(String(gzip)).digest().toString('hex').repeat(4000) }]);
    const f = fixtureOf(tar, { gzip });
    await withSvc(async (svc, root) => {
      await withRegistry([f, 'ns/app', 'truncate'], async (cut) => {
        await assert.rejects(drain(pullImage(svc, `127.0.0.1:${cut.port}/ns/app`)), /fetching blob/);
      });
      await assertNoPartial(svc, root, f, { keptPrefix: true });
      const kept = (await stat(join(root, 'content', 'ingest', `partial-${sha(f.layer).slice(7)}`))).size;
      assert.ok(kept > 0 && kept < f.layer.length, `kept ${kept} of ${f.layer.length}`);

      await withRegistry([f, 'ns/app', 'ok', new Map(), { honorRange: true }], async (reg) => {
        await drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/app`));
        assert.deepEqual(reg.ranges, [`bytes=${kept}-`], `gzip=${gzip}: only the rest was asked for`);
        assert.ok(await svc.content.has(sha(f.layer)));
        assert.equal(svc.layers.get(f.diffId)?.diffId, f.diffId);
        assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
      });
    });
  }
});

test('a plain-tar layer is written once: no blob file, a tar-split recipe rebuilds the exact blob; a cut download starts over', async () => {
  const tar = await makeTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/a', content: 'x'.repeat(70_000) }, { name: `${'long/'.repeat(30)}f`, content: 'deep' }]);
  const f = fixtureOf(tar, { gzip: false });
  await withSvc(async (svc, root) => {
    await withRegistry([f, 'ns/app', 'truncate'], async (cut) => {
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${cut.port}/ns/app`)), /fetching blob/);
    });
    // nothing kept: such a download is not resumed
    await assertNoPartial(svc, root, f);
    await withRegistry([f, 'ns/app', 'ok', new Map(), { honorRange: true }], async (reg) => {
      await drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/app`));
      assert.deepEqual(reg.ranges, [], 'started over');
    });
    const digest = sha(f.layer);
    assert.equal(await svc.content.hasFile(digest), false, 'no blob file');
    assert.ok(await svc.content.has(digest));
    assert.equal(await svc.content.blobSize(digest), f.layer.length);
    assert.equal(svc.layers.get(f.diffId)?.tarSplit?.digest, digest);
    const back: Buffer[] = [];
    for await (const c of svc.content.openBlob(digest)) back.push(c as Buffer);
    assert.ok(Buffer.concat(back).equals(f.layer), 'the rebuilt blob is the pulled one');
    const mid: Buffer[] = [];
    for await (const c of svc.content.openBlob(digest, { start: 100, end: 5000 })) mid.push(c as Buffer);
    assert.ok(Buffer.concat(mid).equals(f.layer.subarray(100, 5000)));
    // the image's blobs survive garbage collection (the recipe lives with the layer)
    await svc.prune({});
    assert.ok(await svc.content.has(digest));
  });
});

test('a plain-tar layer that rewrites its own file cannot be a recipe: it is fetched again and its blob kept', async () => {
  const tar = await makeTar([{ name: 'f', content: 'first' }, { name: 'f', content: 'second, longer' }]);
  const f = fixtureOf(tar, { gzip: false });
  await withSvc(async (svc) => {
    await withRegistry([f, 'ns/app', 'ok'], async (reg) => {
      await drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/app`));
      assert.equal(reg.hits.filter((h) => h.includes('/blobs/' + sha(f.layer))).length, 2, JSON.stringify(reg.hits));
    });
    assert.ok(await svc.content.hasFile(sha(f.layer)));
    assert.equal(svc.layers.get(f.diffId)?.tarSplit, undefined);
  });
});

test('a resumed download restarts when the registry ignores Range, and a bad prefix is not kept', async () => {
  const f = await fixture();
  await withSvc(async (svc, root) => {
    await withRegistry([f, 'ns/app', 'truncate'], async (cut) => {
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${cut.port}/ns/app`)), /fetching blob/);
    });
    // a corrupted prefix: the resumed transfer fails verification and the prefix is dropped
    const partial = join(root, 'content', 'ingest', `partial-${sha(f.layer).slice(7)}`);
    const kept = await readFile(partial);
    await writeFile(partial, Buffer.concat([kept.subarray(0, kept.length - 1), Buffer.from([kept[kept.length - 1]! ^ 0xff])]));
    await withRegistry([f, 'ns/app', 'ok', new Map(), { honorRange: true }], async (resumed) => {
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${resumed.port}/ns/app`)), /verification failed|invalid tar|incorrect header|digest mismatch/);
      assert.deepEqual(resumed.ranges, [`bytes=${kept.length}-`]);
    });
    await assertNoPartial(svc, root, f);

    // cut again, then a registry that answers a Range request with the whole blob (200)
    await withRegistry([f, 'ns/app', 'truncate'], async (cut2) => {
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${cut2.port}/ns/app`)), /fetching blob/);
    });
    await withRegistry([f, 'ns/app', 'ok'], async (whole) => {
      await drain(pullImage(svc, `127.0.0.1:${whole.port}/ns/app`));
      assert.equal(whole.ranges.length, 1, 'the rest was asked for');
      assert.ok(await svc.content.has(sha(f.layer)));
      assert.equal(svc.layers.get(f.diffId)?.diffId, f.diffId);
      assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
    });
  });
});

test('an uncompressed layer: its DiffID is the verified blob digest; a config naming another diff ID keeps nothing', async () => {
  const tar = await makeTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/motd', content: 'hi' }, { name: 'big', content: 'z'.repeat(300_000) }]);
  const good = fixtureOf(tar, { gzip: false });
  let reg = await fakeRegistry(good, 'ns/plain', 'ok');
  try {
    await withSvc(async (svc, root) => {
      await drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/plain`));
      assert.equal(good.diffId, sha(good.layer));
      assert.equal(svc.layers.get(good.diffId)?.diffId, good.diffId);
      assert.equal(svc.layers.get(good.diffId)?.size, 300_002);
      assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
    });
  } finally {
    reg.server.closeAllConnections();
    reg.server.close();
  }
  const lying = fixtureOf(tar, { gzip: false, diffId: `sha256:${'e'.repeat(64)}` });
  reg = await fakeRegistry(lying, 'ns/plain', 'ok');
  try {
    await withSvc(async (svc, root) => {
      await assert.rejects(drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/plain`)), (err: Error) => {
        assert.match(err.message, /uncompressed content sha256:[0-9a-f]{64} does not match the config's diff ID sha256:e{64}/);
        return true;
      });
      await assertNoPartial(svc, root, lying);
    });
  } finally {
    reg.server.closeAllConnections();
    reg.server.close();
  }
});

test('a hostile layer (a ".." entry; a write through a symlink) fails the pull and writes nothing outside', async () => {
  const cases: Array<{ name: string; entries: Parameters<typeof makeTar>[0]; error: RegExp }> = [
    { name: 'dotdot', entries: [{ name: 'ok', content: 'x' }, { name: '../../escaped', content: 'x' }], error: /path contains "\.\."/ },
    { name: 'symlink', entries: [{ name: 'link', type: 'symlink', linkname: '/tmp' }, { name: 'link/escaped', content: 'x' }], error: /is a symlink \(would write outside the layer\)/ },
  ];
  for (const c of cases) {
    for (const gzip of [false, true]) {
      const f = fixtureOf(await makeTar(c.entries), { gzip });
      await withRegistry([f, 'ns/evil', 'ok'], async (reg) => {
        await withSvc(async (svc, root) => {
          await assert.rejects(drain(pullImage(svc, `127.0.0.1:${reg.port}/ns/evil`)), (err: Error) => {
            assert.match(err.message, c.error, `${c.name} gzip=${gzip}`);
            return true;
          });
          await assertNoPartial(svc, root, f);
          for (const p of [join(root, 'layers', 'escaped'), join(root, 'escaped'), join('/tmp', 'escaped')]) {
            await assert.rejects(stat(p), `${c.name}: nothing written at ${p}`);
          }
        });
      });
    }
  }
});

test('registry mirrors are tried first for docker.io images', async () => {
  const f = await fixture();
  await withRegistry([f, 'library/app', 'ok'], async (reg) => {
    await withSvc(async (svc) => {
      await drain(pullImage(svc, 'app', { registryMirrors: [`http://127.0.0.1:${reg.port}`] }));
      assert.ok(reg.hits.includes('/v2/library/app/manifests/latest'));
      assert.ok(svc.layers.get(f.diffId));
    });
  });
  const cs = registryClients(parseNormalizedNamed('app'), { registryMirrors: ['mirror.example:5000'] });
  assert.deepEqual(cs.map((c) => c.base), ['https://mirror.example:5000', 'https://registry-1.docker.io']);
  // mirrors apply to docker.io only
  assert.deepEqual(registryClients(parseNormalizedNamed('quay.io/x/y'), { registryMirrors: ['https://m'] }).map((c) => c.base), ['https://quay.io']);
  // insecure registries use plain HTTP
  assert.equal(registryClients(parseNormalizedNamed('reg.lan:5000/x'), { insecureRegistries: ['reg.lan:5000'] })[0]!.base, 'http://reg.lan:5000');
  assert.equal(registryClients(parseNormalizedNamed('reg.lan:5000/x'), {})[0]!.base, 'https://reg.lan:5000');
});

test('pull -a pulls every tag; --platform selects from an index', async () => {
  const f = await fixture();
  const other = await fixture('s390x');
  const mt = 'application/vnd.oci.image.manifest.v1+json';
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: mt, digest: sha(f.manifest), size: f.manifest.length, platform: { os: 'linux', architecture: hostArchitecture() } },
      { mediaType: mt, digest: sha(other.manifest), size: other.manifest.length, platform: { os: 'linux', architecture: 's390x' } },
    ],
  }));
  const extra = new Map<string, { type: string; body: Buffer }>([
    ['/v2/ns/app/tags/list?n=1000', { type: 'application/json', body: Buffer.from(JSON.stringify({ name: 'ns/app', tags: ['v1', 'latest'] })) }],
    ['/v2/ns/app/manifests/v1', { type: mt, body: f.manifest }],
    ['/v2/ns/app/manifests/multi', { type: 'application/vnd.oci.image.index.v1+json', body: index }],
    [`/v2/ns/app/manifests/${sha(f.manifest)}`, { type: mt, body: f.manifest }],
    [`/v2/ns/app/manifests/${sha(other.manifest)}`, { type: mt, body: other.manifest }],
    [`/v2/ns/app/blobs/${sha(other.config)}`, { type: 'application/octet-stream', body: other.config }],
  ]);
  const reg = await fakeRegistry(f, 'ns/app', 'ok', extra);
  const name = `127.0.0.1:${reg.port}/ns/app`;
  try {
    await withSvc(async (svc) => {
      await assert.rejects(drain(pullImage(svc, `${name}:v1`, { allTags: true })), /can't be used with --all-tags/);
      const msgs = (await drain(pullImage(svc, name, { allTags: true }))) as Array<{ status?: string }>;
      assert.equal(msgs.at(-1)?.status, `Status: Downloaded newer image for ${name}`);
      assert.equal(msgs.filter((m) => m.status?.startsWith('Status:')).length, 1);
      const a = svc.findImage(`${name}:latest`);
      const b = svc.findImage(`${name}:v1`);
      assert.equal(a.id, b.id);
      // the shared layer was fetched once
      assert.equal(reg.hits.filter((h) => h.endsWith(sha(f.layer))).length, 1);

      await drain(pullImage(svc, `${name}:multi`, { platform: 'linux/s390x' }));
      assert.equal(svc.findImage(`${name}:multi`).config.architecture, 's390x');
      await assert.rejects(drain(pullImage(svc, `${name}:multi`, { platform: 'linux/mips64le' })), /no matching manifest for linux\/mips64le/);
    });
  } finally {
    reg.server.closeAllConnections();
    reg.server.close();
  }
});

test('the image service applies daemon registry settings to pulls', async () => {
  const f = await fixture();
  const reg = await fakeRegistry(f, 'library/app', 'ok');
  const root = await mkdtemp(join(tmpdir(), 'berth-pull-'));
  try {
    const svc = new LocalImageService({ root, registry: { registryMirrors: [`http://127.0.0.1:${reg.port}`] } });
    await svc.init();
    await drain(svc.pull('app:latest'));
    assert.ok(reg.hits.includes('/v2/library/app/manifests/latest'));
    assert.equal(svc.findImage('app').config.architecture, hostArchitecture());
  } finally {
    reg.server.closeAllConnections();
    reg.server.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('save --format oci writes only an OCI layout, and load reads it back', async () => {
  const f = await fixture();
  const reg = await fakeRegistry(f, 'ns/app', 'ok');
  const name = `127.0.0.1:${reg.port}/ns/app`;
  try {
    await withSvc(async (svc) => {
      await drain(pullImage(svc, name));
      const img = svc.findImage(name);
      assert.throws(() => saveImages(svc, [name], { format: 'zip' as 'oci' }), /unsupported save format/);
      const tar = await streamToBuffer(saveImages(svc, [name], { format: 'oci' }));
      const entries = await listTar(tar);
      const names = entries.map((e) => e.name).sort();
      assert.ok(!names.includes('manifest.json') && !names.includes('repositories'));
      assert.ok(names.includes('oci-layout') && names.includes('index.json'));
      assert.ok(names.includes(`blobs/sha256/${sha(f.layer).slice(7)}`));
      const index = JSON.parse(entries.find((e) => e.name === 'index.json')!.content) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
      assert.equal(index.manifests[0]!.digest, img.manifestDigest);
      assert.equal(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], 'latest');
      // docker format still carries manifest.json
      const dockerNames = (await listTar(await streamToBuffer(saveImages(svc, [name])))).map((e) => e.name);
      assert.ok(dockerNames.includes('manifest.json'));

      await withSvc(async (other) => {
        const rep = await loadImages(other, Readable.from([tar]));
        assert.deepEqual(rep.lines, [`Loaded image: ${name}:latest`]);
        const back = other.findImage(name);
        assert.equal(back.id, img.id);
        assert.equal(back.manifestDigest, img.manifestDigest);
        assert.ok(other.layers.get(f.diffId));
      });
    });
  } finally {
    reg.server.closeAllConnections();
    reg.server.close();
  }
});

async function streamToBuffer(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';

import { isKind } from '../base/errors.js';
import { makeTar } from '../snapshot/test-helpers.js';
import { LocalImageService } from './local-image-service.js';

const isRoot = process.getuid?.() === 0;

interface Ctx {
  root: string;
  svc: LocalImageService;
  events: Array<[string, string, Record<string, string>]>;
}

async function withService(fn: (c: Ctx) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'berth-img-'));
  const events: Ctx['events'] = [];
  const svc = new LocalImageService({ root, onEvent: (a, id, attrs) => events.push([a, id, attrs]) });
  await svc.init();
  try {
    await fn({ root, svc, events });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function rootfsTar(extra = 'x'): Promise<Buffer> {
  return makeTar([
    { name: 'bin/', type: 'directory' },
    { name: 'bin/sh', content: `#!fake ${extra}`, mode: 0o755 },
    { name: 'etc/', type: 'directory' },
    { name: 'etc/hostname', content: 'box' },
  ]);
}

test('import creates a one-layer OCI image with changes and message', async () => {
  await withService(async ({ svc, events, root }) => {
    const id = await svc.import(Readable.from([gzipSync(await rootfsTar())]), {
      repo: 'myimg',
      tag: 'v1',
      message: 'hello import',
      changes: ['CMD ["/bin/sh"]', 'ENV A=1', 'LABEL team=core'],
    });
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const info = await svc.inspect('myimg:v1');
    assert.equal(info.Id, id);
    assert.deepEqual(info.RepoTags, ['myimg:v1']);
    assert.equal(info.Comment, 'hello import');
    assert.equal(info.Os, 'linux');
    const cfg = info.Config as Record<string, unknown>;
    assert.deepEqual(cfg.Cmd, ['/bin/sh']);
    assert.deepEqual(cfg.Env, ['A=1']);
    assert.deepEqual(cfg.Labels, { team: 'core' });
    const rootfs = info.RootFS as { Layers: string[] };
    assert.equal(rootfs.Layers.length, 1);
    assert.equal(info.Size, '#!fake x'.length + 'box'.length);
    // image id is the config digest, and the layer is unpacked once under layers/<chain>/diff
    const r = await svc.resolve('myimg:v1');
    assert.equal(r.layerDirs.length, 1);
    assert.equal(r.layerDirs[0], join(root, 'layers', rootfs.Layers[0]!.slice(7), 'diff'));
    assert.equal(await readFile(join(r.layerDirs[0]!, 'etc/hostname'), 'utf8'), 'box');
    assert.equal(r.ref, 'myimg:v1');
    assert.deepEqual(r.config.rootfs.diff_ids, rootfs.Layers);
    assert.deepEqual(events.map((e) => e[0]), ['import', 'tag']);
    // the same content imported again shares the layer dir
    await svc.import(Readable.from([await rootfsTar()]), { repo: 'other' });
    assert.equal((await readdir(join(root, 'layers'))).length, 1);
  });
});

test('resolve order: full id, sha256 id, name, prefix; not found wording', async () => {
  await withService(async ({ svc }) => {
    const id = await svc.import(Readable.from([await rootfsTar()]), { repo: 'busybox' });
    const hex = id.slice(7);
    assert.equal((await svc.resolve(hex)).id, id);
    assert.equal((await svc.resolve(id)).id, id);
    assert.equal((await svc.resolve('busybox')).ref, 'busybox:latest');
    assert.equal((await svc.resolve('docker.io/library/busybox:latest')).id, id);
    assert.equal((await svc.resolve(hex.slice(0, 12))).id, id);
    assert.equal((await svc.resolve(`sha256:${hex.slice(0, 8)}`)).id, id);
    await assert.rejects(svc.resolve('nope:1'), (err) => isKind(err, 'not-found') && /No such image: nope:1/.test(String(err)));
    await assert.rejects(svc.inspect('busybox:2'), /No such image: busybox:2/);
  });
});

test('list shapes and filters', async () => {
  await withService(async ({ svc }) => {
    const a = await svc.import(Readable.from([await rootfsTar('a')]), { repo: 'alpha', tag: '1', changes: ['LABEL k=v'] });
    await new Promise((r) => setTimeout(r, 1100));
    const b = await svc.import(Readable.from([await rootfsTar('b')]), { repo: 'localhost:5000/beta', tag: '2' });
    const c = await svc.import(Readable.from([await rootfsTar('c')]), {});
    const all = await svc.list({ all: false, filters: {} });
    assert.equal(all.length, 3);
    const item = all.find((i) => i.Id === b)!;
    assert.deepEqual(item.RepoTags, ['localhost:5000/beta:2']);
    assert.deepEqual(item.RepoDigests, []);
    assert.equal(item.SharedSize, -1);
    assert.equal(item.Containers, -1);
    assert.equal(typeof item.Created, 'number');
    assert.deepEqual((await svc.list({ all: false, filters: { dangling: ['true'] } })).map((i) => i.Id), [c]);
    assert.deepEqual((await svc.list({ all: false, filters: { reference: ['alpha'] } })).map((i) => i.Id), [a]);
    assert.deepEqual((await svc.list({ all: false, filters: { reference: ['al*:1'] } })).map((i) => i.Id), [a]);
    assert.deepEqual((await svc.list({ all: false, filters: { reference: ['localhost:5000/*'] } })).map((i) => i.Id), [b]);
    assert.deepEqual((await svc.list({ all: false, filters: { label: ['k=v'] } })).map((i) => i.Id), [a]);
    assert.deepEqual((await svc.list({ all: false, filters: { before: ['localhost:5000/beta:2'] } })).map((i) => i.Id), [a]);
    assert.ok((await svc.list({ all: false, filters: { since: ['alpha:1'] } })).every((i) => i.Id !== a));
    await assert.rejects(svc.list({ all: false, filters: { bogus: ['1'] } }), /invalid filter 'bogus'/);
  });
});

test('tag, untag by name, delete by id, conflicts', async () => {
  await withService(async ({ svc, events, root }) => {
    const id = await svc.import(Readable.from([await rootfsTar()]), { repo: 'app', tag: '1' });
    await svc.tag('app:1', 'app', '2');
    await svc.tag(id, 'registry.local:5000/team/app');
    assert.deepEqual((await svc.inspect(id)).RepoTags, ['app:1', 'app:2', 'registry.local:5000/team/app:latest']);
    await assert.rejects(svc.tag(id, 'Bad'), /must be lowercase/);
    await assert.rejects(svc.tag(id, 'x@sha256:' + 'a'.repeat(64)), /digest/);
    // by id with tags in several repositories needs force
    await assert.rejects(svc.remove(id, { force: false, noprune: false }), (e) => isKind(e, 'conflict') && /referenced in multiple repositories/.test(String(e)));
    // untag one name: image stays
    assert.deepEqual(await svc.remove('app:2', { force: false, noprune: false }), [{ Untagged: 'app:2' }]);
    // in use by a container: the last tag cannot be removed without force
    svc.setUsageChecker((img) => (img === id ? 'c'.repeat(64) : undefined));
    await svc.remove('registry.local:5000/team/app', { force: false, noprune: false });
    await assert.rejects(svc.remove('app:1', { force: false, noprune: false }), (e) => isKind(e, 'conflict') && /container cccccccccccc is using its referenced image/.test(String(e)));
    await assert.rejects(svc.remove(id, { force: false, noprune: false }), /being used by/);
    svc.setUsageChecker(() => undefined);
    const r = await svc.remove('app:1', { force: false, noprune: false });
    assert.deepEqual(r[0], { Untagged: 'app:1' });
    assert.deepEqual(r[1], { Deleted: id });
    await assert.rejects(svc.inspect(id), /No such image/);
    assert.deepEqual(await readdir(join(root, 'layers')), []);
    assert.deepEqual(await readdir(join(root, 'content', 'blobs', 'sha256')), []);
    const actions = events.map((e) => e[0]);
    assert.deepEqual(actions, ['import', 'tag', 'tag', 'tag', 'untag', 'untag', 'untag', 'delete']);
  });
});

test('state survives a restart; init drops incomplete layers', async () => {
  await withService(async ({ svc, root }) => {
    const id = await svc.import(Readable.from([await rootfsTar()]), { repo: 'keep' });
    await mkdir(join(root, 'layers', 'tmp-dead', 'diff'), { recursive: true });
    await mkdir(join(root, 'layers', 'f'.repeat(64), 'diff'), { recursive: true });
    const again = new LocalImageService({ root });
    await again.init();
    assert.equal((await again.inspect('keep')).Id, id);
    assert.equal((await readdir(join(root, 'layers'))).length, 1);
  });
});

test('a hostile layer fails the import and leaves nothing behind', async () => {
  await withService(async ({ svc, root }) => {
    const bad = await makeTar([{ name: 'ok', content: 'x' }, { name: '../../escape', content: 'x' }]);
    await assert.rejects(svc.import(Readable.from([bad]), { repo: 'bad' }), (e) => isKind(e, 'invalid-argument'));
    assert.deepEqual(await readdir(join(root, 'layers')), []);
    assert.deepEqual(await readdir(join(root, 'content', 'blobs', 'sha256')), []);
    await assert.rejects(svc.inspect('bad'), /No such image/);
    await assert.rejects(svc.import(Readable.from([await rootfsTar()]), { changes: ['RUN x'] }), /not a valid change command/);
  });
});

test('history lists the import entry', async () => {
  await withService(async ({ svc }) => {
    const id = await svc.import(Readable.from([await rootfsTar()]), { repo: 'h', message: 'msg' });
    const h = await svc.history('h');
    assert.equal(h.length, 1);
    assert.equal(h[0]!.Id, id);
    assert.deepEqual(h[0]!.Tags, ['h:latest']);
    assert.equal(h[0]!.Comment, 'msg');
    assert.ok((h[0]!.Size as number) > 0);
  });
});

test('prune removes dangling images and reports space', async () => {
  await withService(async ({ svc }) => {
    const keep = await svc.import(Readable.from([await rootfsTar('k')]), { repo: 'keep' });
    const dang = await svc.import(Readable.from([await rootfsTar('dangling')]), {});
    const r = await svc.prune({});
    assert.deepEqual(r.ImagesDeleted.filter((x) => 'Deleted' in x && String(x.Deleted) === dang).length, 1);
    assert.ok(r.SpaceReclaimed > 0);
    assert.equal((await svc.inspect('keep')).Id, keep);
    const all = await svc.prune({ dangling: ['false'] });
    assert.deepEqual(all.ImagesDeleted[0], { Untagged: 'keep:latest' });
    assert.equal((await svc.list({ all: true, filters: {} })).length, 0);
  });
});

test('prune -a with until and label filters; pruned images leave no layers or blobs behind', async () => {
  await withService(async ({ svc, root }) => {
    const a = await svc.import(Readable.from([await rootfsTar('a')]), { repo: 'a', changes: ['LABEL tier=web'] });
    const b = await svc.import(Readable.from([await rootfsTar('b')]), { repo: 'b', changes: ['LABEL tier=db'] });
    const blobsBefore = (await readdir(join(root, 'content/blobs/sha256'))).length;
    const aLayer = ((await svc.inspect('a')).RootFS as { Layers: string[] }).Layers[0]!;
    // until=1h: both were created just now, nothing is old enough
    assert.deepEqual((await svc.prune({ dangling: ['false'], until: ['1h'] })).ImagesDeleted, []);
    assert.deepEqual((await svc.prune({ dangling: ['false'], until: ['1h30m'] })).ImagesDeleted, []);
    // a label filter picks one; a timestamp in the future lets it through
    const future = new Date(Date.now() + 3600_000).toISOString();
    const r = await svc.prune({ dangling: ['false'], label: ['tier=web'], until: [future] });
    assert.deepEqual(r.ImagesDeleted, [{ Untagged: 'a:latest' }, { Deleted: a }, { Deleted: aLayer }]);
    assert.ok(r.SpaceReclaimed > 0);
    assert.equal((await svc.inspect('b')).Id, b);
    const layers = (await readdir(join(root, 'layers'))).filter((n) => /^[0-9a-f]{64}$/.test(n));
    assert.equal(layers.length, 1, 'only b\'s layer is left');
    assert.equal((await readdir(join(root, 'content/blobs/sha256'))).length, blobsBefore - 3, 'a\'s config, manifest and layer blobs are gone');
    await assert.rejects(svc.prune({ until: ['yesterday'] }), /invalid filter 'until=yesterday'/);
  });
});

test('commitFromUpper adds a layer, applies config and changes, keeps parent layers', { skip: !isRoot && 'needs root (whiteouts)' }, async () => {
  await withService(async ({ svc, root }) => {
    const base = await svc.import(Readable.from([await rootfsTar()]), { repo: 'base', changes: ['CMD ["/bin/sh"]'] });
    const upper = join(root, 'upper');
    await mkdir(join(upper, 'etc'), { recursive: true });
    await writeFile(join(upper, 'etc/new'), 'n');
    const id = await svc.commitFromUpper({
      upperDir: upper,
      parentId: base,
      containerConfig: { Cmd: ['/bin/run'], Env: ['X=1'], WorkingDir: '/srv', Labels: { a: 'b' }, Image: 'base' },
      containerId: 'c'.repeat(64),
      comment: 'snap',
      author: 'me',
      changes: ['USER nobody'],
      repo: 'derived',
      tag: 't',
    });
    const info = await svc.inspect('derived:t');
    assert.equal(info.Id, id);
    assert.equal(info.Parent, base);
    assert.equal(info.Author, 'me');
    assert.equal(info.Comment, 'snap');
    const cfg = info.Config as Record<string, unknown>;
    assert.deepEqual(cfg.Cmd, ['/bin/run']);
    assert.equal(cfg.User, 'nobody');
    assert.equal(cfg.WorkingDir, '/srv');
    const r = await svc.resolve(id);
    assert.equal(r.layerDirs.length, 2);
    assert.equal(await readFile(join(r.layerDirs[1]!, 'etc/new'), 'utf8'), 'n');
    const h = await svc.history(id);
    assert.deepEqual(h.map((x) => x.Id), [id, base]);
    assert.equal(h[0]!.Comment, 'snap');
    // an empty upper still records a layer
    const empty = join(root, 'empty');
    await mkdir(empty);
    const id2 = await svc.commitFromUpper({ upperDir: empty, parentId: id, containerConfig: {}, containerId: 'd'.repeat(64) });
    assert.equal(((await svc.inspect(id2)).RootFS as { Layers: string[] }).Layers.length, 3);
    // the base is now a parent: untagged parents are hidden without all
    await svc.remove('base', { force: false, noprune: false });
    assert.ok((await svc.list({ all: false, filters: {} })).every((i) => i.Id !== base));
    assert.ok((await svc.list({ all: true, filters: {} })).some((i) => i.Id === base));
    await stat(r.layerDirs[0]!);
    await assert.rejects(svc.remove(id, { force: true, noprune: false }), /dependent child images/);
    // removing the leaf prunes its untagged parents (base), but not the tagged one
    const del = await svc.remove(id2, { force: false, noprune: false });
    assert.deepEqual(del.filter((x) => 'Deleted' in x).map((x) => x.Deleted).slice(0, 1), [id2]);
    assert.equal((await svc.inspect('derived:t')).Id, id);
    const del2 = await svc.remove('derived:t', { force: false, noprune: false });
    assert.deepEqual(del2.filter((x) => 'Deleted' in x).map((x) => x.Deleted).slice(0, 2), [id, base]);
    assert.deepEqual(await readdir(join(root, 'layers')), []);
  });
});

test('commitFromUpper ownUpper: the tree becomes the layer (moved, not unpacked again) with the same DiffID and blob a copy would give', { skip: !isRoot && 'needs root' }, async () => {
  await withService(async ({ svc, root }) => {
    const base = await svc.import(Readable.from([await rootfsTar()]), { repo: 'base' });
    const make = async (dir: string): Promise<void> => {
      await mkdir(join(dir, 'srv'), { recursive: true });
      await writeFile(join(dir, 'srv/data'), 'payload');
    };
    // the same tree committed both ways
    const copied = join(root, 'copied');
    const owned = join(root, 'owned');
    await make(copied);
    await make(owned);
    const t = new Date(1_600_000_000_000);
    const { utimes } = await import('node:fs/promises');
    for (const d of [copied, owned]) {
      await utimes(join(d, 'srv/data'), t, t);
      await utimes(join(d, 'srv'), t, t);
    }
    const moved = await svc.commitFromUpper({ upperDir: owned, parentId: base, containerConfig: {}, containerId: '', ownUpper: true });
    const viaTar = await svc.commitFromUpper({ upperDir: copied, parentId: base, containerConfig: {}, containerId: '' });
    const diffs = async (id: string): Promise<string[]> => ((await svc.inspect(id)).RootFS as { Layers: string[] }).Layers;
    assert.deepEqual(await diffs(moved), await diffs(viaTar));
    await assert.rejects(stat(owned)); // moved into the layer store
    await stat(copied); // a container's upper dir stays where it is
    const r = await svc.resolve(moved);
    assert.equal(await readFile(join(r.layerDirs[1]!, 'srv/data'), 'utf8'), 'payload');
    assert.deepEqual(r.layerOpaque, [[], []]);
    // a commit of another such tree onto an existing layer keeps the existing layer (and the tree)
    const again = join(root, 'again');
    await make(again);
    await utimes(join(again, 'srv/data'), t, t);
    await utimes(join(again, 'srv'), t, t);
    const third = await svc.commitFromUpper({ upperDir: again, parentId: base, containerConfig: {}, containerId: '', ownUpper: true });
    assert.deepEqual(await diffs(third), await diffs(viaTar));
    assert.equal((await svc.resolve(third)).layerDirs[1], r.layerDirs[1]);
    await stat(again);
  });
});

test('commitFromUpper ownUpper keeps the layer tar as a recipe: no blob file, the blob is rebuilt with its digest', { skip: !isRoot && 'needs root' }, async () => {
  await withService(async ({ svc, root }) => {
    const base = await svc.import(Readable.from([await rootfsTar()]), { repo: 'base' });
    const owned = join(root, 'owned-recipe');
    await mkdir(join(owned, 'srv/sub'), { recursive: true });
    await writeFile(join(owned, 'srv/data'), Buffer.alloc(300_000, 3));
    await writeFile(join(owned, 'srv/sub/empty'), '');
    await writeFile(join(owned, `srv/${'long'.repeat(40)}`), 'long name');
    const id = await svc.commitFromUpper({ upperDir: owned, parentId: base, containerConfig: {}, containerId: '', ownUpper: true, repo: 'built', tag: '1' });
    const layers = ((await svc.inspect(id)).RootFS as { Layers: string[] }).Layers;
    const digest = layers[1]!;
    assert.equal(await svc.content.hasFile(digest), false, 'no blob file');
    assert.ok(await svc.content.has(digest));
    const { createHash } = await import('node:crypto');
    const h = createHash('sha256');
    for await (const c of svc.content.openBlob(digest)) h.update(c as Buffer);
    assert.equal(`sha256:${h.digest('hex')}`, digest);
    // deleting the image takes the layer and its recipe with it
    await svc.remove('built:1', { force: false, noprune: false });
    assert.equal(await svc.content.has(digest), false);
  });
});

test('login to a registry listed in insecure-registries goes over plain HTTP; others over HTTPS', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-img-'));
  try {
    const seen: string[] = [];
    const fetchFn = (async (input: string | URL | Request) => {
      seen.push(String(input instanceof Request ? input.url : input));
      return new Response('{}', { status: 200, headers: { 'docker-distribution-api-version': 'registry/2.0' } });
    }) as typeof fetch;
    const svc = new LocalImageService({ root, registry: { insecureRegistries: ['reg.lan:5000'] } });
    await svc.init();
    const ok = await svc.login({ username: 'u', password: 'p', serveraddress: 'reg.lan:5000' }, { fetchFn });
    assert.equal(ok.Status, 'Login Succeeded');
    await svc.login({ username: 'u', password: 'p', serveraddress: 'secure.lan:5000' }, { fetchFn });
    assert.deepEqual(seen.map((u) => new URL(u).origin), ['http://reg.lan:5000', 'https://secure.lan:5000']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile, mkdir, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';

import { digestOf } from '../base/digest.js';
import { FsContentStore } from './content-store.js';
import { MetadataStore } from './metadata-store.js';

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'berth-store-'));
}

test('ingest stores by digest, verifies, and reads back', async () => {
  const root = await tmp();
  try {
    const cs = new FsContentStore(root);
    await cs.init();
    const data = Buffer.from('hello world');
    const d = digestOf(data);
    const r = await cs.ingest(Readable.from([data.subarray(0, 5), data.subarray(5)]), { expected: d, size: data.length });
    assert.deepEqual(r, { digest: d, size: data.length });
    assert.equal(await cs.has(d), true);
    assert.deepEqual(await cs.readBlob(d), data);
    assert.equal(await cs.blobSize(d), 11);
    // existing blob = success
    assert.deepEqual(await cs.ingest(data, { expected: d }), r);
    assert.deepEqual(await cs.list(), [d]);
    assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('big and small chunks mixed (sync: false) store the exact bytes; a second ingest keeps the stored file', async () => {
  const root = await tmp();
  try {
    const cs = new FsContentStore(root);
    await cs.init();
    const big = Buffer.alloc(600 * 1024, 7);
    const parts = [Buffer.from('head'), big, Buffer.from('mid'), Buffer.from('dle'), big, Buffer.from('tail')];
    const all = Buffer.concat(parts);
    const r = await cs.ingest(Readable.from(parts), { sync: false });
    assert.equal(r.digest, digestOf(all));
    assert.equal(r.size, all.length);
    assert.deepEqual(await cs.readBlob(r.digest), all);
    const ino = (await stat(cs.blobPath(r.digest))).ino;
    assert.deepEqual(await cs.ingest(Readable.from(parts)), r);
    assert.equal((await stat(cs.blobPath(r.digest))).ino, ino);
    assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('digest or size mismatch stores nothing', async () => {
  const root = await tmp();
  try {
    const cs = new FsContentStore(root);
    await cs.init();
    const wrong = digestOf('other');
    await assert.rejects(cs.ingest(Buffer.from('data'), { expected: wrong }), /digest mismatch/);
    await assert.rejects(cs.ingest(Buffer.from('data'), { size: 3 }), /size mismatch/);
    await assert.rejects(cs.ingest(Buffer.from('data'), { size: 5 }), /size mismatch/);
    assert.deepEqual(await cs.list(), []);
    assert.equal(await cs.has(wrong), false);
    assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
    await assert.rejects(cs.readBlob(wrong), /not found/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('init removes stale ingest files', async () => {
  const root = await tmp();
  try {
    await mkdir(join(root, 'content', 'ingest'), { recursive: true });
    await writeFile(join(root, 'content', 'ingest', 'stale'), 'x');
    const cs = new FsContentStore(root);
    // a kept download prefix survives a restart (a later pull resumes it); an old one does not
    const partial = await cs.partialPath(digestOf('p'));
    await writeFile(partial, 'prefix');
    const old = await cs.partialPath(digestOf('old'));
    await writeFile(old, 'prefix');
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    await utimes(old, dayAgo, dayAgo);
    await cs.init();
    assert.deepEqual(await readdir(join(root, 'content', 'ingest')), [basename(partial)]);
    assert.equal(await cs.has(digestOf('p')), false, 'a partial is never a blob');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('metadata store persists images and refs', async () => {
  const root = await tmp();
  try {
    const id = digestOf('cfg');
    const m = new MetadataStore(root);
    await m.init();
    await m.putImage({ id, manifestDigest: digestOf('man'), size: 3 });
    await m.setRef('docker.io/library/a:latest', id);
    await m.setRef('docker.io/library/b:1', id);
    const m2 = new MetadataStore(root);
    await m2.init();
    assert.equal(m2.getImage(id)?.size, 3);
    assert.deepEqual(m2.refsOf(id), ['docker.io/library/a:latest', 'docker.io/library/b:1']);
    assert.equal(await m2.deleteRef('docker.io/library/a:latest'), true);
    assert.equal(await m2.deleteRef('docker.io/library/a:latest'), false);
    await m2.deleteImage(id);
    const m3 = new MetadataStore(root);
    await m3.init();
    assert.equal(m3.listImages().length, 0);
    assert.deepEqual(m3.allRefs(), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

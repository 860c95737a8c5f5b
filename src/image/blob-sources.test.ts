import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BlobSources } from './blob-sources.js';

test('records source repositories per registry, most recent first, and survives a restart', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-blobsrc-'));
  try {
    const s = new BlobSources(root);
    await s.init();
    await Promise.all([
      s.add(['sha256:a', 'sha256:b'], 'reg:5000', 'team/one'),
      s.add(['sha256:a'], 'reg:5000', 'team/two'),
      s.add(['sha256:a'], 'other.io', 'x/y'),
    ]);
    assert.deepEqual(s.sources('sha256:a', 'reg:5000'), ['team/two', 'team/one']);
    assert.deepEqual(s.sources('sha256:a', 'other.io'), ['x/y']);
    assert.deepEqual(s.sources('sha256:b', 'other.io'), []);
    await s.add(['sha256:a'], 'reg:5000', 'team/one');
    assert.deepEqual(s.sources('sha256:a', 'reg:5000'), ['team/one', 'team/two']);

    const again = new BlobSources(root);
    await again.init();
    assert.deepEqual(again.sources('sha256:a', 'reg:5000'), ['team/one', 'team/two']);
    await again.retain((d) => d !== 'sha256:a');
    assert.deepEqual(again.sources('sha256:a', 'reg:5000'), []);
    const onDisk = JSON.parse(await readFile(join(root, 'metadata/blob-sources.json'), 'utf8'));
    assert.deepEqual(Object.keys(onDisk), ['sha256:b']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('forget drops one source of one blob and keeps the others', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-blobsrc-'));
  try {
    const s = new BlobSources(root);
    await s.init();
    await s.add(['sha256:a', 'sha256:b'], 'reg:5000', 'team/one');
    await s.add(['sha256:a'], 'reg:5000', 'team/two');
    await s.forget('sha256:a', 'reg:5000', 'team/two');
    await s.forget('sha256:a', 'reg:5000', 'never/there');
    assert.deepEqual(s.sources('sha256:a', 'reg:5000'), ['team/one']);
    assert.deepEqual(s.sources('sha256:b', 'reg:5000'), ['team/one']);
    await s.forget('sha256:b', 'reg:5000', 'team/one');
    const onDisk = JSON.parse(await readFile(join(root, 'metadata/blob-sources.json'), 'utf8'));
    assert.deepEqual(onDisk, { 'sha256:a': ['reg:5000/team/one'] });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { hashSources, resolveSources, type FileDigests } from './build-context.js';

test('hashSources: digests recorded on arrival give the same key as reading the files; content changes the key, a stale record is not trusted', async () => {
  const ctx = await mkdtemp(join(tmpdir(), 'berth-ctx-'));
  try {
    await mkdir(join(ctx, 'dir'));
    await writeFile(join(ctx, 'dir/a'), 'alpha');
    await writeFile(join(ctx, 'b'), 'beta');
    const sources = await resolveSources(ctx, ['dir', 'b'], 'COPY');
    const read = await hashSources(sources);
    const known: FileDigests = new Map();
    for (const [p, c] of [['dir/a', 'alpha'], ['b', 'beta']] as const) {
      known.set(join(ctx, p), { sha256: createHash('sha256').update(c).digest('hex'), ino: (await lstat(join(ctx, p))).ino });
    }
    assert.equal(await hashSources(sources, known), read);
    // a wrong digest under the right inode would be used (it is the record of what arrived) …
    known.set(join(ctx, 'b'), { sha256: '0'.repeat(64), ino: known.get(join(ctx, 'b'))!.ino });
    assert.notEqual(await hashSources(sources, known), read);
    // … but not once the path holds another inode: then the file is read
    known.set(join(ctx, 'b'), { sha256: '0'.repeat(64), ino: -1 });
    assert.equal(await hashSources(sources, known), read);
    await writeFile(join(ctx, 'b'), 'gamma');
    assert.notEqual(await hashSources(await resolveSources(ctx, ['dir', 'b'], 'COPY')), read);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { applyLayer } from './apply-layer.js';
import { DirectFileWriter } from './direct-write.js';
import { makeTar, withTmp } from './test-helpers.js';

const isRoot = process.getuid?.() === 0;

/** Write `data` through a DirectFileWriter in chunks of odd sizes. */
function writeDirect(path: string, data: Buffer, chunk = 65_537): void {
  const fd = openSync(path, 'wx');
  try {
    const w = new DirectFileWriter(fd);
    for (let i = 0; i < data.length; i += chunk) w.write(data.subarray(i, i + chunk));
    w.end();
  } finally {
    closeSync(fd);
  }
}

test('direct writes: sizes around the block and staging sizes come back byte for byte', async () => {
  await withTmp(async (dir) => {
    for (const size of [4096, 5000, (1 << 20) - 1, 1 << 20, (1 << 20) + 4096, 3 * (1 << 20) + 7]) {
      const data = randomBytes(size);
      const p = join(dir, `f${size}`);
      writeDirect(p, data, size % 2 ? 65_537 : 1 << 16);
      assert.ok(readFileSync(p).equals(data), `size ${size}`);
    }
    // two files in flight at once (two layers on one worker) do not share a staging buffer
    const a = randomBytes(2 << 20);
    const b = randomBytes(2 << 20);
    const fa = openSync(join(dir, 'a'), 'wx');
    const fb = openSync(join(dir, 'b'), 'wx');
    const wa = new DirectFileWriter(fa);
    const wb = new DirectFileWriter(fb);
    for (let i = 0; i < a.length; i += 100_000) {
      wa.write(a.subarray(i, i + 100_000));
      wb.write(b.subarray(i, i + 100_000));
    }
    wa.end();
    wb.end();
    closeSync(fa);
    closeSync(fb);
    assert.ok(readFileSync(join(dir, 'a')).equals(a));
    assert.ok(readFileSync(join(dir, 'b')).equals(b));
  });
});

test('direct writes fall back to ordinary writes where O_DIRECT is refused (tmpfs)', { skip: !existsSync('/dev/shm') && 'no /dev/shm' }, async () => {
  await withTmp(async (dir) => {
    const data = randomBytes((1 << 20) + 123);
    writeDirect(join(dir, 'f'), data);
    assert.ok(readFileSync(join(dir, 'f')).equals(data));
  }, '/dev/shm/berth-direct-');
});

test('a layer unpacked with directIo has the same files and diff ID', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (dir) => {
    const big = randomBytes(700_001);
    const tar = await makeTar([{ name: 'd/', type: 'directory' }, { name: 'd/big', content: big, mode: 0o640 }, { name: 'd/small', content: 'x' }]);
    const a = await applyLayer(Readable.from([tar]), join(dir, 'a'), { directIo: true, recipe: true });
    const b = await applyLayer(Readable.from([tar]), join(dir, 'b'));
    assert.equal(a.diffId, b.diffId);
    assert.ok(readFileSync(join(dir, 'a/d/big')).equals(big));
    assert.ok(a.recipe, 'the recipe still describes the layer');
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { isKind } from '../base/errors.js';
import { createZstdDecompress, isZstd, ZstdDecompress } from './zstd.js';

const haveZstd = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

async function decompress(input: Buffer, d = createZstdDecompress()): Promise<Buffer> {
  const out: Buffer[] = [];
  // small chunks, so backpressure in both directions is exercised
  const chunks = [];
  for (let i = 0; i < input.length; i += 7919) chunks.push(input.subarray(i, i + 7919));
  await pipeline(Readable.from(chunks), d, new Writable({
    highWaterMark: 1024,
    write(c: Buffer, _e, cb) {
      out.push(c);
      setImmediate(cb);
    },
  }));
  return Buffer.concat(out);
}

test('isZstd recognises the frame magic', () => {
  assert.equal(isZstd(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), true);
  assert.equal(isZstd(Buffer.from([0x1f, 0x8b, 8, 0])), false);
  assert.equal(isZstd(Buffer.from([0x28, 0xb5])), false);
});

test('decompresses a zstd stream (several MB, with backpressure)', { skip: !haveZstd && 'needs zstd' }, async () => {
  const plain = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(2 << 20, 7)]);
  const z = execFileSync('zstd', ['-q', '-c'], { input: plain, maxBuffer: 64 << 20 });
  assert.ok(isZstd(z));
  const got = await decompress(z);
  assert.equal(got.length, plain.length);
  assert.ok(got.equals(plain));
});

test('a truncated or corrupt stream fails with invalid-argument', { skip: !haveZstd && 'needs zstd' }, async () => {
  const z = execFileSync('zstd', ['-q', '-c'], { input: randomBytes(200_000) });
  await assert.rejects(decompress(z.subarray(0, z.length - 1000)), (e) => isKind(e, 'invalid-argument') && /invalid zstd stream/.test(String(e)));
  const bad = Buffer.concat([z.subarray(0, 20), randomBytes(5000)]);
  await assert.rejects(decompress(bad), (e) => isKind(e, 'invalid-argument'));
});

test('a missing binary fails with unavailable and says what to install', async () => {
  await assert.rejects(decompress(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), new ZstdDecompress('/nonexistent/zstd')), (e) => isKind(e, 'unavailable') && /apt-get install zstd/.test(String(e)));
});

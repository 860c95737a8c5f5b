import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { isKind } from '../base/errors.js';
import { compressionOf, createDecompressor, isZstd, ToolDecompress } from './decompress.js';

const haveZstd = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

async function decompress(input: Buffer, d = createDecompressor('zstd')): Promise<Buffer> {
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
  await assert.rejects(decompress(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), new ToolDecompress('zstd', '/nonexistent/zstd')), (e) => isKind(e, 'unavailable') && /apt-get install zstd/.test(String(e)));
});

test('compressionOf tells gzip, zstd, xz and bzip2 from a plain tar', () => {
  assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0])), 'gzip');
  assert.equal(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), 'zstd');
  assert.equal(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  assert.equal(compressionOf(Buffer.from('BZh91AY', 'latin1')), 'bzip2');
  assert.equal(compressionOf(Buffer.from('BZhx', 'latin1')), undefined);
  assert.equal(compressionOf(Buffer.from('etc/\0\0', 'latin1')), undefined);
});

for (const [tool, pkg] of [['xz', 'xz'], ['bzip2', 'bzip2']] as const) {
  const have = (() => {
    try {
      execFileSync(pkg, ['--help'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  test(`decompresses ${tool} through the tool; corrupt input is invalid-argument (${tool.toUpperCase()}_INVALID)`, { skip: !have && `needs ${tool}` }, async () => {
    const plain = randomBytes(1 << 20);
    const z = execFileSync(tool, ['-c'], { input: plain, maxBuffer: 64 << 20 });
    assert.equal(compressionOf(z), tool);
    assert.ok((await decompress(z, createDecompressor(tool))).equals(plain));
    const bad = Buffer.concat([z.subarray(0, 40), randomBytes(4000)]);
    await assert.rejects(decompress(bad, createDecompressor(tool)), (e) => isKind(e, 'invalid-argument') && new RegExp(`invalid ${tool} stream`).test(String(e)) && (e as { code?: string }).code === `${tool.toUpperCase()}_INVALID`);
  });
}

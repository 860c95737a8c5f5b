import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, rm, symlink, writeFile, link } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';

import { applyLayer } from './apply-layer.js';
import { makeTar, withTmp } from './test-helpers.js';
import { decodeRecipe, encodeRecipe, rebuildTar, recipeSize, TarSegmenter } from './tar-split.js';

const isRoot = process.getuid?.() === 0;

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Feed `tar` in chunks of odd sizes, so headers and contents straddle chunk edges. */
function chunked(tar: Buffer, size = 777): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < tar.length; i += size) parts.push(tar.subarray(i, i + size));
  return Readable.from(parts);
}

async function roundTrip(tmp: string, tar: Buffer): Promise<{ rebuilt: Buffer; recipeBytes: number }> {
  const dest = join(tmp, `layer-${randomBytes(4).toString('hex')}`);
  const r = await applyLayer(chunked(tar), dest, { recipe: true });
  assert.ok(r.recipe, `a recipe (${r.noRecipe})`);
  const parts = decodeRecipe(r.recipe);
  assert.equal(recipeSize(parts), tar.length);
  const rebuilt = await collect(rebuildTar(dest, parts));
  return { rebuilt, recipeBytes: r.recipe.length };
}

test('tar-split: a tar made by tar-stream (PAX long names, links, empty and odd-sized files) is rebuilt byte for byte, without keeping file content', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const big = randomBytes(300_001);
    const tar = await makeTar([
      { name: 'd/', type: 'directory' },
      { name: 'd/empty', type: 'file', content: '' },
      { name: 'd/big', type: 'file', content: big, uid: 12, gid: 34, mode: 0o600 },
      { name: `d/${'long-name-'.repeat(20)}x`, type: 'file', content: 'pax named' },
      { name: 'd/hard', type: 'link', linkname: 'd/big' },
      { name: 'd/sym', type: 'symlink', linkname: '../../outside' },
      { name: 'd/x', type: 'file', content: 'with xattr', pax: { 'SCHILY.xattr.user.k': 'v' } },
    ]);
    const { rebuilt, recipeBytes } = await roundTrip(tmp, tar);
    assert.ok(rebuilt.equals(tar), 'same bytes');
    assert.ok(recipeBytes < 16 * 1024, `the recipe holds headers, not content (${recipeBytes} bytes)`);
  });
});

test('tar-split: a tar made by GNU tar (GNU long names, hardlinks, trailing record padding) is rebuilt byte for byte', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const src = join(tmp, 'src');
    await mkdir(join(src, 'a/b'), { recursive: true });
    await writeFile(join(src, 'a/b/file'), randomBytes(5000));
    await writeFile(join(src, `a/${'n'.repeat(150)}`), 'long');
    await link(join(src, 'a/b/file'), join(src, 'a/hl'));
    await symlink('b/file', join(src, 'a/sl'));
    await writeFile(join(src, 'a/zero'), '');
    await appendFile(join(src, 'a/zero'), '');
    for (const format of ['gnu', 'posix']) {
      const tar = execFileSync('tar', ['-C', src, `--format=${format}`, '-cf', '-', 'a']);
      assert.equal(tar.length % 10240, 0, 'GNU tar pads to its record size');
      const { rebuilt } = await roundTrip(tmp, tar);
      assert.ok(rebuilt.equals(tar), `same bytes (${format})`);
    }
  });
});

test('tar-split: ranges of the rebuilt tar match the original; a changed file fails the rebuild', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const tar = await makeTar([
      { name: 'f1', type: 'file', content: randomBytes(70_000) },
      { name: 'f2', type: 'file', content: randomBytes(1234) },
    ]);
    const dest = join(tmp, 'layer');
    const r = await applyLayer(Readable.from([tar]), dest, { recipe: true });
    const parts = decodeRecipe(r.recipe!);
    for (const [start, end] of [[0, 10], [511, 513], [600, 70_700], [70_000, tar.length], [tar.length - 5, tar.length]] as const) {
      assert.ok((await collect(rebuildTar(dest, parts, { start, end }))).equals(tar.subarray(start, end)), `range ${start}-${end}`);
    }
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(tar).digest('hex')}`;
    assert.ok((await collect(rebuildTar(dest, parts, { digest }))).equals(tar));
    // same size, other bytes: the digest check catches it
    await writeFile(join(dest, 'f2'), randomBytes(1234));
    await assert.rejects(collect(rebuildTar(dest, parts, { digest })), /layer content changed/);
    // another size: caught before any byte of it is sent
    await writeFile(join(dest, 'f2'), 'short');
    await assert.rejects(collect(rebuildTar(dest, parts)), /layer content changed: f2/);
    await rm(join(dest, 'f1'));
    await assert.rejects(collect(rebuildTar(dest, parts)), /f1 is gone/);
  });
});

test('tar-split: no recipe when the tar writes a path twice, deletes its own file, or is compressed', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const twice = await makeTar([
      { name: 'f', type: 'file', content: 'first' },
      { name: 'f', type: 'file', content: 'second' },
    ]);
    const r1 = await applyLayer(Readable.from([twice]), join(tmp, 'l1'), { recipe: true });
    assert.equal(r1.recipe, undefined);
    assert.match(r1.noRecipe!, /written more than once/);
    const whiteout = await makeTar([
      { name: 'f', type: 'file', content: 'gone' },
      { name: '.wh.f', type: 'file', content: '' },
    ]);
    const r2 = await applyLayer(Readable.from([whiteout]), join(tmp, 'l2'), { recipe: true });
    assert.equal(r2.recipe, undefined);
    const plain = await makeTar([{ name: 'f', type: 'file', content: 'x' }]);
    const r3 = await applyLayer(Readable.from([gzipSync(plain)]), join(tmp, 'l3'), { recipe: true });
    assert.equal(r3.recipe, undefined);
    assert.match(r3.noRecipe!, /compressed/);
    // without the option nothing is recorded
    const r4 = await applyLayer(Readable.from([plain]), join(tmp, 'l4'));
    assert.equal(r4.recipe, undefined);
    assert.equal(r4.noRecipe, undefined);
  });
});

test('tar-split segmenter: a bad header checksum or a sparse entry makes it give up instead of guessing', async () => {
  const tar = await makeTar([{ name: 'f', type: 'file', content: 'abc' }]);
  const bad = Buffer.from(tar);
  bad[0] = bad[0]! ^ 1;
  const s1 = new TarSegmenter();
  s1.push(bad);
  s1.end();
  assert.match(s1.unusable!, /checksum/);
  const sparse = Buffer.from(tar);
  sparse[156] = 'S'.charCodeAt(0);
  // fix the checksum for the changed type flag
  sparse.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += sparse[i]!;
  sparse.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const s2 = new TarSegmenter();
  s2.push(sparse);
  s2.end();
  assert.match(s2.unusable!, /"S"/);
  const ok = new TarSegmenter();
  ok.push(tar);
  ok.end();
  assert.equal(ok.unusable, undefined);
  assert.equal(ok.contentEntries, 1);
  assert.equal(ok.total, tar.length);
});

test('tar-split: a recipe that is not one, or is cut short, is refused with a clear error', async () => {
  await assert.rejects(async () => decodeRecipe(Buffer.from('not a recipe')), /not a tar-split recipe/);
  const good = encodeRecipe([{ raw: Buffer.alloc(512, 1) }, { path: 'a/b', size: 1234 }]);
  assert.deepEqual(decodeRecipe(good).map((p) => ('raw' in p ? p.raw.length : `${p.path}:${p.size}`)), [512, 'a/b:1234']);
  for (const cut of [good.length - 1, good.length - 3, 25]) {
    await assert.rejects(async () => decodeRecipe(good.subarray(0, cut)), /truncated tar-split recipe/, `cut at ${cut}`);
  }
  const bad = Buffer.from(good);
  bad[18] = 9; // the first part's kind byte
  await assert.rejects(async () => decodeRecipe(bad), /corrupt tar-split recipe/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { decodePathStat, extractLocal, isDirMode, packLocal, splitCpArg } from './cp.js';

test('splitCpArg distinguishes container:path from local paths', () => {
  assert.deepEqual(splitCpArg('web:/etc/hosts'), { container: 'web', path: '/etc/hosts' });
  assert.deepEqual(splitCpArg('./a:b'), { path: './a:b' });
  assert.deepEqual(splitCpArg('/x:y'), { path: '/x:y' });
  assert.deepEqual(splitCpArg('file.txt'), { path: 'file.txt' });
});

test('stat header decoding and Go dir mode bit', () => {
  const h = Buffer.from(JSON.stringify({ name: 'etc', size: 4096, mode: 2 ** 31 + 0o755, mtime: '', linkTarget: '' })).toString('base64');
  const st = decodePathStat(h)!;
  assert.equal(st.name, 'etc');
  assert.equal(isDirMode(st.mode), true);
  assert.equal(isDirMode(0o644), false);
});

test('pack then extract round-trips a tree, renaming the top entry', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cp-'));
  try {
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'f.txt'), 'hello');
    fs.chmodSync(path.join(src, 'sub', 'f.txt'), 0o750);
    fs.symlinkSync('sub/f.txt', path.join(src, 'link'));
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    await extractLocal(packLocal(src, 'src', false), out, 'renamed');
    assert.equal(fs.readFileSync(path.join(out, 'renamed', 'sub', 'f.txt'), 'utf8'), 'hello');
    assert.equal(fs.statSync(path.join(out, 'renamed', 'sub', 'f.txt')).mode & 0o777, 0o750);
    assert.equal(fs.readlinkSync(path.join(out, 'renamed', 'link')), 'sub/f.txt');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

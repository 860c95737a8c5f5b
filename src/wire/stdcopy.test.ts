import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frame, Deframer, STDOUT, STDERR } from './stdcopy.js';

test('frames round-trip across arbitrary split points', () => {
  const a = frame(STDOUT, Buffer.from('hello\n'));
  const b = frame(STDERR, Buffer.from('oops'));
  const all = Buffer.concat([a, b]);
  for (let cut = 0; cut <= all.length; cut++) {
    const d = new Deframer();
    const got = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
    assert.deepEqual(got.map((c) => [c.stream, c.data.toString()]), [[1, 'hello\n'], [2, 'oops']]);
    assert.equal(d.pending, 0);
  }
});

test('header carries big-endian length', () => {
  const f = frame(STDERR, Buffer.alloc(300));
  assert.equal(f[0], 2);
  assert.equal(f.readUInt32BE(4), 300);
});

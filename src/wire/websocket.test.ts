import assert from 'node:assert/strict';
import { test } from 'node:test';

import { acceptKey, closeFrame, decodeServerFrames, encodeClientFrame, encodeFrame, FrameDecoder, isValidKey, OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, WsProtocolError } from './websocket.js';

test('accept key: the RFC 6455 §1.3 example', () => {
  assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.ok(isValidKey('dGhlIHNhbXBsZSBub25jZQ=='));
  assert.ok(!isValidKey('not-a-key'));
  assert.ok(!isValidKey(undefined));
  assert.ok(!isValidKey(Buffer.alloc(15).toString('base64')));
});

test('server frames: short, 16-bit and 64-bit lengths round-trip', () => {
  for (const n of [0, 5, 125, 126, 65535, 65536, 200_000]) {
    const payload = Buffer.alloc(n, 0x61);
    const { frames, rest } = decodeServerFrames(encodeFrame(OP_BINARY, payload));
    assert.equal(rest.length, 0);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.opcode, OP_BINARY);
    assert.ok(frames[0]!.payload.equals(payload), `length ${n}`);
  }
  assert.equal(closeFrame(1000).readUInt16BE(2), 1000);
});

test('client frames: unmasked across chunk boundaries, fragments kept in order', () => {
  const dec = new FrameDecoder();
  const wire = Buffer.concat([encodeClientFrame(OP_TEXT, Buffer.from('hel'), undefined, false), encodeClientFrame(0, Buffer.from('lo')), encodeClientFrame(OP_PING, Buffer.from('p')), encodeClientFrame(OP_BINARY, Buffer.alloc(70_000, 7))]);
  const got = [];
  for (let i = 0; i < wire.length; i += 1000) got.push(...dec.push(wire.subarray(i, i + 1000)));
  assert.deepEqual(got.map((f) => [f.opcode, f.fin]), [[OP_TEXT, false], [0, true], [OP_PING, true], [OP_BINARY, true]]);
  assert.equal(Buffer.concat([got[0]!.payload, got[1]!.payload]).toString(), 'hello');
  assert.equal(got[3]!.payload.length, 70_000);
  assert.ok(got[3]!.payload.every((b) => b === 7));
});

test('client frames: protocol violations are rejected', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from([0x81, 0x02, 0x68, 0x69])), WsProtocolError); // unmasked
  assert.throws(() => new FrameDecoder().push(Buffer.from([0xc1, 0x80, 1, 2, 3, 4])), /reserved bits/);
  assert.throws(() => new FrameDecoder().push(Buffer.from([0x83, 0x80, 1, 2, 3, 4])), /unknown opcode/);
  assert.throws(() => new FrameDecoder().push(encodeClientFrame(OP_CLOSE, Buffer.alloc(200))), /bad control frame/);
  const huge = Buffer.from([0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0]);
  assert.throws(() => new FrameDecoder().push(huge), (e: WsProtocolError) => e.code === 1009);
  assert.throws(() => new FrameDecoder(10).push(encodeClientFrame(OP_BINARY, Buffer.alloc(11))), /too large/);
});

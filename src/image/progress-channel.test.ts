import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Channel, progressBar, Semaphore } from './progress-channel.js';

test('Semaphore never runs more than its limit at once', async () => {
  const sem = new Semaphore(3);
  let active = 0;
  let peak = 0;
  await Promise.all(Array.from({ length: 10 }, () => sem.run(async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setTimeout(r, 5));
    active--;
  })));
  assert.equal(peak, 3);
});

test('Channel yields queued values then throws the close error', async () => {
  const ch = new Channel<number>();
  ch.push(1);
  setTimeout(() => {
    ch.push(2);
    ch.close(new Error('boom'));
  }, 5);
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const v of ch) seen.push(v);
  }, /boom/);
  assert.deepEqual(seen, [1, 2]);
});

test('progressBar draws a Docker-style bar', () => {
  assert.match(progressBar(50, 100), /^\[={24}> {25}\]/);
  assert.match(progressBar(100, 100), /^\[={50}\]/);
});

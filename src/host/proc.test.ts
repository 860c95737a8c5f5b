import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { pidAlive, pidAliveAsync, statState } from './proc.js';

test('statState reads the state after the last parenthesis of the command name', () => {
  assert.equal(statState('123 (conmon) S 1 123 123 0 -1'), 'S');
  assert.equal(statState('77 (a) b) Z 1 77 77 0 -1'), 'Z');
  assert.equal(statState('garbage'), undefined);
});

test('pidAlive: a running process is alive; a zombie and a reaped pid are not', async () => {
  assert.equal(pidAlive(process.pid), true);
  assert.equal(await pidAliveAsync(process.pid), true);
  assert.equal(pidAlive(0), false);
  // the background `sleep 0.2` exits after its parent has become `sleep 30`, which never reaps it: a zombie
  const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    for (let i = 0; i < 200 && pidAlive(zombie); i++) await new Promise((r) => setTimeout(r, 5));
    assert.doesNotThrow(() => process.kill(zombie, 0), 'the zombie pid still exists');
    assert.equal(pidAlive(zombie), false);
    assert.equal(await pidAliveAsync(zombie), false);
  } finally {
    parent.kill('SIGKILL');
  }
  await new Promise((r) => parent.once('exit', r));
  assert.equal(pidAlive(parent.pid!), false);
});

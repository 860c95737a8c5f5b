import { test } from 'node:test';
import assert from 'node:assert/strict';

import { applyChanges, parseGoDuration } from './changes.js';
import { chainIds } from './chain-id.js';
import { createHash } from 'node:crypto';

test('CMD/ENTRYPOINT exec and shell forms', () => {
  const c = applyChanges({ Cmd: ['old'] }, ['CMD ["echo","hi"]']);
  assert.deepEqual(c.Cmd, ['echo', 'hi']);
  assert.deepEqual(applyChanges({}, ['CMD echo $HOME']).Cmd, ['/bin/sh', '-c', 'echo $HOME']);
  const e = applyChanges({ Cmd: ['base'] }, ['ENTRYPOINT ["/bin/app"]']);
  assert.deepEqual(e.Entrypoint, ['/bin/app']);
  assert.equal(e.Cmd, null);
  const both = applyChanges({ Cmd: ['base'] }, ['CMD ["x"]', 'ENTRYPOINT /e']);
  assert.deepEqual(both.Cmd, ['x']);
  assert.deepEqual(both.Entrypoint, ['/bin/sh', '-c', '/e']);
});

test('ENV in both forms replaces existing keys', () => {
  const c = applyChanges({ Env: ['PATH=/bin', 'A=1'] }, ['ENV A=2 B="two words"', 'ENV C some value']);
  assert.deepEqual(c.Env, ['PATH=/bin', 'A=2', 'B=two words', 'C=some value']);
});

test('LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, ONBUILD, HEALTHCHECK', () => {
  const c = applyChanges({ WorkingDir: '/srv' }, [
    'LABEL a=b "c d"=e',
    'EXPOSE 80 53/udp 8000-8001',
    'VOLUME ["/data"]',
    'VOLUME /a /b',
    'WORKDIR app',
    'USER nobody',
    'STOPSIGNAL SIGTERM',
    'onbuild run make',
    'HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://x/',
  ]);
  assert.deepEqual(c.Labels, { a: 'b', 'c d': 'e' });
  assert.deepEqual(Object.keys(c.ExposedPorts!), ['80/tcp', '53/udp', '8000/tcp', '8001/tcp']);
  assert.deepEqual(Object.keys(c.Volumes!), ['/data', '/a', '/b']);
  assert.equal(c.WorkingDir, '/srv/app');
  assert.equal(c.User, 'nobody');
  assert.equal(c.StopSignal, 'SIGTERM');
  assert.deepEqual(c.OnBuild, ['RUN make']);
  assert.deepEqual(c.Healthcheck, { Interval: 5e9, Retries: 2, Test: ['CMD-SHELL', 'curl -f http://x/'] });
});

test('rejects unknown instructions and bad args', () => {
  assert.throws(() => applyChanges({}, ['RUN ls']), /run is not a valid change command/);
  assert.throws(() => applyChanges({}, ['EXPOSE abc']), /invalid containerPort/);
  assert.throws(() => applyChanges({}, ['ENV']), /requires/);
});

test('input config is not mutated', () => {
  const base = { Env: ['A=1'] };
  applyChanges(base, ['ENV A=2']);
  assert.deepEqual(base.Env, ['A=1']);
});

test('go durations', () => {
  assert.equal(parseGoDuration('1m30s'), 90e9);
  assert.equal(parseGoDuration('250ms'), 250e6);
  assert.throws(() => parseGoDuration('5x'));
});

test('chain ids', () => {
  const a = `sha256:${'1'.repeat(64)}`;
  const b = `sha256:${'2'.repeat(64)}`;
  const ids = chainIds([a, b]);
  assert.equal(ids[0], a);
  assert.equal(ids[1], `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`);
});

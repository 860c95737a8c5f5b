/**
 * Compat suite: docker-compose 1.29's `build:` against berthd (issue 5 "Done when"). compose v1
 * builds through docker-py's `POST /build` (a gzip-less tar context, `buildargs`, `t`, `rm`,
 * `forcerm`, `pull`, `nocache` as query values), then `up` runs the built image.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, runCommand, startDaemon, type CliResult, type TestDaemon } from '../integration/harness.js';
import { dockerEnv } from './compat-util.js';

const COMPOSE = process.env['BERTH_COMPAT_COMPOSE'] ?? 'docker-compose';
const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary(COMPOSE));

let h: TestDaemon;
let dir = '';
const project = `cb${process.pid}`;

function compose(args: string[], timeoutMs = 180_000): Promise<CliResult> {
  return runCommand('bash', ['-c', 'cd "$1" && shift && exec "$@"', 'compose', dir, COMPOSE, '-p', project, ...args], {
    env: { ...dockerEnv(h), COMPOSE_INTERACTIVE_NO_CLI: '1', COMPOSE_HTTP_TIMEOUT: '180' },
    timeoutMs,
  });
}

before(async () => {
  if (skip) return;
  h = await startDaemon();
  await importBusybox(h);
  dir = join(h.baseDir, 'proj');
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', 'Dockerfile'), [
    'FROM busybox',
    'ARG GREETING=default',
    'COPY msg.txt /msg.txt',
    'RUN echo "$GREETING" >> /msg.txt',
    'CMD ["cat", "/msg.txt"]',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'app', 'msg.txt'), 'built by compose\n');
  writeFileSync(join(dir, 'docker-compose.yml'), [
    'version: "2.4"',
    'services:',
    '  app:',
    '    build:',
    '      context: ./app',
    '      args:',
    '        GREETING: hello-arg',
    `    image: ${project}-app:latest`,
    '',
  ].join('\n'));
});

after(async () => {
  if (h) {
    if (dir) await compose(['down', '-t', '1']).catch(() => undefined);
    await cleanup(h);
  }
});

test('docker-compose build and up run the image berthd built', { skip }, async () => {
  const b = await compose(['build']);
  assert.equal(b.code, 0, `${b.stdout}\n${b.stderr}`);
  assert.match(b.stdout + b.stderr, /Successfully built [0-9a-f]{12}/);
  assert.match(b.stdout + b.stderr, /Successfully tagged cb\d+-app:latest/);
  const up = await compose(['up', '--no-color', '--abort-on-container-exit']);
  assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stdout, /built by compose/);
  assert.match(up.stdout, /hello-arg/);
  // a second build is served from the cache
  const again = await compose(['build']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout + again.stderr, /Using cache/);
});

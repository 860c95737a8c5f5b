/** `berth build` / POST /build end to end: COPY + RUN + CMD, full cache, failing RUN, multi-stage, docker CLI. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, type TestDaemon } from './harness.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'));
let h: TestDaemon;
let ctx: string;

before(async () => {
  if (skip) return;
  h = await startDaemon();
  await importBusybox(h);
  ctx = join(h.baseDir, 'ctx');
  mkdirSync(join(ctx, 'sub'), { recursive: true });
  writeFileSync(join(ctx, 'hello.txt'), 'hello from context\n');
  writeFileSync(join(ctx, 'sub', 'a'), 'a\n');
  writeFileSync(join(ctx, 'secret.key'), 'nope\n');
  writeFileSync(join(ctx, '.dockerignore'), '*.key\n');
  writeFileSync(join(ctx, 'Dockerfile'), [
    'FROM busybox',
    'ARG WHO=world',
    'ENV GREETING="hi ${WHO:-x}"',
    'WORKDIR /app',
    'COPY . ./',
    'RUN echo "building for $WHO" && ls /app > /app/listing',
    'RUN <<EOF',
    'echo heredoc $GREETING > /app/h',
    'EOF',
    'CMD ["cat", "/app/hello.txt", "/app/h", "/app/listing"]',
    '',
  ].join('\n'));
  writeFileSync(join(ctx, 'Dockerfile.fail'), 'FROM busybox\nRUN false\n');
  writeFileSync(join(ctx, 'Dockerfile.ms'), [
    'FROM busybox AS build',
    'RUN mkdir /out && echo built > /out/artifact',
    'FROM busybox AS unused',
    'RUN exit 3',
    'FROM busybox',
    'COPY --from=build /out/artifact /artifact',
    'CMD ["cat", "/artifact"]',
    '',
  ].join('\n'));
});
after(async () => {
  if (h) await cleanup(h);
});

test('build FROM busybox + COPY + RUN + CMD, then run it; .dockerignore applies', { skip }, async () => {
  const r = await h.cliOk(['build', '-t', 'bt:1', ctx], { timeoutMs: 120_000 });
  assert.match(r, /Step 1\/8 : FROM busybox/);
  assert.match(r, /building for world/);
  assert.match(r, /Successfully built [0-9a-f]{12}\n/);
  assert.match(r, /Successfully tagged bt:1\n/);
  const out = await h.cliOk(['run', '--rm', 'bt:1']);
  assert.match(out, /^hello from context\nheredoc hi world\n/);
  assert.doesNotMatch(out, /secret\.key/);
  assert.match(out, /Dockerfile/);
});

test('a second build is fully cached and gives the same id', { skip }, async () => {
  const a = (await h.cliOk(['build', '-q', ctx])).trim();
  const b = await h.cliOk(['build', ctx]);
  assert.match(b, new RegExp(`Successfully built ${a.slice(7, 19)}`));
  assert.equal((b.match(/Using cache/g) ?? []).length, 6);
  assert.doesNotMatch(b, /Running in/);
});

test('a failing RUN reports Docker\'s message and leaves no container', { skip }, async () => {
  const r = await h.cli(['build', '-f', join(ctx, 'Dockerfile.fail'), ctx]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /The command '\/bin\/sh -c false' returned a non-zero code: 1/);
  assert.equal((await h.cliOk(['ps', '-aq'])).trim(), '');
});

test('multi-stage COPY --from builds only the needed stages', { skip }, async () => {
  const r = await h.cliOk(['build', '-t', 'ms:1', '-f', join(ctx, 'Dockerfile.ms'), ctx], { timeoutMs: 120_000 });
  assert.doesNotMatch(r, /exit 3/);
  assert.equal(await h.cliOk(['run', '--rm', 'ms:1']), 'built\n');
  const bad = await h.cli(['build', '--target', 'nope', '-f', join(ctx, 'Dockerfile.ms'), ctx]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /failed to reach build target nope/);
});

test('the docker CLI builds through /build (DOCKER_BUILDKIT=0)', { skip: skip ?? (existsSync('/usr/local/bin/docker') ? undefined : 'no docker CLI') }, async () => {
  const r = await runCommand('/usr/local/bin/docker', ['build', '-t', 'viadocker:1', ctx], { env: { DOCKER_HOST: h.host, DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Successfully tagged viadocker:1/);
  const f = await runCommand('/usr/local/bin/docker', ['build', '-f', join(ctx, 'Dockerfile.fail'), ctx], { env: { DOCKER_HOST: h.host, DOCKER_BUILDKIT: '0' } });
  assert.equal(f.code, 1);
  assert.match(f.stderr, /returned a non-zero code: 1/);
});

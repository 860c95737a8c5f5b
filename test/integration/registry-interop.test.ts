/**
 * Interop with Docker both ways through a real `docker-registry` (issue 3 "Real parts"): Debian's
 * dockerd 20.10 runs for this file only, with its own data root, exec root, socket and pid file,
 * and without touching the host's iptables or bridges (--iptables=false --ip-masq=false
 * --bridge=none); it is stopped by its pid at the end. Docker treats 127.0.0.0/8 registries as
 * insecure, so both engines speak plain HTTP to the loopback registry.
 *
 * - an image committed in Docker and pushed by Docker is pulled and run by berth;
 * - an image pushed by berth is pulled and run by Docker (`docker run --network none`);
 * - `berth save | docker load` and `docker save | berth load` give images that run, including an
 *   image built by berth with whiteouts, an opaque directory, --chown/--chmod and a symlink;
 * - skopeo copies a berth-pushed image between two repositories (as is, and recompressed with
 *   zstd), and berth pulls and runs both copies.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, waitFor, findBinary, cleanupDir, type TestDaemon, type CliResult } from './harness.js';
import { startRegistry, stopRegistry, type Registry } from './registry-helpers.js';

const dockerCli = findBinary('/usr/local/bin/docker') ?? findBinary('docker');
const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'), requireBinary('docker-registry'),
  requireBinary('dockerd') ? 'dockerd is not installed (apt-get install docker.io)' : undefined,
  dockerCli ? undefined : 'no docker CLI');

let h: TestDaemon;
let tmp: string;
let reg: Registry;
let dockerd: ChildProcess | undefined;
let dockerEnv: Record<string, string>;
/** `127.0.0.1:<port>` of the registry. */
let r: string;

/** Run the docker CLI against this file's dockerd. */
function docker(args: string[], input?: Buffer | string): Promise<CliResult> {
  return runCommand(dockerCli!, args, { env: dockerEnv, timeoutMs: 120_000, ...(input !== undefined ? { input } : {}) });
}

async function dockerOk(args: string[], input?: Buffer): Promise<string> {
  const res = await docker(args, input);
  assert.equal(res.code, 0, `docker ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

/** Run a shell pipeline (for `save | load` between the engines). */
function sh(script: string, env: Record<string, string> = {}): Promise<CliResult> {
  return runCommand('bash', ['-o', 'pipefail', '-c', script], { env, timeoutMs: 120_000 });
}

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(join(tmpdir(), 'berth-interop-'));
  reg = await startRegistry(tmp, 'reg');
  r = `127.0.0.1:${reg.port}`;
  const d = join(tmp, 'docker');
  mkdirSync(join(d, 'config'), { recursive: true });
  writeFileSync(join(d, 'daemon.json'), '{}');
  dockerEnv = { DOCKER_HOST: `unix://${join(d, 'docker.sock')}`, DOCKER_CONFIG: join(d, 'config') };
  dockerd = spawn('dockerd', [
    '--config-file', join(d, 'daemon.json'),
    '--data-root', join(d, 'data'),
    '--exec-root', join(d, 'exec'),
    '-H', `unix://${join(d, 'docker.sock')}`,
    '--pidfile', join(d, 'docker.pid'),
    '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--bridge=none', '--userland-proxy=false',
  ], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitFor(async () => (await docker(['version', '--format', '{{.Server.Version}}'])).code === 0, 60_000, 200);
  h = await startDaemon();
  await importBusybox(h);
});

after(async () => {
  if (dockerd && dockerd.exitCode === null) {
    const gone = new Promise((res) => dockerd!.once('exit', res));
    dockerd.kill('SIGTERM');
    await Promise.race([gone, new Promise((res) => setTimeout(res, 15_000))]);
    if (dockerd.exitCode === null) dockerd.kill('SIGKILL');
  }
  await stopRegistry(reg);
  if (h) await cleanup(h);
  if (tmp) {
    // dockerd's overlay mounts are gone once it stopped; cleanupDir unmounts anything left
    await cleanupDir(join(tmp, 'docker')).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  }
});

test('an image committed and pushed by Docker is pulled and run by berth', { skip }, async () => {
  const tar = readFileSync('/tmp/berth-test-cache/busybox.tar');
  await dockerOk(['import', '-', 'dbase:1'], tar);
  const ctr = (await dockerOk(['run', '--network', 'none', '-d', 'dbase:1', '/bin/sh', '-c', 'echo made-in-docker > /from-docker.txt'])).trim();
  await dockerOk(['wait', ctr]);
  const name = `${r}/fromdocker/app:1`;
  await dockerOk(['commit', '--change', 'CMD ["cat", "/from-docker.txt"]', ctr, name]);
  await dockerOk(['rm', ctr]);
  const push = await dockerOk(['push', name]);
  const digest = /1: digest: (sha256:[0-9a-f]{64})/.exec(push)?.[1];
  assert.ok(digest, push);

  const pull = await h.cli(['pull', name]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`Digest: ${digest}`));
  const img = JSON.parse(await h.cliOk(['image', 'inspect', name]))[0];
  assert.equal(img.Id, (await dockerOk(['image', 'inspect', '--format', '{{.Id}}', name])).trim(), 'same image id (config digest) in both engines');
  assert.deepEqual(img.RootFS.Layers.length, 2);
  const run = await h.cli(['run', '--rm', name]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'made-in-docker\n');
});

test('an image pushed by berth is pulled and run by Docker', { skip }, async () => {
  const name = `${r}/fromberth/app:1`;
  await h.cliOk(['tag', 'busybox', name]);
  const push = await h.cli(['push', name]);
  assert.equal(push.code, 0, push.stderr);
  const digest = /1: digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
  assert.ok(digest, push.stdout);
  const pull = await dockerOk(['pull', name]);
  assert.match(pull, new RegExp(`Digest: ${digest}`));
  const run = await docker(['run', '--rm', '--network', 'none', name, 'echo', 'berth-pushed']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'berth-pushed\n');
  const id = JSON.parse(await h.cliOk(['image', 'inspect', name]))[0].Id;
  assert.equal((await dockerOk(['image', 'inspect', '--format', '{{.Id}}', name])).trim(), id);
});

test('berth save | docker load and docker save | berth load give images that run', { skip }, async () => {
  await h.cliOk(['tag', 'busybox', 'b2d:1']);
  const toDocker = await sh(`node ${JSON.stringify(h.cliEntry)} -H ${h.host} save b2d:1 | ${dockerCli} load`, dockerEnv);
  assert.equal(toDocker.code, 0, toDocker.stderr);
  assert.match(toDocker.stdout, /Loaded image: b2d:1/);
  const run = await docker(['run', '--rm', '--network', 'none', 'b2d:1', 'echo', 'saved-by-berth']);
  assert.equal(run.stdout, 'saved-by-berth\n', run.stderr);

  const tar = readFileSync('/tmp/berth-test-cache/busybox.tar');
  await dockerOk(['import', '--change', 'CMD ["echo", "saved-by-docker"]', '-', 'd2b:1'], tar);
  const toBerth = await sh(`${dockerCli} save d2b:1 | node ${JSON.stringify(h.cliEntry)} -H ${h.host} load`, dockerEnv);
  assert.equal(toBerth.code, 0, toBerth.stderr);
  assert.match(toBerth.stdout, /Loaded image: d2b:1/);
  const run2 = await h.cli(['run', '--rm', 'd2b:1']);
  assert.equal(run2.stdout, 'saved-by-docker\n', run2.stderr);
  assert.equal(JSON.parse(await h.cliOk(['image', 'inspect', 'd2b:1']))[0].Id, (await dockerOk(['image', 'inspect', '--format', '{{.Id}}', 'd2b:1'])).trim());
});

test('an image built by berth (whiteouts, opaque dir, ownership, modes, symlink) runs on Docker after save | load', { skip }, async () => {
  const ctx = join(tmp, 'build-ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'app.sh'), '#!/bin/sh\necho built-by-berth\n');
  writeFileSync(join(ctx, 'Dockerfile'), [
    'FROM busybox',
    'RUN mkdir -p /data/old && echo gone > /data/old/f && echo keep > /data/keep && echo x > /etc/removed-later',
    'COPY --chown=1234:5678 --chmod=750 app.sh /app/app.sh',
    'RUN rm /etc/removed-later && rm -rf /data/old && mkdir /data/old && echo new > /data/old/g && ln -s /app/app.sh /usr/bin/app',
    'CMD ["app"]',
    '',
  ].join('\n'));
  const built = await h.cli(['build', '-q', '-t', 'berthbuilt:1', ctx], { timeoutMs: 120_000 });
  assert.equal(built.code, 0, built.stderr);
  const toDocker = await sh(`node ${JSON.stringify(h.cliEntry)} -H ${h.host} save berthbuilt:1 | ${dockerCli} load`, dockerEnv);
  assert.equal(toDocker.code, 0, toDocker.stderr);
  assert.match(toDocker.stdout, /Loaded image: berthbuilt:1/);
  const run = await docker(['run', '--rm', '--network', 'none', 'berthbuilt:1']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'built-by-berth\n');
  const probe = await docker(['run', '--rm', '--network', 'none', 'berthbuilt:1', 'sh', '-c',
    'stat -c "%u:%g %a" /app/app.sh; ls /data/old; cat /data/keep; test -e /etc/removed-later && echo still-there; readlink /usr/bin/app']);
  assert.equal(probe.code, 0, probe.stderr);
  assert.equal(probe.stdout, '1234:5678 750\ng\nkeep\n/app/app.sh\n', 'ownership, mode, opaque dir, whiteout and symlink as built');
  assert.equal(JSON.parse(await h.cliOk(['image', 'inspect', 'berthbuilt:1']))[0].Id, (await dockerOk(['image', 'inspect', '--format', '{{.Id}}', 'berthbuilt:1'])).trim());
});

test('skopeo copies a berth-pushed image between repositories; berth pulls the copy', { skip: skip ?? requireBinary('skopeo') }, async () => {
  const src = `${r}/skopeo-src/app:1`;
  await h.cliOk(['tag', 'busybox', src]);
  const push = await h.cli(['push', src]);
  assert.equal(push.code, 0, push.stderr);
  const digest = /1: digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
  const skopeo = (args: string[]) => runCommand('skopeo', args, { timeoutMs: 120_000 });
  const copy = await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src}`, `docker://${r}/skopeo-dst/app:1`]);
  assert.equal(copy.code, 0, copy.stderr);
  const inspect = await skopeo(['inspect', '--tls-verify=false', `docker://${r}/skopeo-dst/app:1`]);
  assert.equal(JSON.parse(inspect.stdout).Digest, digest, 'skopeo kept the manifest byte for byte');
  const id = JSON.parse(await h.cliOk(['image', 'inspect', src]))[0].Id;
  const pull = await h.cli(['pull', `${r}/skopeo-dst/app:1`]);
  assert.equal(pull.code, 0, pull.stderr);
  const run = await h.cli(['run', '--rm', `${r}/skopeo-dst/app:1`, 'echo', 'copied']);
  assert.equal(run.stdout, 'copied\n', run.stderr);

  // skopeo recompressing the layers with zstd: berth pulls and runs that too, same image id
  // (through a dir: copy, because a registry destination that already has the blob gets it reused as is)
  const zdir = join(tmp, 'skopeo-zstd');
  const z1 = await skopeo(['copy', '--dest-compress', '--dest-compress-format', 'zstd', '--src-tls-verify=false', `docker://${src}`, `dir:${zdir}`]);
  assert.equal(z1.code, 0, z1.stderr);
  const z = await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `dir:${zdir}`, `docker://${r}/skopeo-zstd/app:1`]);
  assert.equal(z.code, 0, z.stderr);
  const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${r}/skopeo-zstd/app:1`]);
  const layers = (JSON.parse(raw.stdout) as { layers: { mediaType: string }[] }).layers;
  assert.ok(layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+zstd'), raw.stdout);
  const zpull = await h.cli(['pull', `${r}/skopeo-zstd/app:1`]);
  assert.equal(zpull.code, 0, zpull.stderr);
  assert.equal(JSON.parse(await h.cliOk(['image', 'inspect', `${r}/skopeo-zstd/app:1`]))[0].Id, id);
  const zrun = await h.cli(['run', '--rm', `${r}/skopeo-zstd/app:1`, 'echo', 'zstd-copied']);
  assert.equal(zrun.stdout, 'zstd-copied\n', zrun.stderr);
});

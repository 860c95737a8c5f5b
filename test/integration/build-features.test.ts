/**
 * Builder features beyond the basics (issue 5): RUN --mount (cache, bind, tmpfs, secret),
 * RUN --network, stages built in parallel, base images pulled from a loopback docker-registry when
 * missing (and re-resolved with --pull), COPY --chown by name / --chmod / --link, FROM --platform,
 * xz and bzip2 contexts, history entries, --shm-size and --add-host.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { startRegistry, stopRegistry } from './registry-helpers.js';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, runCommand, waitFor, type TestDaemon } from './harness.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'));
let h: TestDaemon;
let base: string;

/** Write a context directory with the given files; returns its path. */
function context(name: string, files: Record<string, string>): string {
  const dir = join(base, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return dir;
}

const build = (args: string[]) => h.cli(['build', ...args], { timeoutMs: 180_000 });
const buildOk = (args: string[]) => h.cliOk(['build', ...args], { timeoutMs: 180_000 });
const runIn = (img: string, script: string) => h.cliOk(['run', '--rm', img, 'sh', '-c', script]);

before(async () => {
  if (skip) return;
  h = await startDaemon();
  await importBusybox(h);
  base = join(h.baseDir, 'ctxs');
  mkdirSync(base, { recursive: true });
});
after(async () => {
  if (h) await cleanup(h);
});

test('RUN --mount=type=cache persists across builds, stays out of the layer, and builder prune drops it', { skip }, async () => {
  const ctx = context('cache', {
    Dockerfile: [
      'FROM busybox',
      'RUN --mount=type=cache,target=/var/cache/thing,id=things sh -c \'echo run >> /var/cache/thing/log; wc -l < /var/cache/thing/log > /seen\'',
      '',
    ].join('\n'),
  });
  await buildOk(['-t', 'cm:1', ctx]);
  assert.equal((await runIn('cm:1', 'cat /seen')).trim(), '1');
  // the mount's contents and its mount point are not in the image
  assert.equal((await runIn('cm:1', 'test -e /var/cache/thing && echo present || echo absent')).trim(), 'absent');
  await buildOk(['--no-cache', '-t', 'cm:2', ctx]);
  assert.equal((await runIn('cm:2', 'cat /seen')).trim(), '2');
  // the cache key includes the mount spec: another target is another step
  writeFileSync(join(ctx, 'Dockerfile'), (await import('node:fs')).readFileSync(join(ctx, 'Dockerfile'), 'utf8').replace('id=things', 'id=things,sharing=locked'));
  const r = await buildOk(['-t', 'cm:3', ctx]);
  assert.doesNotMatch(r, /Using cache/);
  assert.equal((await runIn('cm:3', 'cat /seen')).trim(), '3');
  const pruned = await h.cliOk(['builder', 'prune', '-f']);
  assert.match(pruned, /Total:/);
  await buildOk(['--no-cache', '-t', 'cm:4', ctx]);
  assert.equal((await runIn('cm:4', 'cat /seen')).trim(), '1');
});

test('RUN --mount=type=bind: context read-only by default, rw writes discarded, from=stage, content in the cache key', { skip }, async () => {
  const ctx = context('bind', {
    'data/f': 'from context\n',
    Dockerfile: [
      'FROM busybox AS src',
      'RUN mkdir /out && echo staged > /out/s',
      'FROM busybox',
      'RUN --mount=type=bind,source=data,target=/data sh -c \'cat /data/f > /copied; (touch /data/x 2>/dev/null && echo writable || echo readonly) > /ro\'',
      'RUN --mount=type=bind,source=data,target=/data,rw sh -c \'echo changed > /data/f && cat /data/f > /rw\'',
      'RUN --mount=type=bind,source=data,target=/data cat /data/f > /after',
      'RUN --mount=type=bind,from=src,source=/out,target=/m cat /m/s > /got',
      '',
    ].join('\n'),
  });
  await buildOk(['-t', 'bm:1', ctx]);
  assert.equal(await runIn('bm:1', 'cat /copied /ro /rw /after /got'), 'from context\nreadonly\nchanged\nfrom context\nstaged\n');
  assert.equal((await runIn('bm:1', 'test -e /data -o -e /m && echo present || echo absent')).trim(), 'absent');
  // the bound content is an input of the step: changing it reruns the RUN
  writeFileSync(join(ctx, 'data/f'), 'edited\n');
  const r = await buildOk(['-t', 'bm:2', ctx]);
  assert.match(r, /Running in/);
  assert.equal(await runIn('bm:2', 'cat /copied'), 'edited\n');
});

test('RUN --mount=type=tmpfs and type=secret (berth build --secret); the docker CLI gets a clear error', { skip }, async () => {
  const ctx = context('secret', {
    Dockerfile: [
      'FROM busybox',
      'RUN --mount=type=tmpfs,target=/scratch sh -c \'echo x > /scratch/a && grep " /scratch tmpfs" /proc/mounts | cut -d" " -f3 > /fstype\'',
      'RUN --mount=type=secret,id=tok,required=true sh -c \'test "$(cat /run/secrets/tok)" = s3cr3t && stat -c %a /run/secrets/tok > /secret-mode\'',
      'RUN --mount=type=secret,id=other,target=/etc/other.key,mode=0440 sh -c \'cat /etc/other.key > /other\'',
      '',
    ].join('\n'),
  });
  const sf = join(base, 'tok.txt');
  writeFileSync(sf, 's3cr3t');
  const other = join(base, 'other.txt');
  writeFileSync(other, 'second\n');
  await buildOk(['--secret', `id=tok,src=${sf}`, '--secret', `id=other,src=${other}`, '-t', 'sec:1', ctx]);
  assert.equal(await runIn('sec:1', 'cat /fstype /secret-mode /other'), 'tmpfs\n400\nsecond\n');
  assert.equal((await runIn('sec:1', 'test -e /scratch -o -e /run/secrets/tok -o -e /etc/other.key && echo present || echo absent')).trim(), 'absent');
  // a required secret that was not given fails before the command runs
  const missing = await build(['--no-cache', ctx]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /secret tok not found: pass it with `berth build --secret id=tok,src=FILE`/);
  if (existsSync('/usr/local/bin/docker')) {
    const d = await runCommand('/usr/local/bin/docker', ['build', '--no-cache', ctx], { env: { DOCKER_HOST: h.host, DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });
    assert.equal(d.code, 1);
    assert.match(d.stderr, /secret tok not found/);
  }
  assert.equal((await h.cliOk(['ps', '-aq'])).trim(), '');
});

test('RUN --network=none|host|default', { skip }, async () => {
  const ctx = context('net', {
    Dockerfile: [
      'FROM busybox',
      'RUN --network=none sh -c \'ls /sys/class/net | tr "\\n" " " > /none\'',
      'RUN sh -c \'ls /sys/class/net | tr "\\n" " " > /default\'',
      'RUN --network=host sh -c \'ls /sys/class/net | tr "\\n" " " > /host\'',
      '',
    ].join('\n'),
  });
  await buildOk(['-t', 'net:1', ctx]);
  const [none, def, host] = (await runIn('net:1', 'cat /none; echo; cat /default; echo; cat /host')).split('\n');
  assert.equal(none!.trim(), 'lo');
  assert.match(def!, /eth0/);
  // the host's interfaces (other tests add and remove veths, so only the uplink is compared)
  const uplink = /\bdev (\S+)/.exec(execFileSync('ip', ['route', 'show', 'default'], { encoding: 'utf8' }))?.[1];
  if (uplink) assert.ok(host!.trim().split(' ').includes(uplink), `host network RUN sees ${host}, not ${uplink}`);
  const bad = await build([context('badnet', { Dockerfile: 'FROM busybox\nRUN echo one\nRUN --network=bogus true\n' })]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /line 3: unsupported network mode "bogus"/);
  assert.doesNotMatch(bad.stdout, /Step 2\/3/);
});

test('independent stages run concurrently (their RUN intervals overlap) and the output stays in stage order', { skip }, async () => {
  const stage = (name: string) => [
    `FROM busybox AS ${name}`,
    `RUN cut -d" " -f1 /proc/uptime > /start && sleep 2 && cut -d" " -f1 /proc/uptime > /end && echo ${name}-done`,
  ];
  const ctx = context('par', {
    Dockerfile: [
      ...stage('a'),
      ...stage('b'),
      'FROM busybox',
      'COPY --from=a /start /a.start',
      'COPY --from=a /end /a.end',
      'COPY --from=b /start /b.start',
      'COPY --from=b /end /b.end',
      'CMD ["sh", "-c", "cat /a.start /a.end /b.start /b.end"]',
      '',
    ].join('\n'),
  });
  const out = await buildOk(['-t', 'par:1', ctx]);
  const [as, ae, bs, be] = (await h.cliOk(['run', '--rm', 'par:1'])).trim().split('\n').map(Number);
  assert.ok(as! < be! && bs! < ae!, `stage intervals do not overlap: a=[${as}, ${ae}] b=[${bs}, ${be}]`);
  // stage a's lines all come before stage b's
  const steps = [...out.matchAll(/Step (\d+)\/(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(out.indexOf('a-done') < out.indexOf('Step 3/10'));
  assert.ok(out.indexOf('b-done') > out.indexOf('Step 3/10') && out.indexOf('b-done') < out.indexOf('Step 5/10'));
});

test('a failing stage stops the build with its error while another stage still runs', { skip }, async () => {
  const ctx = context('parfail', {
    Dockerfile: [
      'FROM busybox AS slow',
      'RUN sleep 30',
      'FROM busybox AS bad',
      'RUN echo failing-now && exit 7',
      'FROM busybox',
      'COPY --from=slow /etc/hostname /x',
      'COPY --from=bad /etc/hostname /y',
      '',
    ].join('\n'),
  });
  const r = await build([ctx]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /The command '\/bin\/sh -c echo failing-now && exit 7' returned a non-zero code: 7/);
  assert.match(r.stdout, /failing-now/);
  assert.equal((await h.cliOk(['ps', '-aq'])).trim(), '');
});

test('COPY --chown by name, --chmod, --link; FROM --platform; history and empty layers', { skip }, async () => {
  const ctx = context('own', {
    f: 'file\n',
    Dockerfile: [
      'FROM --platform=linux/amd64 busybox',
      'RUN echo "app:x:1234:2345::/home/app:/bin/sh" >> /etc/passwd && echo "grp:x:3456:" >> /etc/group',
      'COPY --chown=app:grp f /owned-both',
      'COPY --chown=app f /owned-user',
      'COPY --chown=app:0 --chmod=640 f /owned-mode',
      'COPY --link f /linked/f',
      'RUN mkdir -m 700 /priv && chown 1234:2345 /priv && mkdir /real && ln -s /real /lnk',
      'COPY f /priv/sub/f',
      'COPY f /lnk/',
      'ENV A=1',
      'EXPOSE 80',
      'CMD ["cat", "/linked/f"]',
      '',
    ].join('\n'),
  });
  await buildOk(['-t', 'own:1', ctx]);
  assert.equal(await runIn('own:1', 'stat -c "%u %g %a" /owned-both /owned-user /owned-mode'), '1234 3456 644\n1234 2345 644\n1234 0 640\n');
  assert.equal(await h.cliOk(['run', '--rm', 'own:1']), 'file\n');
  // a directory the copy only passes through keeps its mode and owner; a symlink on the way is followed
  assert.equal(await runIn('own:1', 'stat -c "%u %g %a" /priv /priv/sub; cat /real/f; test -L /lnk && echo link'), '1234 2345 700\n0 0 755\nfile\nlink\n');
  const hist = await h.cliOk(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'own:1']);
  assert.match(hist, /^\/bin\/sh -c #\(nop\)  CMD \["cat" "\/linked\/f"\]$/m);
  assert.match(hist, /^\/bin\/sh -c #\(nop\)  EXPOSE 80$/m);
  assert.match(hist, /^\/bin\/sh -c #\(nop\)  ENV A=1$/m);
  assert.match(hist, /^\/bin\/sh -c echo "app:x:1234/m);
  assert.match(hist, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/owned-both $/m);
  // busybox's layer + 2 RUNs + 6 COPYs; ENV/EXPOSE/CMD add none
  const insp = JSON.parse(await h.cliOk(['image', 'inspect', 'own:1']))[0];
  assert.equal(insp.RootFS.Layers.length, 9);
  // chown to an unknown user and a foreign platform fail before any step runs
  const nouser = await build([context('nouser', { f: 'x', Dockerfile: 'FROM busybox\nCOPY --chown=nosuch f /f\n' })]);
  assert.equal(nouser.code, 1);
  assert.match(nouser.stderr, /no such user: nosuch/);
  const arm = await build([context('arm', { Dockerfile: 'FROM --platform=linux/arm64 busybox\nRUN true\n' })]);
  assert.equal(arm.code, 1);
  assert.match(arm.stderr, /platform "linux\/arm64" is not supported: berth builds only for linux\/amd64/);
  assert.doesNotMatch(arm.stdout, /Step 1/);
  const armFlag = await build(['--platform', 'linux/arm64', ctx]);
  assert.equal(armFlag.code, 1);
  assert.match(armFlag.stderr, /not supported/);
  await buildOk(['--platform', 'linux/amd64', '-q', ctx]);
});

test('xz and bzip2 compressed contexts on stdin; --shm-size and --add-host reach RUN', { skip: skip ?? firstSkip(requireBinary('xz'), requireBinary('bzip2')) }, async () => {
  const ctx = context('comp', {
    'hello.txt': 'compressed context\n',
    Dockerfile: [
      'FROM busybox',
      'COPY hello.txt /hello.txt',
      'RUN df -k /dev/shm | tail -n 1 | awk \'{print $2}\' > /shm && grep myhost /etc/hosts | cut -f1 > /addhost',
      'CMD ["cat", "/hello.txt", "/shm", "/addhost"]',
      '',
    ].join('\n'),
  });
  const tar = execFileSync('tar', ['-C', ctx, '-cf', '-', '.']);
  for (const [tool, tag] of [['xz', 'xz:1'], ['bzip2', 'bz:1']] as const) {
    const packed = execFileSync(tool, ['-c'], { input: tar, maxBuffer: 64 << 20 });
    const r = await h.cli(['build', '--no-cache', '--shm-size', '32m', '--add-host', 'myhost:10.1.2.3', '-t', tag, '-'], { input: packed, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await h.cliOk(['run', '--rm', tag]), 'compressed context\n32768\n10.1.2.3\n');
  }
  // a corrupt xz stream is a clear error
  const bad = await h.cli(['build', '-'], { input: Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(64, 7)]) });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid xz stream/);
  // an xz stream that is not a tar inside: a clear error, and the xz child does not stay behind
  // blocked on its full output pipe
  const notTar = execFileSync('xz', ['-c', '-0'], { input: randomBytes(8 << 20), maxBuffer: 64 << 20 });
  const nt = await h.cli(['build', '-'], { input: notTar, timeoutMs: 120_000 });
  assert.notEqual(nt.code, 0);
  const xzChildren = async (): Promise<string> => (await runCommand('ps', ['-o', 'pid=,comm=', '--ppid', String(h.pid)])).stdout
    .split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === 'xz').map((f) => f[0]).join(',');
  await waitFor(async () => (await xzChildren()) === '', 10_000).catch(async () => assert.fail(`xz left running under berthd: ${await xzChildren()}`));
});

test('ADD unpacks xz, bzip2 and zstd tar archives from the context, as Docker does', { skip: skip ?? firstSkip(requireBinary('xz'), requireBinary('bzip2'), requireBinary('zstd')) }, async () => {
  const src = context('add-comp-src', { 'inner/x.txt': 'inside the archive\n' });
  const tar = execFileSync('tar', ['-C', src, '-cf', '-', 'inner']);
  const dir = context('add-comp', {
    Dockerfile: 'FROM busybox\nADD a.tar.xz /xz/\nADD a.tar.bz2 /bz/\nADD a.tar.zst /zst/\n',
  });
  writeFileSync(join(dir, 'a.tar.xz'), execFileSync('xz', ['-c'], { input: tar }));
  writeFileSync(join(dir, 'a.tar.bz2'), execFileSync('bzip2', ['-c'], { input: tar }));
  writeFileSync(join(dir, 'a.tar.zst'), execFileSync('zstd', ['-q', '-c'], { input: tar }));
  const b = await build(['-t', 'addcomp:1', dir]);
  assert.equal(b.code, 0, `${b.stderr}\n${h.log().slice(-3000)}`);
  assert.equal(await runIn('addcomp:1', 'cat /xz/inner/x.txt /bz/inner/x.txt /zst/inner/x.txt'), 'inside the archive\n'.repeat(3));
  await h.cliOk(['rmi', 'addcomp:1']);
});

test('ONBUILD triggers run in the child build; USER, WORKDIR and ENV interplay', { skip }, async () => {
  await buildOk(['-t', 'parent:1', context('parent', {
    Dockerfile: 'FROM busybox\nONBUILD COPY f /onbuild-f\nONBUILD RUN echo triggered > /trig\n',
  })]);
  const child = await buildOk(['-t', 'child:1', context('child', { f: 'from child context\n', Dockerfile: 'FROM parent:1\nRUN cat /trig\n' })]);
  assert.match(child, /# Executing 2 build triggers/);
  assert.equal(await runIn('child:1', 'cat /onbuild-f /trig'), 'from child context\ntriggered\n');
  // triggers run once: the child's own config has none left
  assert.equal(JSON.parse(await h.cliOk(['image', 'inspect', 'child:1']))[0].Config.OnBuild, null);
  await buildOk(['-t', 'uwe:1', context('uwe', {
    Dockerfile: [
      'FROM busybox',
      'RUN echo "app:x:1234:2345::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:2345:" >> /etc/group && mkdir -p /out && chmod 777 /out',
      'ENV DIR=/srv/app NAME=world',
      'WORKDIR $DIR',
      'WORKDIR sub',
      'USER app',
      'RUN id -u > /out/uid && id -g > /out/gid && pwd > /out/pwd && echo "hi $NAME" > /out/env',
      'USER root',
      'ENV NAME=changed',
      'RUN echo "$NAME $DIR" > /out/name',
      'USER app:root',
      'CMD ["sh", "-c", "id -u; id -g; pwd; cat /out/uid /out/gid /out/pwd /out/env /out/name"]',
      '',
    ].join('\n'),
  })]);
  assert.equal(await h.cliOk(['run', '--rm', 'uwe:1']), '1234\n0\n/srv/app/sub\n1234\n2345\n/srv/app/sub\nhi world\nchanged /srv/app\n');
  const cfg = JSON.parse(await h.cliOk(['image', 'inspect', 'uwe:1']))[0].Config;
  assert.equal(cfg.User, 'app:root');
  assert.equal(cfg.WorkingDir, '/srv/app/sub');
  assert.ok(cfg.Env.includes('NAME=changed') && cfg.Env.includes('DIR=/srv/app'));
});

// ---------------------------------------------------------------------------------- registry

test('FROM and COPY --from pull missing images from a registry; --pull re-resolves a present one', { skip: skip ?? requireBinary('docker-registry') }, async (t) => {
  const reg = await startRegistry(base, 'registry');
  t.after(() => stopRegistry(reg));
  const r = `127.0.0.1:${reg.port}`;
  // push busybox as base:1 and an image with a marker file as tools:1, then remove both locally
  await h.cliOk(['tag', 'busybox', `${r}/base:1`]);
  await h.cliOk(['push', `${r}/base:1`], { timeoutMs: 120_000 });
  await buildOk(['-t', `${r}/tools:1`, context('tools', { Dockerfile: 'FROM busybox\nRUN echo tool-v1 > /tool\n' })]);
  await h.cliOk(['push', `${r}/tools:1`], { timeoutMs: 120_000 });
  const pushedBase = JSON.parse(await h.cliOk(['image', 'inspect', `${r}/base:1`]))[0].Id as string;
  await h.cliOk(['rmi', `${r}/base:1`, `${r}/tools:1`]);
  const ctx = context('pull', { Dockerfile: `FROM ${r}/base:1\nCOPY --from=${r}/tools:1 /tool /tool\nCMD ["cat", "/tool"]\n` });
  const out = await buildOk(['-t', 'pulled:1', ctx]);
  assert.match(out, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/base:1/);
  assert.equal(await h.cliOk(['run', '--rm', 'pulled:1']), 'tool-v1\n');
  assert.ok(JSON.parse(await h.cliOk(['image', 'inspect', `${r}/tools:1`]))[0].Id);
  // point base:1 locally at another image: a plain build uses it, --pull goes back to the registry's
  const other = (await buildOk(['-q', context('other', { Dockerfile: 'FROM busybox\nRUN echo other > /other\n' })])).trim();
  await h.cliOk(['tag', other, `${r}/base:1`]);
  const plain = await buildOk([ctx]);
  assert.match(plain, new RegExp(`---> ${other.slice(7, 19)}`));
  const pulled = await buildOk(['--pull', ctx]);
  assert.match(pulled, new RegExp(`---> ${pushedBase.slice(7, 19)}`));
  // an image that is in no registry fails clearly
  const missing = await build([context('missing', { Dockerfile: `FROM ${r}/nope:1\n` })]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope/);
});

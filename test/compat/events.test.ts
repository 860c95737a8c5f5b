/**
 * Events vocabulary and filters (issue 4 item 2, compat §5 `GET /events`), through the docker CLI
 * 28.x (`docker events --since … --until … --filter …`) and docker-py `client.events()`: container,
 * exec, image, volume and network actions with Docker's names and attributes, past events replayed
 * for `since`, and the type/container/image/event/label/network/volume filters.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { cleanup, findBinary, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, runCommand, startDaemon } from '../integration/harness.js';
import { docker, DOCKER_CLI, dockerOk } from './compat-util.js';

const skip = firstSkip(requireRoot(), requireBuilt(), requireBinary('conmon'), requireBinary(DOCKER_CLI));

interface Ev {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  status?: string;
  id?: string;
  from?: string;
  time: number;
  timeNano: number;
}

test('events: Docker action names, attributes, since/until replay and filters', { skip, timeout: 240_000 }, async (t) => {
  const h = await startDaemon();
  t.after(() => cleanup(h));
  await importBusybox(h);
  const since = Math.floor(Date.now() / 1000) - 1;

  // Containers, with a named volume and a label.
  await dockerOk(h, ['volume', 'create', 'evvol']);
  const run = await docker(h, ['run', '--name', 'evc1', '--label', 'evlabel=yes', '-v', 'evvol:/data', 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(run.code, 3, run.stderr);
  await dockerOk(h, ['rename', 'evc1', 'evc1b']);
  await dockerOk(h, ['rm', 'evc1b']);
  await dockerOk(h, ['run', '-d', '--name', 'evc2', 'busybox', 'sleep', '300']);
  await dockerOk(h, ['exec', 'evc2', 'sh', '-c', 'exit 4']).catch(() => undefined);
  await dockerOk(h, ['pause', 'evc2']);
  await dockerOk(h, ['unpause', 'evc2']);
  await dockerOk(h, ['kill', '-s', 'USR1', 'evc2']).catch(() => undefined);
  await dockerOk(h, ['stop', '-t', '1', 'evc2']);
  await dockerOk(h, ['rm', 'evc2']);
  // Images.
  await dockerOk(h, ['tag', 'busybox', 'evimg:1']);
  const saved = join(h.baseDir, 'saved.tar');
  await dockerOk(h, ['save', '-o', saved, 'evimg:1']);
  await dockerOk(h, ['rmi', 'evimg:1']);
  await dockerOk(h, ['load', '-i', saved]);
  // Networks.
  await dockerOk(h, ['network', 'create', 'evnet']);
  await dockerOk(h, ['create', '--name', 'evc3', 'busybox', 'true']);
  await dockerOk(h, ['network', 'connect', 'evnet', 'evc3']);
  await dockerOk(h, ['network', 'disconnect', 'evnet', 'evc3']);
  await dockerOk(h, ['rm', 'evc3']);
  await dockerOk(h, ['network', 'rm', 'evnet']);
  await dockerOk(h, ['volume', 'rm', 'evvol']);
  await new Promise((r) => setTimeout(r, 1100));
  const until = Math.ceil(Date.now() / 1000);

  const events = async (...filters: string[]): Promise<Ev[]> => {
    const args = ['events', '--since', String(since), '--until', String(until), '--format', '{{json .}}'];
    for (const f of filters) args.push('--filter', f);
    const r = await docker(h, args, { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Ev);
  };
  const all = await events();
  const seen = all.map((e) => `${e.Type} ${e.Action}`);
  const has = (type: string, action: string | RegExp, pred: (e: Ev) => boolean = () => true): Ev => {
    const e = all.find((x) => x.Type === type && (typeof action === 'string' ? x.Action === action : action.test(x.Action)) && pred(x));
    assert.ok(e, `no ${type} ${String(action)} event in:\n${seen.join('\n')}`);
    return e;
  };
  const named = (n: string) => (e: Ev) => e.Actor.Attributes['name'] === n;

  for (const a of ['create', 'start', 'attach', 'destroy', 'rename']) has('container', a, (e) => e.Actor.Attributes['evlabel'] === 'yes');
  assert.equal(has('container', 'die', named('evc1')).Actor.Attributes['exitCode'], '3');
  assert.equal(has('container', 'rename', named('evc1b')).Actor.Attributes['oldName'], '/evc1');
  const ec = has('container', /^exec_create: sh -c exit 4$/, named('evc2'));
  assert.ok(ec.Actor.Attributes['execID']);
  has('container', /^exec_start: sh -c exit 4$/, named('evc2'));
  assert.equal(has('container', 'exec_die', named('evc2')).Actor.Attributes['exitCode'], '4');
  for (const a of ['pause', 'unpause', 'stop']) has('container', a, named('evc2'));
  assert.equal(has('container', 'kill', (e) => named('evc2')(e) && e.Actor.Attributes['signal'] === 'USR1').Action, 'kill');
  has('container', 'die', named('evc2'));
  // Legacy fields for containers (compose v1 reads status/id/from).
  const created = has('container', 'create', named('evc2'));
  assert.equal(created.status, 'create');
  assert.equal(created.id, created.Actor.ID);
  assert.equal(created.from, 'busybox');
  assert.equal(typeof created.timeNano, 'number');
  assert.equal(Math.floor(created.timeNano / 1e9), created.time);

  has('image', 'tag', named('evimg:1'));
  has('image', 'save');
  has('image', 'untag');
  has('image', 'load');
  has('volume', 'create', (e) => e.Actor.ID === 'evvol');
  const mount = has('volume', 'mount', (e) => e.Actor.ID === 'evvol');
  assert.equal(mount.Actor.Attributes['destination'], '/data');
  assert.equal(mount.Actor.Attributes['read/write'], 'true');
  assert.match(mount.Actor.Attributes['container'] ?? '', /^[0-9a-f]{64}$/);
  has('volume', 'unmount', (e) => e.Actor.ID === 'evvol');
  has('volume', 'destroy', (e) => e.Actor.ID === 'evvol');
  for (const a of ['create', 'connect', 'disconnect', 'destroy']) has('network', a, named('evnet'));
  assert.match(has('network', 'connect', named('evnet')).Actor.Attributes['container'] ?? '', /^[0-9a-f]{64}$/);

  // Order: create before start before die before destroy for one container.
  const idx = (a: string) => all.findIndex((e) => e.Type === 'container' && e.Action === a && (e.Actor.Attributes['name'] === 'evc1' || e.Actor.Attributes['name'] === 'evc1b'));
  assert.ok(idx('create') < idx('start') && idx('start') < idx('die') && idx('die') < idx('destroy'), seen.join('\n'));

  // Filters.
  const vol = await events('type=volume');
  assert.ok(vol.length >= 4 && vol.every((e) => e.Type === 'volume'), JSON.stringify(vol));
  const dies = await events('event=die', 'container=evc1');
  assert.equal(dies.length, 1, JSON.stringify(dies));
  assert.equal(dies[0]!.Actor.Attributes['exitCode'], '3');
  const labelled = await events('label=evlabel=yes');
  assert.ok(labelled.length >= 4 && labelled.every((e) => e.Actor.Attributes['evlabel'] === 'yes'));
  const net = await events('network=evnet');
  assert.deepEqual(net.map((e) => e.Action), ['create', 'connect', 'disconnect', 'destroy']);
  const volName = await events('volume=evvol');
  assert.deepEqual(volName.map((e) => e.Action), ['create', 'mount', 'unmount', 'destroy']);
  const img = await events('type=image', 'image=evimg:1');
  assert.ok(img.length >= 1 && img.every((e) => e.Type === 'image'), JSON.stringify(img));
  const two = await events('event=pause', 'event=unpause');
  assert.deepEqual(two.map((e) => e.Action), ['pause', 'unpause']);
  // until before anything happened: empty, and the command returns.
  const none = await docker(h, ['events', '--since', String(since - 100), '--until', String(since - 50)], { timeoutMs: 20_000 });
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');

  // docker-py reads the same stream.
  if (findBinary('python3')) {
    const py = [
      'import docker, json',
      `c = docker.DockerClient(base_url="${h.host}")`,
      `evs = list(c.events(since=${since}, until=${until}, filters={"type": "container", "event": "die"}, decode=True))`,
      'print(json.dumps(sorted([(e["Actor"]["Attributes"]["name"], e["Actor"]["Attributes"].get("exitCode")) for e in evs])))',
    ].join('\n');
    const r = await runCommand('python3', ['-c', py], { timeoutMs: 60_000 });
    if (!/No module named 'docker'/.test(r.stderr)) {
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout) as Array<[string, string]>;
      assert.deepEqual(got.map((x) => x[0]).sort(), ['evc1', 'evc2']);
      assert.ok(got.some((x) => x[0] === 'evc1' && x[1] === '3'));
    }
  }
});

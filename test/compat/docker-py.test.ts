/**
 * Compat suite: docker-py (Debian's python3-docker, 7.x) against berthd. A Python script drives the
 * SDK and prints one JSON object of observations; the assertions are here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, runCommand, startDaemon, type TestDaemon } from '../integration/harness.js';

/** Skip reason unless `import docker` works in python3. */
async function requireDockerPy(): Promise<string | undefined> {
  if (requireBinary('python3')) return 'needs python3';
  const r = await runCommand('python3', ['-c', 'import docker']).catch(() => undefined);
  return r?.code === 0 ? undefined : 'needs python3-docker (apt-get install python3-docker)';
}

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), await requireDockerPy());

// Each step records into `out`; a failing step records its exception instead of stopping the rest.
const SCRIPT = String.raw`
import docker, json, sys, time
out = {}
def step(name, fn):
    try:
        out[name] = fn()
    except Exception as e:
        out[name] = {'exception': type(e).__name__, 'message': str(e)}

c = docker.DockerClient(base_url=sys.argv[1], version='auto', timeout=60)
def b(x): return x.decode() if isinstance(x, bytes) else x

step('version', lambda: [c.api.version()['ApiVersion'], c.api.api_version, 'GoVersion' in c.version()])
step('ping', lambda: c.ping())
step('run', lambda: b(c.containers.run('busybox', ['sh', '-c', 'echo out; echo err >&2'], remove=True)))
def run_fail():
    try:
        c.containers.run('busybox', ['sh', '-c', 'echo bad >&2; exit 2'], remove=True)
        return 'no error'
    except docker.errors.ContainerError as e:
        return [e.exit_status, b(e.stderr)]
step('run_fail', run_fail)
def lifecycle():
    ct = c.containers.run('busybox', ['sh', '-c', 'echo a; echo b >&2; sleep 300'], detach=True, name='pyc')
    time.sleep(0.5)
    r = {}
    r['running'] = c.containers.get('pyc').attrs['State']['Running']
    e = ct.exec_run(['sh', '-c', 'echo e1; echo e2 >&2; exit 3'])
    r['exec'] = [e.exit_code, b(e.output)]
    e = ct.exec_run(['sh', '-c', 'echo o; echo e >&2'], demux=True)
    r['exec_demux'] = [e.exit_code, b(e.output[0]), b(e.output[1])]
    r['logs'] = b(ct.logs())
    r['logs_stdout'] = b(ct.logs(stderr=False))
    ct.kill()
    r['wait'] = ct.wait()
    r['attach_logs'] = b(c.api.attach('pyc', logs=True, stream=False))
    ct.remove()
    try:
        c.containers.get('pyc')
        r['after_remove'] = 'still there'
    except docker.errors.NotFound:
        r['after_remove'] = 'NotFound'
    return r
step('lifecycle', lifecycle)
def attach_stdin():
    ct = c.containers.create('busybox', ['sh', '-c', 'read x; echo got:$x'], stdin_open=True)
    s = ct.attach_socket(params={'stdin': 1, 'stdout': 1, 'stream': 1})
    ct.start()
    s._sock.sendall(b'hi\n')
    data = b''
    deadline = time.time() + 10
    while time.time() < deadline and b'got:hi' not in data:
        chunk = s._sock.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    r = [list(data[:8]), data[8:].decode(), ct.wait()['StatusCode']]
    ct.remove(force=True)
    return r
step('attach_stdin', attach_stdin)
def image_missing():
    try:
        c.images.get('no-such-image:tag')
        return 'found'
    except docker.errors.ImageNotFound:
        return 'ImageNotFound'
step('image_missing', image_missing)
step('images', lambda: sorted(t for i in c.images.list() for t in i.tags))
def volumes():
    v = c.volumes.create('pyvol', labels={'a': 'b'})
    r = [v.name, v.attrs['Labels'], [x.name for x in c.volumes.list()]]
    v.remove()
    r.append([x.name for x in c.volumes.list()])
    return r
step('volumes', volumes)
print(json.dumps(out))
`;

describe('docker-py against berthd', { skip }, () => {
  let h: TestDaemon;
  let obs: Record<string, any> = {};

  before(async () => {
    h = await startDaemon();
    await importBusybox(h);
    const script = join(h.baseDir, 'compat.py');
    writeFileSync(script, SCRIPT);
    const r = await runCommand('python3', [script, h.host], { timeoutMs: 180_000 });
    assert.equal(r.code, 0, `docker-py script failed:\n${r.stderr}\n${r.stdout}`);
    obs = JSON.parse(r.stdout) as Record<string, any>;
  });

  after(async () => {
    if (h) await cleanup(h);
  });

  test('api.version and negotiation', () => {
    assert.deepEqual(obs['version'], ['1.51', '1.51', true]);
    assert.equal(obs['ping'], true);
  });

  test('containers.run returns stdout; a failing command raises ContainerError with stderr', () => {
    assert.equal(obs['run'], 'out\n');
    assert.deepEqual(obs['run_fail'], [2, 'bad\n']);
  });

  test('exec_run, logs, kill/wait, attach(logs), remove', () => {
    const r = obs['lifecycle'];
    assert.equal(r.exception, undefined, JSON.stringify(r));
    assert.equal(r.running, true);
    assert.deepEqual(r.exec, [3, 'e1\ne2\n']);
    assert.deepEqual(r.exec_demux, [0, 'o\n', 'e\n']);
    assert.equal(r.logs, 'a\nb\n');
    assert.equal(r.logs_stdout, 'a\n');
    assert.deepEqual(r.wait, { StatusCode: 137, Error: null });
    assert.equal(r.attach_logs, 'a\nb\n');
    assert.equal(r.after_remove, 'NotFound');
  });

  test('attach_socket: stdin in, multiplexed stdout out', () => {
    assert.deepEqual(obs['attach_stdin'], [[1, 0, 0, 0, 0, 0, 0, 7], 'got:hi\n', 0]);
  });

  test('images.list and ImageNotFound', () => {
    assert.equal(obs['image_missing'], 'ImageNotFound');
    assert.deepEqual(obs['images'], ['busybox:latest']);
  });

  test('volumes create/list/remove', () => {
    assert.deepEqual(obs['volumes'], ['pyvol', { a: 'b' }, ['pyvol'], []]);
  });
});

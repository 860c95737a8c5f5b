/**
 * Compat suite: dockerode 4.x (docker-modem) against berthd: ping, create + attach with
 * hijack:true + start + demux, exec with hijack, list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Duplex } from 'node:stream';

import Docker from 'dockerode';

import { cleanup, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, startDaemon, type TestDaemon } from '../integration/harness.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'));

/** Demultiplexes a Docker stream with dockerode's own demuxer until it ends. */
async function collect(d: Docker, stream: NodeJS.ReadableStream): Promise<{ out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (b: Buffer) => (o += b.toString()));
  err.on('data', (b: Buffer) => (e += b.toString()));
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
    stream.on('error', reject);
  });
  d.modem.demuxStream(stream, out, err);
  await ended;
  return { out: o, err: e };
}

describe('dockerode against berthd', { skip }, () => {
  let h: TestDaemon;
  let d: Docker;

  before(async () => {
    h = await startDaemon();
    await importBusybox(h);
    d = new Docker({ socketPath: h.socket });
  });

  after(async () => {
    if (h) await cleanup(h);
  });

  test('ping', async () => {
    assert.equal(String(await d.ping()), 'OK');
  });

  test('create + attach (hijack) + start: stdin in, demuxed stdout/stderr out', async () => {
    const ct = await d.createContainer({
      Image: 'busybox',
      Cmd: ['sh', '-c', 'read x; echo out:$x; echo err:$x >&2; exit 3'],
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = (await ct.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    const got = collect(d, stream);
    await ct.start();
    stream.end('hello\n'); // half-close: the container's stdin gets EOF, output keeps flowing
    assert.deepEqual(await got, { out: 'out:hello\n', err: 'err:hello\n' });
    assert.deepEqual(await ct.wait(), { StatusCode: 3, Error: null });
    await ct.remove();
  });

  test('exec with hijack: demuxed output and ExitCode', async () => {
    const ct = await d.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], name: 'dk-exec' });
    await ct.start();
    const ex = await ct.exec({ Cmd: ['sh', '-c', 'echo x1; echo x2 >&2; exit 6'], AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: false });
    assert.deepEqual(await collect(d, stream), { out: 'x1\n', err: 'x2\n' });
    const info = await ex.inspect();
    assert.equal(info.ExitCode, 6);
    assert.equal(info.Running, false);
    const withStdin = await ct.exec({ Cmd: ['sh', '-c', 'cat; echo end'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const s2 = (await withStdin.start({ hijack: true, stdin: true })) as unknown as Duplex;
    const got = collect(d, s2);
    s2.end('piped\n');
    assert.deepEqual(await got, { out: 'piped\nend\n', err: '' });
  });

  test('listContainers (all and running) and errors with status codes', async () => {
    const all = await d.listContainers({ all: true });
    const mine = all.find((c) => c.Names.includes('/dk-exec'));
    assert.ok(mine, JSON.stringify(all));
    assert.equal(mine.State, 'running');
    assert.equal(mine.Image, 'busybox');
    assert.match(mine.Id, /^[0-9a-f]{64}$/);
    const running = await d.listContainers();
    assert.ok(running.every((c) => c.State === 'running'));
    const filtered = await d.listContainers({ all: true, filters: JSON.stringify({ name: ['dk-exec'] }) });
    assert.equal(filtered.length, 1);
    await assert.rejects(d.getContainer('no-such-container').inspect(), (e: { statusCode?: number; message?: string }) => {
      assert.equal(e.statusCode, 404);
      assert.match(String(e.message), /No such container: no-such-container/);
      return true;
    });
    await d.getContainer('dk-exec').remove({ force: true });
    await assert.rejects(d.getContainer('dk-exec').kill(), (e: { statusCode?: number }) => e.statusCode === 404);
  });
});

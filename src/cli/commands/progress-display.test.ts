import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';

import type { Cli } from '../context.js';
import { displayProgress } from './images.js';

function fakeCli(tty: boolean): { cli: Cli; text: () => string } {
  let buf = '';
  const out = Object.assign(new Writable({ write(c: Buffer, _e, cb) { buf += c.toString(); cb(); } }), { isTTY: tty });
  const cli: Cli = {
    out,
    err: new PassThrough(),
    stdin: new PassThrough(),
    client: () => Promise.reject(new Error('no daemon')),
    print: (s) => out.write(s),
    getenv: () => undefined,
  };
  return { cli, text: () => buf };
}

async function* pullMessages(): AsyncGenerator<Record<string, unknown>> {
  yield { status: 'Pulling from app', id: 'v1' };
  yield { status: 'Pulling fs layer', progressDetail: {}, id: 'aaaaaaaaaaaa' };
  yield { status: 'Pulling fs layer', progressDetail: {}, id: 'bbbbbbbbbbbb' };
  yield { status: 'Downloading', progressDetail: { current: 500, total: 1000 }, progress: '[=====>    ]  500B/1kB', id: 'aaaaaaaaaaaa' };
  yield { status: 'Download complete', progressDetail: {}, id: 'aaaaaaaaaaaa' };
  yield { status: 'Pull complete', progressDetail: {}, id: 'aaaaaaaaaaaa' };
  yield { status: 'Pull complete', progressDetail: {}, id: 'bbbbbbbbbbbb' };
  yield { status: 'Digest: sha256:abc' };
  yield { status: 'Status: Downloaded newer image for app:v1' };
}

test('not a terminal: one plain line per status, progress updates left out', async () => {
  const { cli, text } = fakeCli(false);
  await displayProgress(cli, pullMessages());
  assert.equal(text(), [
    'v1: Pulling from app',
    'aaaaaaaaaaaa: Pulling fs layer',
    'bbbbbbbbbbbb: Pulling fs layer',
    'aaaaaaaaaaaa: Download complete',
    'aaaaaaaaaaaa: Pull complete',
    'bbbbbbbbbbbb: Pull complete',
    'Digest: sha256:abc',
    'Status: Downloaded newer image for app:v1',
    '',
  ].join('\n'));
  assert.ok(!text().includes('\x1b['));
});

test('a terminal: each layer keeps one line, rewritten in place with its bar', async () => {
  const { cli, text } = fakeCli(true);
  await displayProgress(cli, pullMessages());
  const t = text();
  // layer a's line is two lines up when b's line exists: cursor up 2, clear, rewrite, back down
  assert.ok(t.includes('\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading [=====>    ]  500B/1kB\r\x1b[2B'), JSON.stringify(t));
  assert.ok(t.includes('\x1b[1A\r\x1b[2Kbbbbbbbbbbbb: Pull complete\r\x1b[1B'), JSON.stringify(t));
  assert.equal(t.split('\n').length - 1, 5, 'v1, two layers, digest, status: one line each');
});

test('an error message in the stream fails with its text', async () => {
  const { cli } = fakeCli(false);
  async function* failing(): AsyncGenerator<Record<string, unknown>> {
    yield { status: 'Pulling fs layer', id: 'aaaaaaaaaaaa' };
    yield { error: 'fetching blob sha256:x: no data received for 2s', errorDetail: { message: 'fetching blob sha256:x: no data received for 2s' } };
  }
  await assert.rejects(displayProgress(cli, failing()), /no data received for 2s/);
});

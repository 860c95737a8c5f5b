import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseK8sLine, readK8sLog, toUnixNano } from './k8s-log.js';

test('parses full and partial records back into the bytes written', () => {
  const a = parseK8sLine('2026-11-25T02:09:03.398668425+00:00 stdout F hi');
  assert.equal(a?.stream, 'stdout');
  assert.equal(a?.data.toString(), 'hi\n');
  assert.equal(a?.time, '2026-11-25T02:09:03.398668425Z');
  const p = parseK8sLine('2026-11-25T02:09:03.398668425+00:00 stderr P no newline');
  assert.equal(p?.data.toString(), 'no newline');
  const empty = parseK8sLine('2026-11-25T02:09:03.398668425+00:00 stdout F ');
  assert.equal(empty?.data.toString(), '\n');
  assert.equal(parseK8sLine('garbage'), undefined);
});

test('unix nanos keep sub-millisecond precision', () => {
  assert.equal(toUnixNano('1970-01-01T00:00:01.000000123Z'), 1_000_000_123n);
});

test('follow yields appended records and stops when told', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'k8slog-'));
  const f = join(dir, 'ctr.log');
  await writeFile(f, '2026-11-25T02:09:03.1+00:00 stdout F one\n');
  let stop!: () => void;
  const stopWhen = new Promise<void>((r) => (stop = r));
  const got: string[] = [];
  const done = (async () => {
    for await (const r of readK8sLog(f, { follow: true, stopWhen, pollMs: 20 })) got.push(r.data.toString());
  })();
  await new Promise((r) => setTimeout(r, 50));
  await appendFile(f, '2026-11-25T02:09:04.1+00:00 stderr F two\n');
  await new Promise((r) => setTimeout(r, 80));
  stop();
  await done;
  assert.deepEqual(got, ['one\n', 'two\n']);
});

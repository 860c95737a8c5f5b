import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, appendFile, readFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogPump, readJsonLog, jsonLogLine, parseJsonLogLine } from './json-log.js';

const rec = (t: string, stream: string, text: string) => `2026-11-25T02:09:0${t}.000000001+00:00 ${stream} F ${text}\n`;

test('json-file lines round-trip', () => {
  const line = jsonLogLine({ stream: 'stderr', data: Buffer.from('héllo\n'), time: '2026-01-01T00:00:00.000000001Z' });
  assert.equal(line, '{"log":"héllo\\n","stream":"stderr","time":"2026-01-01T00:00:00.000000001Z"}\n');
  const back = parseJsonLogLine(line.trim());
  assert.equal(back?.data.toString(), 'héllo\n');
  assert.equal(parseJsonLogLine('{"log":1}'), undefined);
});

test('pump copies the spool, resumes from its offset, and rotates by size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jsonlog-'));
  await mkdir(join(dir, 'bundle'));
  const spool = join(dir, 'ctr.log');
  const json = join(dir, 'c-json.log');
  await writeFile(spool, rec('1', 'stdout', 'one') + rec('2', 'stderr', 'two') + '2026-11-25T02:09:03.0+00:00 stdout F partial-no-newline');
  const mk = () => new LogPump(spool, json, join(dir, 'offset'), join(dir, 'bundle'), { maxSize: 200, maxFile: 3 }, () => undefined);
  await mk().drainOnce();
  let text = await readFile(json, 'utf8');
  assert.equal(text.split('\n').filter(Boolean).length, 2, 'an incomplete record waits');
  await appendFile(spool, '\n' + rec('4', 'stdout', 'x'.repeat(150)));
  await mk().drainOnce(); // a new pump (daemon restart) resumes from the saved offset
  assert.ok(existsSync(`${json}.1`), 'rotated once max-size was reached');
  const got: string[] = [];
  for await (const r of readJsonLog(json, 3, { follow: false })) got.push(r.data.toString().trim());
  assert.deepEqual(got, ['one', 'two', 'partial-no-newline', 'x'.repeat(150)]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { bytesSize, ellipsis, humanDuration, humanSize, parseBytes, renderList, tabwrite, timeAgo } from './format.js';

test('humanSize: decimal units with 3 significant digits', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1234), '1.23kB');
  assert.equal(humanSize(4_261_000), '4.26MB');
  assert.equal(humanSize(1_230_000), '1.23MB');
  assert.equal(humanSize(12_000_000), '12MB');
  assert.equal(humanSize(77_800_000), '77.8MB');
  assert.equal(humanSize(1_500_000_000), '1.5GB');
  assert.equal(bytesSize(1536), '1.5KiB');
  assert.equal(parseBytes('64m'), 64 * 1024 * 1024);
  assert.equal(parseBytes('1g'), 1024 ** 3);
  assert.equal(parseBytes('512'), 512);
});

test('humanDuration follows docker units', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(3000), '3 seconds');
  assert.equal(humanDuration(65_000), 'About a minute');
  assert.equal(humanDuration(5 * 60_000), '5 minutes');
  assert.equal(humanDuration(59 * 60_000), '59 minutes');
  assert.equal(humanDuration(60 * 60_000), 'About an hour');
  assert.equal(humanDuration(5 * 3600_000), '5 hours');
  assert.equal(humanDuration(3 * 86400_000), '3 days');
  assert.equal(humanDuration(20 * 86400_000), '2 weeks');
  assert.equal(humanDuration(100 * 86400_000), '3 months');
  assert.equal(humanDuration(800 * 86400_000), '2 years');
  assert.equal(timeAgo(1000, 1000_000 + 120_000), '2 minutes ago');
});

test('ellipsis truncates with …', () => {
  assert.equal(ellipsis('sleep 1000000000000000000', 20), 'sleep 1000000000000…');
  assert.equal(ellipsis('short', 20), 'short');
});

test('tabwrite aligns columns with min width 10 and padding 3', () => {
  const out = tabwrite('CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tweb');
  assert.equal(out, 'CONTAINER ID   IMAGE     NAMES\nabc            busybox   web');
});

test('renderList: default table, custom table with headers, raw template, json', () => {
  const spec = { defaultTable: '{{.ID}}\t{{.Name}}', headers: { ID: 'CONTAINER ID', Name: 'NAMES' } };
  const items = [{ ID: 'abc', Name: 'web' }, { ID: 'def', Name: 'db' }];
  assert.equal(renderList('', items, spec), 'CONTAINER ID   NAMES\nabc            web\ndef            db\n');
  assert.equal(renderList('table {{.Name}}\\t{{.ID}}', items, spec), 'NAMES     CONTAINER ID\nweb       abc\ndb        def\n');
  assert.equal(renderList('{{.Name}}', items, spec), 'web\ndb\n');
  assert.equal(renderList('json', [{ a: 1 }], spec), '{"a":1}\n');
  assert.equal(renderList('table {{.RunningFor}}', [{ RunningFor: 'x' }], spec), 'RUNNING FOR\nx\n');
  assert.equal(renderList('', [], spec), 'CONTAINER ID   NAMES\n');
});

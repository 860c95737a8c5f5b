import assert from 'node:assert/strict';
import { test } from 'node:test';

import { markdown, ratio, summarize, svg, table, verdict, type MetricResult } from './report.js';

test('summarize: median of odd and even counts, min and max', () => {
  assert.deepEqual(summarize([5, 1, 3]), { median: 3, min: 1, max: 5, n: 3, samples: [5, 1, 3] });
  assert.equal(summarize([4, 1, 3, 2]).median, 2.5);
  assert.throws(() => summarize([]));
});

const res = (target: MetricResult['metric']['target'], docker: number[], berth: number[]): MetricResult => ({
  metric: { id: 'm', title: 'm', unit: 'ms', better: 'lower', ...(target ? { target } : {}) },
  byClient: { docker: { summary: summarize(docker) }, berth: { summary: summarize(berth) }, podman: { error: 'boom\nmore' } },
});

test('ratio and verdict against Docker in the same run', () => {
  const r = res({ text: '≤ 0.25×', ratioMax: 0.25 }, [100, 120, 80], [20, 30, 25]);
  assert.equal(ratio(r, 'berth'), 0.25);
  assert.equal(verdict(r, 'berth'), 'met');
  assert.equal(verdict(res({ text: '≤ 0.25×', ratioMax: 0.25 }, [100], [26]), 'berth'), 'missed');
  assert.equal(verdict(res({ text: '≥ 2.5×', ratioMin: 2.5 }, [100], [200]), 'berth'), 'missed');
  assert.equal(verdict(res({ text: '≤ 60 ms', absMax: 60 }, [500], [59]), 'berth'), 'met');
  assert.equal(ratio(r, 'podman'), undefined);
  assert.equal(verdict(res(undefined, [1], [2]), 'berth'), undefined);
});

test('table, markdown and svg show values, errors and misses', () => {
  const r = res({ text: '≤ 0.25×', ratioMax: 0.25 }, [100], [50]);
  const t = table([r], ['docker', 'podman', 'berth']);
  assert.match(t, /berth\s+50\.0\s+50\.0–50\.0\s+1\s+0\.50×\s+≤ 0\.25×\s+MISSED/);
  assert.match(t, /podman\s+error.*boom/);
  assert.match(markdown([r], ['docker', 'podman', 'berth']), /\| 0\.50× \| ≤ 0\.25× ✗ missed \|/);
  const s = svg([r], ['docker', 'podman', 'berth'], 'a <b> & c');
  assert.match(s, /^<svg /);
  assert.match(s, /a &lt;b&gt; &amp; c/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ApiClient } from '../client/index.js';
import { startDaemon } from './daemon-start.js';

test('startDaemon spawns <binDir>/berthd.js, logs to <data-root>/berthd.log and waits for /_ping', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-start-'));
  const sock = path.join(dir, 'd.sock');
  fs.writeFileSync(path.join(dir, 'berthd.js'), `
    const http = require('node:http');
    console.log('fake berthd', process.argv.slice(2).join(' '));
    const s = http.createServer((req, res) => { res.setHeader('Api-Version', '1.51'); res.end('OK'); });
    setTimeout(() => s.listen(${JSON.stringify(sock)}), 100);
    setTimeout(() => process.exit(0), 3000);
  `.replace(/^/, ''));
  fs.renameSync(path.join(dir, 'berthd.js'), path.join(dir, 'berthd.cjs'));
  fs.writeFileSync(path.join(dir, 'berthd.js'), `import('./berthd.cjs');`);
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
  const c = new ApiClient({ host: `unix://${sock}` });
  try {
    await startDaemon(c, { binDir: dir, dataRoot: path.join(dir, 'root'), timeoutMs: 5000 });
    const p = await c.ping();
    assert.equal(p.apiVersion, '1.51');
    await new Promise((r) => setTimeout(r, 50));
    assert.match(fs.readFileSync(path.join(dir, 'root', 'berthd.log'), 'utf8'), /fake berthd --data-root/);
  } finally {
    c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('startDaemon gives up when the daemon exits without listening', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-start-'));
  fs.writeFileSync(path.join(dir, 'berthd.js'), 'process.exit(1)');
  const c = new ApiClient({ host: `unix://${path.join(dir, 'none.sock')}` });
  try {
    await assert.rejects(startDaemon(c, { binDir: dir, dataRoot: dir, timeoutMs: 3000 }), /Cannot connect/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

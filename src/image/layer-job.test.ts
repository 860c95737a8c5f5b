import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

import { makeTar } from '../snapshot/test-helpers.js';
import { runLayerJob, warmLayerWorkers, type LayerJob } from './layer-job.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A blob server: `/ok/<i>` sends blob i, `/slow` sends half a blob and then nothing. */
async function serve(blobs: Buffer[]): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const m = /^\/ok\/(\d+)$/.exec(req.url ?? '');
    if (m) {
      res.writeHead(200, { 'content-length': String(blobs[Number(m[1])]!.length) });
      res.end(blobs[Number(m[1])]);
      return;
    }
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-length': String(blobs[0]!.length) });
      res.write(blobs[0]!.subarray(0, blobs[0]!.length >> 1));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  return { server, base: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` };
}

test('more layer jobs than workers run at once; a bad or aborted one does not disturb the others', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'layer-job-'));
  const n = availableParallelism() * 2 + 1;
  const blobs: Buffer[] = [];
  for (let i = 0; i < n; i++) blobs.push(await makeTar([{ name: `f${i}`, content: Buffer.alloc(3 << 20, i) }]));
  const { server, base } = await serve(blobs);
  try {
    warmLayerWorkers(n);
    const job = (i: number): LayerJob => ({
      url: `${base}/ok/${i}`, headers: {}, idleTimeoutMs: 30_000, digest: sha(blobs[i]!), size: blobs[i]!.length,
      blobTmp: join(dir, `blob-${i}`), layerDir: join(dir, `layer-${i}`),
    });
    const ac = new AbortController();
    const goods = blobs.map((_, i) => runLayerJob(job(i), { signal: new AbortController().signal }));
    // a digest mismatch, and a job that stalls and is aborted, share the workers with the good ones
    const bad = runLayerJob({ ...job(1), digest: sha(Buffer.from('other')), blobTmp: join(dir, 'blob-bad'), layerDir: join(dir, 'layer-bad') }, { signal: new AbortController().signal });
    // checked at once: it settles (aborted) while the good ones still run
    const stalled = assert.rejects(runLayerJob({ ...job(0), url: `${base}/slow`, blobTmp: join(dir, 'blob-slow'), layerDir: join(dir, 'layer-slow') }, { signal: ac.signal }), { name: 'AbortError' });
    setTimeout(() => ac.abort(), 300);
    const results = await Promise.all(goods);
    results.forEach((r, i) => {
      assert.equal(r.t, 'done', JSON.stringify(r));
      if (r.t === 'done') {
        assert.equal(r.digest, sha(blobs[i]!));
        assert.equal(r.diffId, sha(blobs[i]!));
      }
    });
    for (let i = 0; i < n; i++) {
      assert.deepEqual(await readFile(join(dir, `blob-${i}`)), blobs[i]);
      assert.equal((await stat(join(dir, `layer-${i}`, `f${i}`))).size, 3 << 20);
    }
    const b = await bad;
    assert.equal(b.t, 'error');
    if (b.t === 'error') assert.match(b.err.message, /digest mismatch/);
    await stalled;
    // the pool still works after all that
    const again = await runLayerJob({ ...job(2), blobTmp: join(dir, 'blob-again'), layerDir: join(dir, 'layer-again') }, { signal: new AbortController().signal });
    assert.equal(again.t, 'done');
  } finally {
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

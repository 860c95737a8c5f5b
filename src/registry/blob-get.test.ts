import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import { isKind } from '../base/errors.js';
import { getBlobResponse } from './blob-get.js';

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

async function body(res: { body: AsyncIterable<Buffer> }): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of res.body) parts.push(c);
  return Buffer.concat(parts).toString();
}

test('blob GET follows redirects; authorization goes along only within the origin', async () => {
  const seen: Array<{ url: string; auth: string | undefined }> = [];
  const storage = await serve((req, res) => {
    seen.push({ url: `storage${req.url}`, auth: req.headers.authorization });
    res.end('blob bytes');
  });
  const registry = await serve((req, res) => {
    seen.push({ url: `registry${req.url}`, auth: req.headers.authorization });
    if (req.url === '/v2/r/blobs/a') res.writeHead(307, { location: '/v2/r/blobs/b' }).end();
    // another origin (localhost vs 127.0.0.1 and another port): the token must not leak there
    else res.writeHead(302, { location: `http://localhost:${storage.port}/data?sig=1` }).end();
  });
  try {
    const r = await getBlobResponse(`http://127.0.0.1:${registry.port}/v2/r/blobs/a`, { authorization: 'Bearer T', 'user-agent': 'x' }, { headTimeoutMs: 5000 });
    assert.equal(r.status, 200);
    assert.equal(await body(r), 'blob bytes');
    assert.deepEqual(seen, [
      { url: 'registry/v2/r/blobs/a', auth: 'Bearer T' },
      { url: 'registry/v2/r/blobs/b', auth: 'Bearer T' },
      { url: 'storage/data?sig=1', auth: undefined },
    ]);
  } finally {
    for (const s of [registry, storage]) {
      s.server.closeAllConnections();
      s.server.close();
    }
  }
});

test('blob GET: no response head within the timeout is deadline-exceeded; a refused connection is unavailable', async () => {
  const silent = await serve(() => undefined);
  try {
    await assert.rejects(getBlobResponse(`http://127.0.0.1:${silent.port}/v2/r/blobs/a`, {}, { headTimeoutMs: 200 }), (err: Error) => {
      assert.ok(isKind(err, 'deadline-exceeded'));
      assert.match(err.message, /GET http:\/\/127\.0\.0\.1:\d+\/v2\/r\/blobs\/a: no response from the registry within 0s/);
      return true;
    });
  } finally {
    silent.server.closeAllConnections();
    silent.server.close();
  }
  const port = silent.port;
  await assert.rejects(getBlobResponse(`http://127.0.0.1:${port}/v2/r/blobs/a`, {}, { headTimeoutMs: 2000 }), (err: Error) => {
    assert.ok(isKind(err, 'unavailable'));
    assert.match(err.message, /ECONNREFUSED/);
    return true;
  });
});

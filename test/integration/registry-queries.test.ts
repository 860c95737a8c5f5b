/**
 * `GET /distribution/{name}/json` and `GET /images/search` against a real berthd and Debian's
 * docker-registry on loopback, through raw HTTP, the docker CLI and docker-py.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';

import { rawRequest } from '../compat/compat-util.js';
import { startRegistry, stopRegistry, type Registry } from './registry-helpers.js';
import { cleanup, findBinary, firstSkip, importBusybox, requireBinary, requireBuilt, requireRoot, runCommand, startDaemon, type TestDaemon } from './harness.js';

const DOCKER = '/usr/local/bin/docker';
const skip = firstSkip(requireRoot(), requireBuilt(), requireBinary('conmon'), requireBinary('docker-registry'), requireBinary(DOCKER));

/** GET on the daemon socket, the answer's JSON parsed. */
async function get(h: TestDaemon, path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await rawRequest(h, 'GET', path);
  return { status: r.status, json: JSON.parse(r.body) as Record<string, unknown> };
}

test('distribution inspect and search against a loopback registry', { skip, timeout: 180_000 }, async (t) => {
  const h = await startDaemon();
  let reg: Registry | undefined;
  t.after(async () => {
    await stopRegistry(reg);
    await cleanup(h);
  });
  await importBusybox(h);
  reg = await startRegistry(h.baseDir, 'registry');
  const repo = `127.0.0.1:${reg.port}/bb`;
  const env = { DOCKER_HOST: h.host, DOCKER_CONFIG: join(h.baseDir, 'docker-config') };
  const docker = (args: string[]) => runCommand(DOCKER, args, { env, timeoutMs: 60_000 });

  assert.equal((await docker(['tag', 'busybox', `${repo}:1`])).code, 0);
  const push = await docker(['push', `${repo}:1`]);
  assert.equal(push.code, 0, push.stderr);
  const pushed = /digest: (sha256:[0-9a-f]{64}) size: (\d+)/.exec(push.stdout);
  assert.ok(pushed, push.stdout);

  // Raw HTTP: the descriptor is the pushed manifest, the platform comes from its config.
  const d = await get(h, `/v1.51/distribution/${repo}:1/json`);
  assert.equal(d.status, 200, JSON.stringify(d.json));
  const desc = d.json['Descriptor'] as { mediaType: string; digest: string; size: number };
  assert.equal(desc.digest, pushed[1]);
  assert.equal(desc.size, Number(pushed[2]));
  assert.match(desc.mediaType, /manifest/);
  assert.deepEqual(d.json['Platforms'], [{ architecture: 'amd64', os: 'linux' }]);
  // By digest too.
  const byDigest = await get(h, `/distribution/${repo}@${pushed[1]}/json`);
  assert.equal((byDigest.json['Descriptor'] as { digest: string }).digest, pushed[1]);

  // An index: platforms come from its entries.
  const manifest = await (await fetch(`http://127.0.0.1:${reg.port}/v2/bb/manifests/1`, { headers: { accept: desc.mediaType } })).text();
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ],
  });
  assert.equal(createHash('sha256').update(manifest).digest('hex'), desc.digest.slice(7));
  const put = await fetch(`http://127.0.0.1:${reg.port}/v2/bb/manifests/multi`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: index });
  assert.equal(put.status, 201, await put.text());
  const multi = await get(h, `/distribution/${repo}:multi/json`);
  assert.equal(multi.status, 200, JSON.stringify(multi.json));
  assert.equal((multi.json['Descriptor'] as { mediaType: string }).mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal((multi.json['Descriptor'] as { digest: string }).digest, 'sha256:' + createHash('sha256').update(index).digest('hex'));
  assert.deepEqual(multi.json['Platforms'], [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux', variant: 'v8' }]);

  // Errors: unknown repository → 404 (docker-py NotFound), bad reference → 400.
  const missing = await get(h, `/distribution/${repo}-nope:1/json`);
  assert.equal(missing.status, 404);
  assert.match(String(missing.json['message']), /not found/);
  const bad = await get(h, '/distribution/Not%20A%20Ref/json');
  assert.equal(bad.status, 400);

  // Search: docker-registry implements only the v2 API, so there is no search: a clear error.
  const s = await docker(['search', `${repo}`]);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /Error response from daemon: 127\.0\.0\.1:\d+ does not support search/);
  // Docker Hub is unreachable from these machines: the transport error, quickly, no hang.
  const hub = await docker(['search', 'busybox']);
  assert.equal(hub.code, 1);
  assert.match(hub.stderr, /Error response from daemon: .*index\.docker\.io\/v1\/search\?q=busybox&n=25/);
  const limit = await docker(['search', '--limit', '500', 'busybox']);
  assert.equal(limit.code, 1);
  assert.match(limit.stderr, /limit 500 is outside the range of \[1, 100\]/);
  const filt = await get(h, '/images/search?term=busybox&filters=' + encodeURIComponent('{"bogus":["1"]}'));
  assert.equal(filt.status, 400);

  // A registry that does implement the v1 search API (a loopback server speaking it): the query,
  // the limit and the filters reach it / are applied, and the CLI renders the results.
  const queries: string[] = [];
  const search = createHttpServer((req, res) => {
    queries.push(req.url ?? '');
    const results = [
      { name: 'library/alpha', description: 'the first', star_count: 50, is_official: true, is_automated: false },
      { name: 'someone/beta', description: 'the second', star_count: 3, is_official: false, is_automated: true },
      { name: 'someone/gamma', description: 'the third', star_count: 20, is_official: false, is_automated: false },
    ];
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ num_results: results.length, query: 'x', results }));
  });
  await new Promise<void>((r) => search.listen(0, '127.0.0.1', () => r()));
  try {
    const sport = (search.address() as { port: number }).port;
    const found = await docker(['search', '--format', '{{.Name}} {{.StarCount}} {{.IsOfficial}}', `127.0.0.1:${sport}/some thing`]);
    assert.equal(found.code, 0, found.stderr);
    assert.deepEqual(found.stdout.trim().split('\n').map((l) => l.trimEnd()), ['library/alpha 50 [OK]', 'someone/beta 3', 'someone/gamma 20'], found.stdout);
    assert.equal(queries[0], '/v1/search?q=some%20thing&n=25');
    const starred = await docker(['search', '--filter', 'stars=10', '--filter', 'is-official=false', '--format', '{{.Name}}', `127.0.0.1:${sport}/x`]);
    assert.equal(starred.code, 0, starred.stderr);
    assert.equal(starred.stdout.trim(), 'someone/gamma');
    const limited = await get(h, `/images/search?term=${encodeURIComponent(`127.0.0.1:${sport}/x`)}&limit=1`);
    assert.equal(limited.status, 200);
    assert.equal((limited.json as unknown as unknown[]).length, 1);
    assert.match(queries[queries.length - 1]!, /&n=1$/);
  } finally {
    await new Promise<void>((r) => search.close(() => r()));
  }

  // docker-py: images.get_registry_data reads /distribution; search raises APIError.
  if (findBinary('python3')) {
    const py = [
      'import docker',
      `c = docker.DockerClient(base_url="${h.host}")`,
      `d = c.images.get_registry_data("${repo}:multi")`,
      'print(d.id, d.has_platform("linux/amd64"), d.has_platform("linux/s390x"))',
      'try:',
      '    c.images.search("busybox")',
      'except docker.errors.APIError as e:',
      '    print("APIError", "index.docker.io" in str(e.explanation))',
    ].join('\n');
    const r = await runCommand('python3', ['-c', py], { timeoutMs: 60_000 });
    if (!/No module named 'docker'/.test(r.stderr)) {
      assert.equal(r.code, 0, r.stderr);
      const [line1, line2] = r.stdout.trim().split('\n');
      assert.equal(line1, `${(multi.json['Descriptor'] as { digest: string }).digest} True False`);
      assert.equal(line2, 'APIError True');
    }
  }
  assert.ok(await h.ping());
});

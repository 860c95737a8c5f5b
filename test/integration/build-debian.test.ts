/**
 * The realistic build (issue 5 "Done when"): a Debian bookworm base made locally with
 * debootstrap (scripts/make-debian-image.sh, cached in /var/cache/berth-test), then
 * `RUN apt-get update && apt-get install nginx` reaching deb.debian.org from inside the build
 * container through the default bridge's NAT, COPY of a site, EXPOSE 80, CMD; the image then serves
 * the site through `run -d -p <port>:80`, fetched with Node's http client from 127.0.0.1.
 *
 * Cost here: debootstrap ~30 s on the first run only (the tarball is cached); the test itself
 * (import, apt-get install nginx from deb.debian.org, run, fetch) ~20 s.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { freePort } from './registry-helpers.js';
import { startDaemon, cleanup, repoRoot, requireRoot, requireBuilt, requireBinary, firstSkip, waitFor, type TestDaemon } from './harness.js';

const execFileP = promisify(execFile);
const cachedTar = join(process.env['BERTH_DEBIAN_CACHE'] ?? '/var/cache/berth-test', 'debian-bookworm-minbase.tar');
const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('crun'), existsSync(cachedTar) ? undefined : requireBinary('debootstrap'));
let h: TestDaemon | undefined;

after(async () => {
  if (h) await cleanup(h);
});

function fetchPage(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test('FROM debian:bookworm (debootstrap) + apt-get install nginx + COPY site, served through -p', { skip, timeout: 900_000 }, async () => {
  const made = await execFileP('bash', [join(repoRoot, 'scripts/make-debian-image.sh')], { timeout: 600_000 });
  const tarball = made.stdout.trim();
  assert.ok(existsSync(tarball), `make-debian-image.sh printed ${tarball}`);
  h = await startDaemon();
  await h.cliOk(['import', '--change', 'CMD ["bash"]', tarball, 'debian:bookworm'], { timeoutMs: 300_000 });
  const ctx = join(h.baseDir, 'site-ctx');
  mkdirSync(join(ctx, 'site'), { recursive: true });
  writeFileSync(join(ctx, 'site', 'index.html'), '<h1>served by berth-built nginx</h1>\n');
  writeFileSync(join(ctx, 'Dockerfile'), [
    'FROM debian:bookworm',
    'RUN apt-get update && apt-get install -y --no-install-recommends nginx && rm -rf /var/lib/apt/lists/*',
    'COPY site/ /var/www/html/',
    'EXPOSE 80',
    'CMD ["nginx", "-g", "daemon off;"]',
    '',
  ].join('\n'));
  const out = await h.cliOk(['build', '-t', 'site:1', ctx], { timeoutMs: 600_000 });
  assert.match(out, /Setting up nginx/);
  assert.match(out, /Successfully tagged site:1/);
  const port = await freePort();
  const id = (await h.cliOk(['run', '-d', '-p', `${port}:80`, 'site:1'])).trim();
  let page: { status: number; body: string } | undefined;
  await waitFor(async () => {
    page = await fetchPage(port).catch(() => undefined);
    return page !== undefined;
  }, 30_000);
  assert.equal(page!.status, 200);
  assert.equal(page!.body, '<h1>served by berth-built nginx</h1>\n');
  await h.cliOk(['rm', '-f', id]);
});

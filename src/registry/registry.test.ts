import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isKind } from '../base/errors.js';
import { parseChallenge, basicHeader } from './auth.js';
import { registryError } from './errors.js';
import { isLoopbackHost, RegistryClient } from './registry-client.js';

test('parseChallenge reads bearer and basic challenges', () => {
  const c = parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
  assert.equal(c?.scheme, 'bearer');
  assert.equal(c?.params['realm'], 'https://auth.docker.io/token');
  assert.equal(c?.params['scope'], 'repository:library/busybox:pull');
  assert.deepEqual(parseChallenge('Basic realm="x"'), { scheme: 'basic', params: { realm: 'x' } });
  assert.equal(parseChallenge(null), undefined);
  assert.equal(basicHeader({ username: 'a', password: 'b' }), `Basic ${Buffer.from('a:b').toString('base64')}`);
});

test('registryError uses Docker wording and kinds', () => {
  const mu = registryError(404, 'Not Found', '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', { repo: 'busybox', ref: 'busybox:nope' });
  assert.equal(mu.message, 'manifest for busybox:nope not found: manifest unknown: manifest unknown');
  assert.ok(isKind(mu, 'not-found'));
  const denied = registryError(401, 'Unauthorized', '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', { repo: 'x/app' });
  assert.match(denied.message, /^pull access denied for x\/app, repository does not exist or may require 'docker login'/);
  assert.ok(isKind(denied, 'unauthenticated'));
  assert.ok(isKind(registryError(500, 'Internal Server Error', 'oops', { repo: 'r' }), 'unavailable'));
});

test('loopback hosts use plain HTTP, others HTTPS', () => {
  assert.ok(isLoopbackHost('127.0.0.1:5000'));
  assert.ok(isLoopbackHost('localhost'));
  assert.ok(isLoopbackHost('[::1]:5000'));
  assert.ok(!isLoopbackHost('registry.example.com:5000'));
  assert.equal(new RegistryClient('127.0.0.1:5000').base, 'http://127.0.0.1:5000');
  assert.equal(new RegistryClient('docker.io').base, 'https://registry-1.docker.io');
});

test('bearer flow: a 401 challenge fetches a token and the request is retried with it', async () => {
  const calls: Array<{ url: string; auth: string | undefined }> = [];
  const fake = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const auth = (init?.headers as Record<string, string> | undefined)?.['authorization'];
    calls.push({ url, auth });
    if (url.startsWith('http://auth.test/token')) return new Response(JSON.stringify({ token: 'T0K' }), { status: 200 });
    if (auth !== 'Bearer T0K') {
      return new Response('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', {
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="http://auth.test/token",service="reg"' },
      });
    }
    const body = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}';
    return new Response(body, { status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  }) as typeof fetch;
  const c = new RegistryClient('127.0.0.1:1', { fetchFn: fake, credentials: { username: 'u', password: 'p' } });
  const m = await c.getManifest('lib/app', 'v1', { repo: 'lib/app' });
  assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.match(m.digest, /^sha256:[0-9a-f]{64}$/);
  const tokenCall = calls.find((x) => x.url.startsWith('http://auth.test/token'));
  assert.ok(tokenCall);
  assert.match(tokenCall.url, /scope=repository%3Alib%2Fapp%3Apull/);
  assert.equal(tokenCall.auth, `Basic ${Buffer.from('u:p').toString('base64')}`);
  assert.equal(calls.at(-1)!.auth, 'Bearer T0K');
});

test('a manifest whose bytes do not match the requested digest is rejected', async () => {
  const fake = (async () => new Response('{"schemaVersion":2,"layers":[]}', { status: 200 })) as typeof fetch;
  const c = new RegistryClient('127.0.0.1:1', { fetchFn: fake });
  await assert.rejects(c.getManifest('a', `sha256:${'0'.repeat(64)}`, { repo: 'a' }), /manifest verification failed/);
});

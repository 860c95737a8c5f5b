import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';

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

/**
 * A fake bearer registry for the token tests: tokens are `tok-<n>`; `grants` says which actions a
 * scope gets; tokens in `expired` are refused as invalid_token; every call is recorded.
 */
function bearerRegistry(opts: { grants?: (repo: string) => string[]; expired?: Set<string>; badPassword?: boolean } = {}) {
  const tokenCalls: string[][] = [];
  const calls: Array<{ method: string; url: string; auth: string | undefined }> = [];
  const granted = new Map<string, Map<string, Set<string>>>();
  const challenge = (scope: string, error?: string) => `Bearer realm="http://auth.test/token",service="reg",scope="${scope}"${error ? `,error="${error}"` : ''}`;
  const fake = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const auth = (init?.headers as Record<string, string> | undefined)?.['authorization'];
    const method = init?.method ?? 'GET';
    if (url.host === 'auth.test') {
      const scopes = url.searchParams.getAll('scope');
      tokenCalls.push(scopes);
      if (opts.badPassword) return new Response('{"details":"incorrect username or password"}', { status: 401 });
      await new Promise((r) => setTimeout(r, 5));
      const tok = `tok-${tokenCalls.length}`;
      const g = new Map<string, Set<string>>();
      for (const s of scopes) {
        const [, repo, actions] = s.split(':');
        const may = opts.grants ? opts.grants(repo!) : ['pull', 'push'];
        g.set(repo!, new Set(actions!.split(',').filter((a) => may.includes(a))));
      }
      granted.set(tok, g);
      return new Response(JSON.stringify({ token: tok, expires_in: 300 }), { status: 200 });
    }
    calls.push({ method, url: url.pathname + url.search, auth });
    if (url.pathname === '/v2/') {
      return auth ? new Response('{}', { status: 200 }) : new Response('', { status: 401, headers: { 'www-authenticate': challenge('') } });
    }
    const m = /^\/v2\/(.+?)\/(blobs|manifests)\//.exec(url.pathname)!;
    const repo = m[1]!;
    const need: Array<[string, string]> = [[repo, method === 'GET' || method === 'HEAD' ? 'pull' : 'push']];
    if (url.searchParams.get('from')) need.push([url.searchParams.get('from')!, 'pull']);
    const scope = need.map(([r, a]) => `repository:${r}:${a}`).join(' ');
    const unauthorized = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}';
    const tok = auth?.replace(/^Bearer /, '');
    if (!tok || !granted.has(tok)) return new Response(unauthorized, { status: 401, headers: { 'www-authenticate': challenge(scope) } });
    if (opts.expired?.has(tok)) return new Response(unauthorized, { status: 401, headers: { 'www-authenticate': challenge(scope, 'invalid_token') } });
    if (!need.every(([r, a]) => granted.get(tok)!.get(r)?.has(a))) {
      return new Response(unauthorized, { status: 401, headers: { 'www-authenticate': challenge(scope, 'insufficient_scope') } });
    }
    if (method === 'HEAD') return new Response(null, { status: 404 });
    if (method === 'POST') return url.searchParams.get('mount') ? new Response(null, { status: 201 }) : new Response(null, { status: 202, headers: { location: `/v2/${repo}/blobs/uploads/u1` } });
    if (method === 'PUT') return new Response(null, { status: 201, headers: { 'docker-content-digest': 'sha256:' + 'b'.repeat(64) } });
    return new Response('{"schemaVersion":2,"layers":[]}', { status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  }) as typeof fetch;
  return { fake, tokenCalls, calls };
}

const D = `sha256:${'a'.repeat(64)}`;
const ctxPush = { repo: 'alice/b', op: 'push' as const };

test('bearer: concurrent requests share one token request, later ones send the token up front', async () => {
  const reg = bearerRegistry();
  const c = new RegistryClient('127.0.0.1:1', { fetchFn: reg.fake, credentials: { username: 'u', password: 'p' } });
  await c.ping();
  const results = await Promise.all([1, 2, 3, 4, 5].map(() => c.hasBlob('alice/b', D)));
  assert.deepEqual(results, [false, false, false, false, false]);
  assert.deepEqual(reg.tokenCalls, [[], ['repository:alice/b:pull,push']]);
  assert.equal(reg.calls.filter((x) => x.method === 'HEAD').length, 5, 'no 401 round trip once the challenge is known');
});

test('bearer: a mount asks one token with both scopes; refused, it falls back to an upload', async () => {
  const reg = bearerRegistry({ grants: (repo) => (repo === 'secret/a' ? [] : ['pull', 'push']) });
  const c = new RegistryClient('127.0.0.1:1', { fetchFn: reg.fake });
  await c.ping();
  assert.equal(await c.uploadBlob('alice/b', D, 3, () => Readable.from([Buffer.from('abc')]), ctxPush, { mountFrom: 'alice/a' }), 'mounted');
  assert.deepEqual(reg.tokenCalls.at(-1), ['repository:alice/b:pull,push', 'repository:alice/a:pull']);
  const before = reg.tokenCalls.length;
  assert.equal(await c.uploadBlob('alice/b', D, 3, () => Readable.from([Buffer.from('abc')]), ctxPush, { mountFrom: 'secret/a' }), 'uploaded');
  // one token for the mount scopes (not asked again on insufficient_scope), one for the plain upload
  assert.deepEqual(reg.tokenCalls.slice(before), [['repository:alice/b:pull,push', 'repository:secret/a:pull'], ['repository:alice/b:pull,push']]);
  assert.deepEqual(reg.calls.slice(-3).map((x) => [x.method, x.url.replace(/\?.*/, '')]), [['POST', '/v2/alice/b/blobs/uploads/'], ['POST', '/v2/alice/b/blobs/uploads/'], ['PUT', '/v2/alice/b/blobs/uploads/u1']]);
});

test('bearer: a token without push rights is "denied"; an expired one is renewed', async () => {
  const reg = bearerRegistry({ grants: () => ['pull'] });
  const c = new RegistryClient('127.0.0.1:1', { fetchFn: reg.fake });
  await c.ping();
  await assert.rejects(c.putManifest('shared/x', 'v1', Buffer.from('{}'), 'application/vnd.oci.image.manifest.v1+json', { repo: 'shared/x', op: 'push' }), (e: Error) => {
    assert.equal(e.message, 'denied: requested access to the resource is denied');
    assert.ok(isKind(e, 'permission-denied'));
    return true;
  });
  assert.equal(reg.tokenCalls.length, 2, 'insufficient_scope: no second token request for the same scope');

  const expired = new Set<string>();
  const reg2 = bearerRegistry({ expired });
  const c2 = new RegistryClient('127.0.0.1:1', { fetchFn: reg2.fake });
  await c2.getManifest('alice/a', 'v1', { repo: 'alice/a' });
  for (let i = 1; i <= reg2.tokenCalls.length; i++) expired.add(`tok-${i}`);
  await c2.getManifest('alice/a', 'v1', { repo: 'alice/a' });
  assert.equal(reg2.tokenCalls.length, 2, 'renewed once');
  assert.equal(reg2.calls.at(-1)!.auth, 'Bearer tok-2');
});

test('bearer: refused credentials read as Docker prints them', async () => {
  const reg = bearerRegistry({ badPassword: true });
  const c = new RegistryClient('127.0.0.1:1', { fetchFn: reg.fake, credentials: { username: 'u', password: 'bad' } });
  await assert.rejects(c.ping(), (e: Error) => {
    assert.equal(e.message, 'Get "http://127.0.0.1:1/v2/": unauthorized: incorrect username or password');
    assert.ok(isKind(e, 'unauthenticated'));
    return true;
  });
});

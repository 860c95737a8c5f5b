/**
 * Helpers for the registry tests (issue 3): Debian's `docker-registry` on a free loopback port, a
 * recording HTTP proxy in front of it that can cut, stall or slow blob downloads, and a raw
 * distribution-API client that pushes hand-made images (e.g. zstd layers) without berth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A running docker-registry. */
export interface Registry {
  port: number;
  dir: string;
  proc: ChildProcess;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Start docker-registry on a free loopback port with a YAML config under `tmp/name`; waits for /v2/. */
export async function startRegistry(tmp: string, name: string, extraYaml = ''): Promise<Registry> {
  const port = await freePort();
  const dir = join(tmp, name);
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const cfg = join(dir, 'config.yml');
  writeFileSync(cfg, [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: berth-test-secret',
    extraYaml,
  ].join('\n'));
  const proc = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'ignore'] });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      await r.body?.cancel();
      return { port, dir, proc };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  proc.kill('SIGKILL');
  throw new Error(`docker-registry did not start on port ${port}`);
}

/** Stop a registry started by {@link startRegistry} (by its pid). */
export async function stopRegistry(r: Registry | undefined): Promise<void> {
  if (!r || r.proc.exitCode !== null) return;
  const done = new Promise((res) => r.proc.once('exit', res));
  r.proc.kill('SIGTERM');
  await Promise.race([done, new Promise((res) => setTimeout(res, 5000))]);
  if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
}

/** What the proxy does to a matching response body. */
export interface ProxyRule {
  /** Applies to requests whose method and path match. */
  method: string;
  path: RegExp;
  /** `cut`: close the connection after `afterBytes`; `stall`: stop sending after `afterBytes` and hold; `slow`: send `afterBytes` per 100 ms. */
  action: 'cut' | 'stall' | 'slow';
  afterBytes: number;
  /** How many requests it applies to (default: all). */
  times?: number;
}

/** One request seen by the proxy. */
export interface ProxiedRequest {
  method: string;
  url: string;
  status: number;
  /** The request's Range header, if any. */
  range?: string;
}

/**
 * A loopback HTTP proxy in front of a registry that records every request (method, URL, status)
 * and applies {@link ProxyRule}s to response bodies. The Host header is passed through, so the
 * registry's upload Locations point back at the proxy.
 */
export class RecordingProxy {
  readonly requests: ProxiedRequest[] = [];
  rules: ProxyRule[] = [];
  private server: Server | undefined;
  private readonly open = new Set<ServerResponse>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  /** Listen on a free loopback port. */
  async start(): Promise<void> {
    this.server = createHttpServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Requests whose method matches and whose URL path matches `path`. */
  count(method: string, path: RegExp): number {
    return this.requests.filter((r) => r.method === method && path.test(new URL(r.url, 'http://x').pathname)).length;
  }

  /** Requests whose method matches and whose whole URL (path and query) matches `re`. */
  matching(method: string, re: RegExp): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === method && re.test(r.url));
  }

  /** Stop listening and drop every connection (stalled ones included). */
  async close(): Promise<void> {
    for (const r of this.open) r.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const rec: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', status: 0, ...(req.headers.range ? { range: req.headers.range } : {}) };
    this.requests.push(rec);
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
    const rule = this.rules.find((r) => r.method === rec.method && r.path.test(new URL(rec.url, 'http://x').pathname) && (r.times === undefined || r.times > 0));
    if (rule && rule.times !== undefined) rule.times--;
    const up = httpRequest({ host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers: req.headers }, (ures) => {
      rec.status = ures.statusCode ?? 0;
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, ures.headers);
      if (!rule) {
        ures.pipe(res);
        return;
      }
      let sent = 0;
      let held = false;
      ures.on('data', (chunk: Buffer) => {
        if (held) return;
        if (rule.action === 'slow') {
          ures.pause();
          res.write(chunk);
          setTimeout(() => ures.resume(), Math.max(1, Math.ceil((chunk.length / rule.afterBytes) * 100)));
          return;
        }
        const room = rule.afterBytes - sent;
        if (chunk.length < room) {
          sent += chunk.length;
          res.write(chunk);
          return;
        }
        res.write(chunk.subarray(0, Math.max(0, room)));
        sent = rule.afterBytes;
        held = true;
        if (rule.action === 'cut') setTimeout(() => res.destroy(), 50);
        else ures.destroy(); // stall: the client's connection stays open with nothing more coming
      });
      ures.on('end', () => {
        if (!held) res.end();
      });
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }
}

/** `sha256:<hex>` of bytes. */
export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Upload one blob monolithically (POST then PUT ?digest=). Returns its digest. */
export async function pushRawBlob(base: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.body?.cancel();
  if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
  const url = new URL(start.headers.get('location')!, base);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status}`);
  return digest;
}

/** A layer for {@link pushRawImage}: the blob bytes, its media type and the sha256 of the plain tar. */
export interface RawLayer {
  bytes: Buffer;
  mediaType: string;
  diffId: string;
}

/** The OCI architecture of this host. */
export function ociArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/**
 * Push an image made by hand (OCI manifest and config) with the raw distribution API.
 * Returns the manifest digest and the config digest (the image id).
 */
export async function pushRawImage(base: string, repo: string, tag: string, layers: RawLayer[], cmd: string[] = ['/bin/sh']): Promise<{ manifestDigest: string; configDigest: string }> {
  const config = Buffer.from(JSON.stringify({
    architecture: ociArch(),
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: cmd, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'registry test' })),
  }));
  const configDigest = await pushRawBlob(base, repo, config);
  const descs = [];
  for (const l of layers) descs.push({ mediaType: l.mediaType, digest: await pushRawBlob(base, repo, l.bytes), size: l.bytes.length });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: descs,
  }));
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  await res.body?.cancel();
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status}`);
  return { manifestDigest: sha256(manifest), configDigest };
}

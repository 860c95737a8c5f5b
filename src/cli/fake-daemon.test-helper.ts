/**
 * Test helper: a tiny fake berthd on a UNIX socket in a tmp dir, with per-test route handlers,
 * request recording, and hijack support.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';

import { main } from './main.js';

/** One recorded request. */
export interface Recorded { method: string; path: string; query: URLSearchParams; body: string }

/** Route handler: return true when handled. */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse, body: string, url: URL) => boolean | void;
/** Upgrade handler for hijacked endpoints. */
export type UpgradeRoute = (req: http.IncomingMessage, socket: net.Socket, url: URL) => void;

/** A running fake daemon. */
export interface FakeDaemon {
  host: string;
  seen: Recorded[];
  close(): Promise<void>;
}

/** Start a fake daemon with the given routes (`/_ping` is built in). */
export async function startFakeDaemon(routes: Route[], upgrade?: UpgradeRoute): Promise<FakeDaemon> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cli-'));
  const sock = path.join(dir, 'berth.sock');
  const seen: Recorded[] = [];
  const strip = (p: string): string => p.replace(/^\/v\d+\.\d+/, '');
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const body = Buffer.concat(chunks).toString();
      const p = strip(url.pathname);
      seen.push({ method: req.method!, path: p, query: url.searchParams, body });
      res.setHeader('Api-Version', '1.51');
      if (p === '/_ping') {
        res.end(req.method === 'HEAD' ? undefined : 'OK');
        return;
      }
      const u2 = new URL(p + url.search, 'http://x');
      for (const r of routes) if (r(req, res, body, u2)) return;
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: `page not found: ${p}` }));
    });
  });
  const upgraded = new Set<net.Socket>();
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    upgraded.add(socket);
    const url = new URL(req.url!, 'http://x');
    const p = strip(url.pathname);
    seen.push({ method: req.method!, path: p, query: url.searchParams, body: '' });
    upgrade?.(req, socket, new URL(p + url.search, 'http://x'));
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return {
    host: `unix://${sock}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      for (const s of upgraded) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** JSON reply helper. */
export function reply(res: http.ServerResponse, status: number, body?: unknown): true {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(body === undefined ? undefined : JSON.stringify(body));
  return true;
}

/** Run the CLI in-process against a fake daemon; collects stdout/stderr. */
export async function runCli(host: string, argv: string[], stdin: string | undefined = undefined): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  const input = stdin === undefined ? new PassThrough() : Readable.from([Buffer.from(stdin)]);
  const code = await main({
    argv: ['-H', host, ...argv],
    env: {},
    stdout: out,
    stderr: err,
    stdin: input as never,
    binDir: '/nonexistent',
  });
  await new Promise((r) => setImmediate(r));
  return { code, out: o, err: e };
}

/**
 * Loopback registries (Debian's docker-registry, distribution 2.8) for the pull and push figures.
 * Each has its own storage directory and a fixed 127.0.0.1 port, so it can be restarted empty
 * between push repeats while the engines keep treating it as an insecure (plain HTTP) registry.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { childEnv, sleep, waitFor } from './proc.js';

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface Registry {
  /** `127.0.0.1:<port>`. */
  readonly addr: string;
  /** Stops it and deletes its storage, then starts it again, empty. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

async function up(addr: string): Promise<boolean> {
  try {
    const r = await fetch(`http://${addr}/v2/`);
    return r.status === 200;
  } catch {
    return false;
  }
}

/** Starts a registry in `dir` on `port`. */
export async function startRegistry(dir: string, port: number): Promise<Registry> {
  const addr = `127.0.0.1:${port}`;
  const storage = join(dir, 'storage');
  const config = join(dir, 'config.yml');
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    await mkdir(storage, { recursive: true });
    await writeFile(
      config,
      [
        'version: 0.1',
        'log:', '  level: error',
        'storage:', `  filesystem:`, `    rootdirectory: ${storage}`, '  delete:', '    enabled: true',
        'http:', `  addr: ${addr}`, '',
      ].join('\n'),
    );
    const fd = openSync(join(dir, 'registry.log'), 'a');
    try {
      child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd], env: childEnv(), detached: true });
      child.unref();
    } finally {
      closeSync(fd);
    }
    await waitFor(`registry on ${addr}`, () => up(addr), 15_000, 50);
  };
  const halt = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    await sleep(50);
  };
  await mkdir(dir, { recursive: true });
  await launch();
  return {
    addr,
    async reset() {
      await halt();
      await rm(storage, { recursive: true, force: true });
      await launch();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

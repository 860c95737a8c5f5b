/**
 * A fake Engine for the API edge's tests: records calls and serves canned objects. Not part of
 * the daemon (only test files import it).
 */
import { PassThrough, Readable } from 'node:stream';

import { conflict, notFound, notModified } from '../base/errors.js';
import type {
  AttachSession,
  Engine,
  Filters,
  Json,
  OutputChunk,
  SystemEvent,
} from '../engine/services.js';

/** A recorded engine call. */
export interface Call {
  method: string;
  args: unknown[];
}

/** The fake plus the knobs tests turn. */
export interface FakeEngine {
  engine: Engine;
  calls: Call[];
  /** Resolve pending waits with this exit code. */
  exit(code: number): void;
  /** Bytes each attach/exec session received on stdin, by session label. */
  stdinSeen: Map<string, Buffer>;
  /** Push a live event to /events subscribers. */
  emitEvent(ev: SystemEvent): void;
}

const TS = '2024-01-01T00:00:00.123456789Z';

/** Containers the fake knows: c1 (running, no TTY), tty1 (running, TTY), stopped1 (exited). */
const CONTAINERS: Record<string, { tty: boolean; running: boolean; created?: boolean }> = {
  ['a'.repeat(64)]: { tty: false, running: false, created: true },
  c1: { tty: false, running: true },
  tty1: { tty: true, running: true },
  stopped1: { tty: false, running: false },
};

function lookup(ref: string): { tty: boolean; running: boolean; created?: boolean } {
  const c = CONTAINERS[ref];
  if (!c) throw notFound(`No such container: ${ref}`);
  return c;
}

async function* gen<T>(items: T[]): AsyncGenerator<T> {
  for (const i of items) yield i;
}

/**
 * An echo session: stdin is echoed back as stdout ("echo:" prefix, no TTY) or raw (TTY); when
 * stdin ends, "bye\n" is written and the output ends.
 */
function echoSession(label: string, tty: boolean, seen: Map<string, Buffer>, onEnd?: () => void): AttachSession {
  const out = new PassThrough({ objectMode: true });
  const stdin = new PassThrough();
  seen.set(label, Buffer.alloc(0));
  stdin.on('data', (b: Buffer) => {
    seen.set(label, Buffer.concat([seen.get(label)!, b]));
    out.write({ stream: 'stdout', data: tty ? b : Buffer.concat([Buffer.from('echo:'), b]), time: TS } satisfies OutputChunk);
  });
  stdin.on('end', () => {
    out.write({ stream: 'stderr', data: Buffer.from('bye\n'), time: TS } satisfies OutputChunk);
    out.end();
    onEnd?.();
  });
  return {
    tty,
    output: out as AsyncIterable<OutputChunk>,
    stdin,
    close: () => {
      out.end();
    },
  };
}

/** Build a fresh fake engine. */
export function createFakeEngine(): FakeEngine {
  const calls: Call[] = [];
  const rec = (method: string, ...args: unknown[]): void => {
    calls.push({ method, args });
  };
  const waiters: Array<(code: number) => void> = [];
  const stdinSeen = new Map<string, Buffer>();
  const eventSubs = new Set<(e: SystemEvent) => void>();
  const exitAll = (code: number): void => {
    for (const w of waiters.splice(0)) w(code);
  };

  const engine: Engine = {
    containers: {
      async create(opts) {
        rec('containers.create', opts);
        return { Id: 'a'.repeat(64), Warnings: [] };
      },
      async list(opts) {
        rec('containers.list', opts);
        return [
          {
            Id: 'c'.repeat(64),
            Names: ['/c1'],
            Image: 'busybox',
            ImageID: 'sha256:' + 'b'.repeat(64),
            Command: 'sh',
            Created: 1700000000,
            Ports: [],
            Labels: {},
            State: 'running',
            Status: 'Up 2 minutes',
            HostConfig: { NetworkMode: 'default' },
            NetworkSettings: { Networks: {} },
            Mounts: [],
          },
        ];
      },
      async inspect(ref, opts) {
        rec('containers.inspect', ref, opts);
        if (ref === 'boom') throw new Error('secret internal detail');
        const c = lookup(ref);
        return { Id: ref, Name: '/' + ref, Config: { Tty: c.tty } };
      },
      async start(ref) {
        rec('containers.start', ref);
        const c = lookup(ref);
        if (c.running && !c.created) throw notModified('container already started');
      },
      async stop(ref, opts) {
        rec('containers.stop', ref, opts);
        if (!lookup(ref).running) throw notModified('container already stopped');
      },
      async restart(ref, opts) {
        rec('containers.restart', ref, opts);
        lookup(ref);
      },
      async kill(ref, signal) {
        rec('containers.kill', ref, signal);
        if (!lookup(ref).running) throw conflict(`Cannot kill container: ${ref}: container is not running`);
      },
      async remove(ref, opts) {
        rec('containers.remove', ref, opts);
        lookup(ref);
      },
      async wait(ref, condition) {
        rec('containers.wait', ref, condition);
        lookup(ref);
        const result = new Promise<{ StatusCode: number; Error: null }>((resolve) => {
          waiters.push((code) => resolve({ StatusCode: code, Error: null }));
        });
        return { ready: Promise.resolve(), result };
      },
      async logs(ref, opts) {
        rec('containers.logs', ref, opts);
        const c = lookup(ref);
        const chunks: OutputChunk[] = [
          { stream: 'stdout', data: Buffer.from('line one\nline '), time: '2024-01-01T00:00:00.5Z' },
          { stream: 'stdout', data: Buffer.from('two\n'), time: '2024-01-01T00:00:01Z' },
          { stream: 'stderr', data: Buffer.from('oops\n'), time: TS },
        ];
        return { tty: c.tty, chunks: gen(chunks) };
      },
      async attach(ref, opts) {
        rec('containers.attach', ref, opts);
        const c = lookup(ref);
        if (!c.running && !c.created) throw conflict('You cannot attach to a stopped container, start it first');
        // The created container "exits 0" once its stdin ends (echo session done).
        return echoSession(`attach:${ref}`, c.tty, stdinSeen, c.created ? () => setTimeout(() => exitAll(0), 10) : undefined);
      },
      async resize(ref, h, w) {
        rec('containers.resize', ref, h, w);
        lookup(ref);
      },
      async pause(ref) {
        rec('containers.pause', ref);
      },
      async unpause(ref) {
        rec('containers.unpause', ref);
      },
      async rename(ref, name) {
        rec('containers.rename', ref, name);
      },
      async update(ref, body) {
        rec('containers.update', ref, body);
        return { Warnings: [] };
      },
      async top(ref, psArgs) {
        rec('containers.top', ref, psArgs);
        return { Titles: ['PID', 'CMD'], Processes: [['1', 'sh']] };
      },
      async *stats(ref, opts) {
        rec('containers.stats', ref, opts);
        lookup(ref);
        for (let i = 0; i < 3; i++) yield { id: ref, read: TS, n: i };
      },
      async changes(ref) {
        rec('containers.changes', ref);
        return [{ Path: '/tmp', Kind: 0 }];
      },
      async export(ref) {
        rec('containers.export', ref);
        return Readable.from([Buffer.from('TARDATA')]);
      },
      async statPath(ref, path) {
        rec('containers.statPath', ref, path);
        lookup(ref);
        if (path !== '/etc/hosts') throw notFound(`Could not find the file ${path} in container ${ref}`);
        return { name: 'hosts', size: 12, mode: 0o644, mtime: '2024-01-01T00:00:00Z', linkTarget: '' };
      },
      async getArchive(ref, path) {
        rec('containers.getArchive', ref, path);
        lookup(ref);
        return {
          stat: { name: 'hosts', size: 12, mode: 0o644, mtime: '2024-01-01T00:00:00Z', linkTarget: '' },
          tar: Readable.from([Buffer.from('TAR:hosts')]),
        };
      },
      async putArchive(ref, path, tar, opts) {
        const chunks: Buffer[] = [];
        for await (const c of tar) chunks.push(c as Buffer);
        rec('containers.putArchive', ref, path, Buffer.concat(chunks).toString(), opts);
      },
      async prune(filters) {
        rec('containers.prune', filters);
        return { ContainersDeleted: [], SpaceReclaimed: 0 };
      },
      async execCreate(ref, opts) {
        rec('containers.execCreate', ref, opts);
        lookup(ref);
        return { Id: 'e'.repeat(64) };
      },
      async execStart(id, opts) {
        rec('containers.execStart', id, { Detach: opts.Detach, Tty: opts.Tty, ConsoleSize: opts.ConsoleSize });
        if (id !== 'e'.repeat(64)) throw notFound(`No such exec instance: ${id}`);
        if (opts.Detach) return undefined;
        return echoSession(`exec:${id}`, opts.Tty === true, stdinSeen);
      },
      async execResize(id, h, w) {
        rec('containers.execResize', id, h, w);
      },
      async execInspect(id) {
        rec('containers.execInspect', id);
        if (id !== 'e'.repeat(64)) throw notFound(`No such exec instance: ${id}`);
        return { ID: id, Running: false, ExitCode: 0, DetachKeys: '' };
      },
    },
    images: {
      async list(opts) {
        rec('images.list', opts);
        return [];
      },
      async inspect(ref) {
        rec('images.inspect', ref);
        if (ref === 'missing') throw notFound(`No such image: ${ref}`);
        return { Id: 'sha256:' + 'b'.repeat(64), RepoTags: [ref] };
      },
      async history(ref) {
        rec('images.history', ref);
        return [];
      },
      async tag(ref, repo, tag) {
        rec('images.tag', ref, repo, tag);
      },
      async remove(ref, opts) {
        rec('images.remove', ref, opts);
        return [{ Untagged: ref }];
      },
      async import(tar, opts) {
        const chunks: Buffer[] = [];
        for await (const c of tar) chunks.push(c as Buffer);
        const { signal: _s, ...rest } = opts;
        rec('images.import', Buffer.concat(chunks).toString(), rest);
        return 'sha256:' + 'd'.repeat(64);
      },
      async prune(filters) {
        rec('images.prune', filters);
        return { ImagesDeleted: [], SpaceReclaimed: 0 };
      },
    },
    volumes: {
      async list(filters: Filters) {
        rec('volumes.list', filters);
        return { Volumes: [], Warnings: null };
      },
      async create(body: Json) {
        rec('volumes.create', body);
        return { Name: body.Name ?? 'v', Driver: 'local' };
      },
      async inspect(name) {
        rec('volumes.inspect', name);
        throw notFound(`get ${name}: no such volume`);
      },
      async remove(name, force) {
        rec('volumes.remove', name, force);
      },
      async prune(filters) {
        rec('volumes.prune', filters);
        return { VolumesDeleted: [], SpaceReclaimed: 0 };
      },
    },
    system: {
      version() {
        return {
          Platform: { Name: 'berth' },
          Version: '28.2.2',
          ApiVersion: '1.51',
          MinAPIVersion: '1.24',
          GitCommit: 'deadbee',
          GoVersion: 'go1.24.0',
          Os: 'linux',
          Arch: 'amd64',
          KernelVersion: '6.1.0',
          BuildTime: '2024-01-01T00:00:00.000000000+00:00',
          Components: [
            {
              Name: 'Engine',
              Version: '28.2.2',
              Details: {
                ApiVersion: '1.51',
                MinAPIVersion: '1.24',
                GitCommit: 'deadbee',
                GoVersion: 'go1.24.0',
                Os: 'linux',
                Arch: 'amd64',
                BuildTime: '2024-01-01T00:00:00.000000000+00:00',
                KernelVersion: '6.1.0',
                Experimental: 'false',
              },
            },
          ],
        };
      },
      async info() {
        return { ID: 'x', Name: 'fake', OSType: 'linux' };
      },
      async df() {
        return { LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [] };
      },
      events(opts) {
        rec('system.events', { since: opts.since, until: opts.until, filters: opts.filters });
        const queue: SystemEvent[] = [];
        let wake: (() => void) | undefined;
        const sub = (e: SystemEvent): void => {
          queue.push(e);
          wake?.();
        };
        eventSubs.add(sub);
        return (async function* () {
          try {
            while (!opts.signal.aborted) {
              if (queue.length) {
                yield queue.shift()!;
                continue;
              }
              await new Promise<void>((r) => {
                wake = r;
                opts.signal.addEventListener('abort', () => r(), { once: true });
              });
            }
          } finally {
            eventSubs.delete(sub);
          }
        })();
      },
    },
    async commit(opts) {
      rec('commit', opts);
      return { Id: 'sha256:' + 'f'.repeat(64) };
    },
  };

  return {
    engine,
    calls,
    stdinSeen,
    exit: exitAll,
    emitEvent(ev) {
      for (const s of eventSubs) s(ev);
    },
  };
}

/**
 * CLI entry: global flags (-H/--host, -D, -l, -v), command dispatch with lazily imported command
 * modules (keeps `berth version` fast), host selection (-H, BERTH_HOST, default socket — never
 * DOCKER_HOST), embedded-daemon start, and docker-style error printing and exit codes.
 */
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { messageOf } from '../base/errors.js';
import { ApiClient, ApiError, ConnectionError, DEFAULT_HOST, type ApiClientOptions } from '../client/index.js';
import { UsageError } from './args.js';
import { StatusError, type Cli, type CommandFn } from './context.js';

/** CLI version string. */
export const CLI_VERSION = '0.1.0';

type Loader = () => Promise<CommandFn>;

const ver: Loader = async () => (await import('./commands/version.js')).version;
const sys = (n: string): Loader => async () => ((await import('./commands/system.js')) as unknown as Record<string, CommandFn>)[n]!;
const img = (n: string): Loader => async () => ((await import('./commands/images.js')) as unknown as Record<string, CommandFn>)[n]!;
const ctr = (n: string): Loader => async () => ((await import('./commands/containers.js')) as unknown as Record<string, CommandFn>)[n]!;
const run = (n: string): Loader => async () => ((await import('./commands/run.js')) as unknown as Record<string, CommandFn>)[n]!;
const vol = (n: string): Loader => async () => ((await import('./commands/volumes.js')) as unknown as Record<string, CommandFn>)[n]!;
const net = (n: string): Loader => async () => ((await import('./commands/networks.js')) as unknown as Record<string, CommandFn>)[n]!;
const bld: Loader = async () => (await import('./commands/build.js')).build;
const bldPrune: Loader = async () => (await import('./commands/build.js')).builderPrune;
const cp = (n: string): Loader => async () => ((await import('./commands/cp.js')) as unknown as Record<string, CommandFn>)[n]!;

/** Top-level commands. */
const TOP: Record<string, Loader> = {
  version: ver, info: sys('info'), events: sys('events'),
  ps: ctr('ps'), inspect: ctr('inspect'), stop: ctr('stop'), kill: ctr('kill'), restart: ctr('restart'),
  rm: ctr('rm'), logs: ctr('logs'), wait: ctr('wait'), top: ctr('top'), stats: ctr('stats'),
  pause: ctr('pause'), unpause: ctr('unpause'), rename: ctr('rename'), update: ctr('update'),
  diff: ctr('diff'), export: ctr('exportContainer'), commit: ctr('commit'), port: ctr('port'),
  images: img('images'), rmi: img('rmi'), tag: img('tag'), history: img('history'), import: img('importImage'),
  pull: img('pull'), save: img('save'), load: img('load'), push: img('push'), login: img('login'), logout: img('logout'),
  create: run('create'), run: run('run'), start: run('start'), exec: run('exec'), attach: run('attach'),
  cp: cp('cp'), build: bld,
};

/** Management commands: `container ls`, `image rm`, … */
const GROUPS: Record<string, Record<string, Loader>> = {
  container: {
    ls: ctr('ps'), list: ctr('ps'), ps: ctr('ps'), inspect: ctr('containerInspect'), rm: ctr('rm'), remove: ctr('rm'),
    prune: ctr('prune'), stop: ctr('stop'), kill: ctr('kill'), restart: ctr('restart'), logs: ctr('logs'),
    wait: ctr('wait'), top: ctr('top'), stats: ctr('stats'), pause: ctr('pause'), unpause: ctr('unpause'),
    rename: ctr('rename'), update: ctr('update'), diff: ctr('diff'), export: ctr('exportContainer'),
    commit: ctr('commit'), port: ctr('port'), create: run('create'), run: run('run'), start: run('start'),
    exec: run('exec'), attach: run('attach'), cp: cp('cp'),
  },
  image: {
    ls: img('images'), list: img('images'), inspect: img('imageInspect'), rm: img('rmi'), remove: img('rmi'),
    prune: img('prune'), history: img('history'), import: img('importImage'), tag: img('tag'), pull: img('pull'),
    save: img('save'), load: img('load'), push: img('push'),
  },
  volume: { create: vol('create'), ls: vol('ls'), list: vol('ls'), inspect: vol('inspect'), rm: vol('rm'), remove: vol('rm'), prune: vol('prune') },
  network: { create: net('create'), ls: net('ls'), list: net('ls'), inspect: net('inspect'), rm: net('rm'), remove: net('rm'), prune: net('prune'), connect: net('connect'), disconnect: net('disconnect') },
  system: { df: sys('df'), info: sys('info'), prune: sys('prune'), events: sys('events') },
  builder: { prune: bldPrune, build: bld },
};

/** Commands whose daemon errors print "berth: Error response from daemon: …" and exit 125 (docker run). */
const STATUS_125 = new Set(['run', 'create']);

const HELP = `
Usage:  berth [OPTIONS] COMMAND

A container engine that speaks the Docker Engine API

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  images      List images
  pull        Download an image from a registry
  version     Show the berth version information
  info        Display system-wide information

Management Commands:
  builder     Manage builds
  container   Manage containers
  image       Manage images
  system      Manage berth
  network     Manage networks
  volume      Manage volumes

Commands:
  attach commit cp create diff events export history import inspect kill logs pause port
  rename restart rm rmi start stats stop tag top unpause update wait

Global Options:
  -H, --host string   Daemon socket to connect to (default ${DEFAULT_HOST}; env BERTH_HOST)
  -D, --debug         Enable debug mode
  -v, --version       Print version information and quit
`;

/** Process-level dependencies (a seam for tests). */
export interface MainEnv {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: Cli['out'];
  stderr: Writable;
  stdin: Cli['stdin'];
  /** Directory holding berth.js/berthd.js (for starting the embedded daemon). */
  binDir: string;
}

/** Run the CLI; resolves with the exit code. */
export async function main(penv: MainEnv): Promise<number> {
  const argv = penv.argv;
  let host: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-H' || a === '--host') host = argv[++i];
    else if (a.startsWith('--host=')) host = a.slice(7);
    else if (a.startsWith('-H') && a.length > 2) host = a.slice(2).replace(/^=/, '');
    else if (a === '-D' || a === '--debug') continue;
    else if (a === '-l' || a === '--log-level' || a === '--config' || a === '--context' || a === '-c') i++;
    else if (a === '-v' || a === '--version') {
      penv.stdout.write(`Berth version ${CLI_VERSION}\n`);
      return 0;
    } else if (a === '-h' || a === '--help') {
      penv.stdout.write(HELP.slice(1));
      return 0;
    } else if (a.startsWith('-')) {
      penv.stderr.write(`unknown flag: ${a}\nSee 'berth --help'.\n`);
      return 125;
    } else break;
  }
  const explicitHost = host ?? penv.env['BERTH_HOST'];
  const cmd = argv[i];
  let rest = argv.slice(i + 1);
  if (!cmd || cmd === 'help') {
    penv.stdout.write(HELP.slice(1));
    return 0;
  }
  let loader = TOP[cmd];
  let shown = cmd;
  const group = GROUPS[cmd];
  if (group) {
    const sub = rest[0];
    if (!sub || sub === '--help' || !group[sub]) {
      const out = sub && !sub.startsWith('-') ? penv.stderr : penv.stdout;
      if (sub && !sub.startsWith('-') && sub !== '--help') out.write(`berth: unknown command: berth ${cmd} ${sub}\n\n`);
      out.write(`Usage:  berth ${cmd} COMMAND\n\nCommands:\n${Object.keys(group).map((k) => `  ${k}`).join('\n')}\n`);
      return sub && sub !== '--help' ? 125 : 0;
    }
    loader = group[sub];
    shown = `${cmd} ${sub}`;
    rest = rest.slice(1);
  }
  if (!loader) {
    penv.stderr.write(`berth: unknown command: berth ${cmd}\n\nRun 'berth --help' for more information\n`);
    return 125;
  }
  const dd = rest.indexOf('--');
  const positionalTail = /(^| )(run|create|exec|top)$/.test(shown);
  const helpAt = positionalTail ? (rest[0] === '--help' ? 0 : -1) : rest.indexOf('--help');
  if (helpAt >= 0 && (dd < 0 || helpAt < dd)) {
    penv.stdout.write(`Usage:  berth ${shown} [OPTIONS]${shown.endsWith('run') || shown.endsWith('create') ? ' IMAGE [COMMAND] [ARG...]' : ''}\n\nSee the docker CLI reference for '${shown.replace(/^container |^image /, '')}': berth accepts the same flags.\n`);
    return 0;
  }
  let client: ApiClient | undefined;
  const newClient = (lazy?: ApiClientOptions['lazy']): ApiClient => {
    const opts: ApiClientOptions = {};
    if (explicitHost) opts.host = explicitHost;
    if (penv.env['BERTH_API_VERSION']) opts.apiVersion = penv.env['BERTH_API_VERSION'];
    if (lazy) opts.lazy = lazy;
    return new ApiClient(opts);
  };
  /** Start the embedded daemon for `c` when nothing answered and no host was given; else rethrow. */
  const startOrThrow = async (c: ApiClient, err: unknown): Promise<void> => {
    if (!(err instanceof ConnectionError) || explicitHost) throw err;
    const { startDaemon } = await import('./daemon-start.js');
    const dopts: { binDir: string; dataRoot?: string } = { binDir: penv.binDir };
    if (penv.env['BERTH_DATA_ROOT']) dopts.dataRoot = penv.env['BERTH_DATA_ROOT'];
    await startDaemon(c, dopts);
  };
  const cli: Cli = {
    out: penv.stdout,
    err: penv.stderr,
    // a getter: creating process.stdin costs ~1 ms, and most commands never read it
    get stdin() {
      return penv.stdin;
    },
    print: (s) => void penv.stdout.write(s),
    getenv: (n) => penv.env[n],
    client: async () => {
      if (client) return client;
      if (!penv.env['BERTH_API_VERSION']) {
        // no /_ping first (issue 7): the first request itself finds out whether a daemon answers
        // and which API version it speaks (ApiClientOptions.lazy)
        const c: ApiClient = newClient(explicitHost ? {} : { onUnreachable: () => startOrThrow(c, new ConnectionError(c.host, undefined)) });
        client = c;
        return c;
      }
      const c = newClient();
      try {
        await c.ping();
      } catch (err) {
        await startOrThrow(c, err);
      }
      client = c;
      return c;
    },
  };
  try {
    const fn = await loader();
    return await fn(cli, rest);
  } catch (err) {
    return reportError(penv.stderr, shown, err);
  } finally {
    client?.close();
  }
}

/** Print an error the way the docker CLI does and pick the exit code. */
export function reportError(stderr: Writable, cmd: string, err: unknown): number {
  if (err instanceof StatusError) {
    if (!err.silent && err.message) stderr.write(`${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof UsageError) {
    stderr.write(`berth: ${err.message}\nSee 'berth ${cmd} --help'.\n`);
    return 125;
  }
  const runLike = STATUS_125.has(cmd) || cmd === 'container run' || cmd === 'container create';
  if (err instanceof ApiError) {
    if (runLike) {
      stderr.write(`berth: Error response from daemon: ${err.message}\n\nRun 'berth run --help' for more information\n`);
      return 125;
    }
    stderr.write(`Error response from daemon: ${err.message}\n`);
    return 1;
  }
  if (err instanceof ConnectionError) {
    stderr.write(`${runLike ? 'berth: ' : ''}${err.message}\n`);
    return runLike ? 125 : 1;
  }
  stderr.write(`${runLike ? 'berth: ' : 'Error: '}${messageOf(err)}\n`);
  return runLike ? 125 : 1;
}

/** Entry used by bin/berth.ts. */
export async function cliMain(binDir: string): Promise<number> {
  // `berth events | head`: a closed stdout ends the CLI quietly, like a Go program on SIGPIPE.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  return main({
    argv: process.argv.slice(2),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    get stdin() {
      return process.stdin as Readable as Cli['stdin'];
    },
    binDir: path.resolve(binDir),
  });
}

/**
 * Run the CLI as the process (bin/berth.ts and the bundled bin/berth-cli.ts): run, flush
 * stdout/stderr, exit with the command's code. Open stdin or sockets must not keep the process alive.
 */
export async function runCliProcess(binDir: string): Promise<never> {
  const code = await cliMain(binDir);
  return new Promise<never>(() => {
    const done = (): void => process.exit(code);
    if (process.stdout.writableLength || process.stderr.writableLength) {
      let pending = 2;
      const one = (): void => void (--pending === 0 && done());
      process.stdout.write('', one);
      process.stderr.write('', one);
    } else done();
  });
}

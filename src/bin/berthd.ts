#!/usr/bin/env node
/**
 * berthd: the daemon. Owns all state under its data root and serves the Docker Engine API on a
 * UNIX socket. Containers run under conmon and survive a restart of berthd.
 *
 *   berthd [--data-root DIR] [-H unix:///path.sock] [--default-runtime crun|runc|runsc] [--config FILE]
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createEngine, type EngineConfig } from '../engine/engine.js';
import { createApiServer } from '../api/index.js';

interface Flags {
  dataRoot: string;
  host: string;
  defaultRuntime?: string;
  config?: string;
  usernsRemap?: string;
  bridge?: string;
  bip?: string;
  insecureRegistries?: string[];
  registryMirrors?: string[];
  registryTuning?: NonNullable<EngineConfig['registryTuning']>;
}

function usage(): never {
  process.stdout.write(`Usage: berthd [OPTIONS]

Options:
      --data-root string         Root directory of persistent state (default "/var/lib/berth")
  -H, --host string              Daemon socket to listen on (default "unix:///run/berth/berth.sock")
      --default-runtime string   Default OCI runtime: crun, runc or runsc
      --config-file string       Daemon configuration file (default "/etc/berth/daemon.json")
      --userns-remap string      User/Group setting for user namespaces ("default" or a user with subordinate ids)
  -b, --bridge string            Default bridge interface name, or "none" to disable the default bridge (default "berth0")
      --bip string               Default bridge address with prefix, e.g. 10.213.0.1/24
  -v, --version                  Print version information and quit
`);
  process.exit(0);
}

function parseFlags(argv: string[]): Flags {
  const f: Flags = { dataRoot: '/var/lib/berth', host: 'unix:///run/berth/berth.sock' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [k, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) {
        process.stderr.write(`berthd: flag needs an argument: ${k}\n`);
        process.exit(125);
      }
      return v;
    };
    switch (k) {
      case '--data-root': f.dataRoot = val(); break;
      case '-H': case '--host': f.host = val(); break;
      case '--default-runtime': f.defaultRuntime = val(); break;
      case '--config-file': f.config = val(); break;
      case '--userns-remap': f.usernsRemap = val(); break;
      case '-b': case '--bridge': f.bridge = val(); break;
      case '--bip': f.bip = val(); break;
      case '-h': case '--help': usage(); break;
      case '-v': case '--version':
        process.stdout.write('berthd version 0.1.0\n');
        process.exit(0);
        break;
      default:
        process.stderr.write(`berthd: unknown flag: ${a}\n`);
        process.exit(125);
    }
  }
  return f;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const cfgPath = flags.config ?? '/etc/berth/daemon.json';
  try {
    const j = JSON.parse(await readFile(cfgPath, 'utf8')) as { 'default-runtime'?: string; 'data-root'?: string; 'userns-remap'?: string; bridge?: string; 'insecure-registries'?: unknown; 'registry-mirrors'?: unknown } & Record<string, unknown>;
    const strList = (v: unknown, key: string): string[] | undefined => {
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${cfgPath}: "${key}" must be a list of strings`);
      return v as string[];
    };
    const insecure = strList(j['insecure-registries'], 'insecure-registries');
    if (insecure) flags.insecureRegistries = insecure;
    const mirrors = strList(j['registry-mirrors'], 'registry-mirrors');
    if (mirrors) flags.registryMirrors = mirrors;
    const posNum = (key: string): number | undefined => {
      const v = j[key];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !(v > 0)) throw new Error(`${cfgPath}: "${key}" must be a positive number`);
      return v;
    };
    const tuning: NonNullable<Flags['registryTuning']> = {};
    const dl = posNum('max-concurrent-downloads');
    if (dl) tuning.maxConcurrentDownloads = Math.floor(dl);
    const ul = posNum('max-concurrent-uploads');
    if (ul) tuning.maxConcurrentUploads = Math.floor(ul);
    const chunk = posNum('registry-chunk-size');
    if (chunk) tuning.pushChunkSize = Math.floor(chunk);
    const stall = posNum('registry-stall-timeout');
    if (stall) tuning.stallTimeoutMs = Math.round(stall * 1000);
    if (Object.keys(tuning).length) flags.registryTuning = tuning;
    if (!flags.defaultRuntime && j['default-runtime']) flags.defaultRuntime = j['default-runtime'];
    if (!flags.usernsRemap && j['userns-remap']) flags.usernsRemap = j['userns-remap'];
    if (!flags.bridge && j['bridge']) flags.bridge = j['bridge'];
  } catch (err) {
    if (flags.config && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!flags.host.startsWith('unix://')) throw new Error(`only unix:// hosts are supported: ${flags.host}`);
  const socketPath = flags.host.slice('unix://'.length);
  const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
  const engine = await createEngine({ root: flags.dataRoot, log, ...(flags.defaultRuntime ? { defaultRuntime: flags.defaultRuntime } : {}), ...(flags.usernsRemap ? { usernsRemap: flags.usernsRemap } : {}), ...(flags.bridge ? { bridge: flags.bridge } : {}), ...(flags.bip ? { bip: flags.bip } : {}), ...(flags.insecureRegistries ? { insecureRegistries: flags.insecureRegistries } : {}), ...(flags.registryMirrors ? { registryMirrors: flags.registryMirrors } : {}), ...(flags.registryTuning ? { registryTuning: flags.registryTuning } : {}) });
  const api = createApiServer(engine, { log });
  await mkdir(dirname(socketPath), { recursive: true });
  await rm(socketPath, { force: true });
  await api.listen(socketPath);
  log(`berthd listening on ${flags.host} (data root ${flags.dataRoot}, default runtime ${engine.defaultRuntime})`);
  let closing = false;
  const shutdown = async (sig: string) => {
    if (closing) return;
    closing = true;
    log(`${sig}: shutting down (containers keep running under conmon)`);
    await api.close().catch(() => undefined);
    await engine.close().catch(() => undefined);
    await rm(socketPath, { force: true }).catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`berthd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

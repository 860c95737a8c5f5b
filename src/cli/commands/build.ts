/**
 * `berth build [OPTIONS] PATH | -`: packs the context directory (honouring .dockerignore) or sends
 * a tar from stdin to POST /build, prints the classic builder stream, and exits 1 on failure.
 */
import * as fs from 'node:fs';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';

import { IgnoreMatcher, readDockerignore } from '../../build/dockerignore.js';
import { readNdjson } from '../../client/index.js';
import { flagBool, flagList, flagStr, parseArgs, UsageError } from '../args.js';
import { StatusError, type Cli } from '../context.js';
import { confirm, requireArgs } from './common.js';
import { humanSize, parseBytes } from '../format.js';

interface BuildMessage {
  stream?: string;
  status?: string;
  id?: string;
  aux?: { ID?: string };
  error?: string;
  errorDetail?: { message?: string; code?: number };
}

/** Pack a directory as a tar, skipping what .dockerignore excludes; `extra` entries are added at the root. */
export function packContext(dir: string, ignore: IgnoreMatcher, extra: Array<{ name: string; data: Buffer }> = []): Readable {
  const pack = tarStream.pack();
  const add = (h: tarStream.Headers, data?: Buffer): Promise<void> =>
    new Promise((res, rej) => {
      pack.entry(h, data, (err) => (err ? rej(err) : res()));
    });
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await readdir(join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(dir, r));
      const keep = r === 'Dockerfile' || r === '.dockerignore' || !ignore.ignores(r);
      const base = { name: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) {
        if (keep) await add({ ...base, name: `${r}/`, type: 'directory' });
        await walk(r); // exceptions (!pattern) may re-include something below
      } else if (!keep) {
        continue;
      } else if (st.isSymbolicLink()) {
        await add({ ...base, type: 'symlink', linkname: await readlink(join(dir, r)) });
      } else if (st.isFile()) {
        await add({ ...base, type: 'file', size: st.size }, await readFile(join(dir, r)));
      }
    }
  };
  (async () => {
    await walk('');
    for (const e of extra) await add({ name: e.name, type: 'file', mode: 0o644, size: e.data.length, mtime: new Date() }, e.data);
    pack.finalize();
  })().catch((e: unknown) => pack.destroy(e as Error));
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

/**
 * `--secret id=ID[,src=FILE|,env=VAR]` (BuildKit's syntax; `type=file|env` too). Without src/env
 * the secret is read from the environment variable named like the id.
 */
async function readSecrets(cli: Cli, specs: string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const spec of specs) {
    const kv = new Map<string, string>();
    for (const f of spec.split(',')) {
      const i = f.indexOf('=');
      kv.set((i < 0 ? f : f.slice(0, i)).trim().toLowerCase(), i < 0 ? '' : f.slice(i + 1));
    }
    const id = kv.get('id');
    if (!id) throw new UsageError(`invalid argument "${spec}" for "--secret" flag: secret id is required (id=NAME,src=FILE)`);
    const src = kv.get('src') ?? kv.get('source');
    const env = kv.get('env');
    const type = kv.get('type') ?? (env !== undefined ? 'env' : 'file');
    if (type === 'env' || (src === undefined && env === undefined && type !== 'file')) {
      const v = cli.getenv(env ?? src ?? id);
      if (v === undefined) throw new StatusError(1, `secret ${id}: environment variable ${env ?? src ?? id} is not set`);
      out.set(id, Buffer.from(v));
    } else if (src !== undefined) {
      try {
        out.set(id, await readFile(resolve(src)));
      } catch (e) {
        throw new StatusError(1, `failed to read secret ${id} from ${src}: ${(e as Error).message}`);
      }
    } else {
      const v = cli.getenv(id);
      if (v === undefined) throw new StatusError(1, `secret ${id}: give src=FILE or env=VAR`);
      out.set(id, Buffer.from(v));
    }
  }
  return out;
}

/** `berth build`. */
export async function build(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'tag', short: 't', type: 'list' },
    { name: 'file', short: 'f', type: 'string' },
    { name: 'build-arg', type: 'list' },
    { name: 'label', type: 'list' },
    { name: 'target', type: 'string' },
    { name: 'no-cache', type: 'bool' },
    { name: 'pull', type: 'bool' },
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'iidfile', type: 'string' },
    { name: 'network', type: 'string' },
    { name: 'platform', type: 'string' },
    { name: 'progress', type: 'string' },
    { name: 'add-host', type: 'list' },
    { name: 'shm-size', type: 'string' },
    { name: 'rm', type: 'bool' },
    { name: 'force-rm', type: 'bool' },
    { name: 'secret', type: 'list' },
  ], { command: 'build' });
  requireArgs('build', p.args, 1, 1);
  const ctxArg = p.args[0]!;
  const file = flagStr(p, 'file');
  const quiet = flagBool(p, 'quiet');
  const buildArgs: Record<string, string> = {};
  for (const a of flagList(p, 'build-arg')) {
    const i = a.indexOf('=');
    if (i < 0) {
      const v = cli.getenv(a);
      if (v !== undefined) buildArgs[a] = v;
    } else buildArgs[a.slice(0, i)] = a.slice(i + 1);
  }
  const labels: Record<string, string> = {};
  for (const l of flagList(p, 'label')) {
    const i = l.indexOf('=');
    labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  let body: Readable;
  let dockerfile: string | undefined;
  if (ctxArg === '-') {
    if (file === '-') throw new UsageError('invalid argument: can\'t use stdin for both build context and dockerfile');
    body = cli.stdin;
    dockerfile = file;
  } else {
    const dir = resolve(ctxArg);
    let st;
    try {
      st = await lstat(dir);
    } catch {
      throw new StatusError(1, `unable to prepare context: path "${ctxArg}" not found`);
    }
    if (!st.isDirectory()) throw new StatusError(1, `unable to prepare context: context must be a directory: ${dir}`);
    const ignore = new IgnoreMatcher(readDockerignore(await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => '')));
    const extra: Array<{ name: string; data: Buffer }> = [];
    if (file === '-') {
      dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
      extra.push({ name: dockerfile, data: await readAll(cli.stdin) });
    } else if (file !== undefined) {
      const abs = resolve(file);
      const rel = relative(dir, abs);
      if (rel.startsWith('..') || rel === '') {
        dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
        extra.push({ name: dockerfile, data: await readFile(abs).catch(() => { throw new StatusError(1, `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${abs}: no such file or directory`); }) });
      } else dockerfile = rel;
    }
    body = packContext(dir, ignore, extra);
  }
  const secrets = await readSecrets(cli, flagList(p, 'secret'));
  const shm = flagStr(p, 'shm-size');
  let shmSize: number | undefined;
  if (shm !== undefined) {
    try {
      shmSize = parseBytes(shm);
    } catch {
      throw new UsageError(`invalid argument "${shm}" for "--shm-size" flag: invalid size: '${shm}'`);
    }
  }
  const c = await cli.client();
  const query: Record<string, string | string[] | number | undefined> = {
    t: flagList(p, 'tag'),
    dockerfile,
    buildargs: Object.keys(buildArgs).length ? JSON.stringify(buildArgs) : undefined,
    labels: Object.keys(labels).length ? JSON.stringify(labels) : undefined,
    target: flagStr(p, 'target'),
    nocache: flagBool(p, 'no-cache') ? 1 : undefined,
    pull: flagBool(p, 'pull') ? 1 : undefined,
    q: quiet ? 1 : undefined,
    networkmode: flagStr(p, 'network'),
    platform: flagStr(p, 'platform'),
    extrahosts: flagList(p, 'add-host').join(',') || undefined,
    shmsize: shmSize,
    rm: 1,
  };
  const headers: Record<string, string> = {};
  if (secrets.size) {
    headers['X-Berth-Build-Secrets'] = Buffer.from(JSON.stringify(Object.fromEntries([...secrets].map(([k, v]) => [k, v.toString('base64')])))).toString('base64');
  }
  const res = await c.request('POST', '/build', { query, body, contentType: 'application/x-tar', headers });
  let id: string | undefined;
  for await (const m of readNdjson<BuildMessage>(res)) {
    if (m.errorDetail || m.error) throw new StatusError(1, m.errorDetail?.message ?? m.error ?? 'unknown error');
    if (m.aux?.ID) id = m.aux.ID;
    else if (m.stream !== undefined && !quiet) cli.out.write(m.stream);
    else if (m.status !== undefined && !quiet) cli.out.write(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
  }
  if (quiet && id) cli.print(`${id}\n`);
  const iid = flagStr(p, 'iidfile');
  if (iid && id) await writeFile(iid, id);
  void fs;
  return 0;
}

/** `berth builder prune [-a] [-f]`: drops the step cache and RUN cache-mount directories. */
export async function builderPrune(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'all', short: 'a', type: 'bool' },
    { name: 'force', short: 'f', type: 'bool' },
    { name: 'filter', type: 'list' },
    { name: 'keep-storage', type: 'string' },
  ], { command: 'builder prune' });
  requireArgs('builder prune', p.args, 0, 0);
  if (!flagBool(p, 'force')) {
    cli.print('WARNING! This will remove all dangling build cache.\n');
    if (!(await confirm(cli, 'Are you sure you want to continue?'))) return 0;
  }
  const c = await cli.client();
  const r = await c.post<{ CachesDeleted?: string[] | null; SpaceReclaimed?: number }>('/build/prune', { all: flagBool(p, 'all') ? 1 : undefined });
  if (r?.CachesDeleted?.length) cli.print(`Deleted build cache objects:\n${r.CachesDeleted.join('\n')}\n\n`);
  cli.print(`Total:\t${humanSize(r?.SpaceReclaimed ?? 0)}\n`);
  return 0;
}

/**
 * Image commands: images, rmi, tag, history, import, pull, image inspect, image prune, save, load.
 */
import * as fs from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { readNdjson, type ApiClient } from '../../client/index.js';
import { flagBool, flagList, flagStr, parseArgs, UsageError, type FlagSpec } from '../args.js';
import { StatusError, type Cli } from '../context.js';
import { ellipsis, goTimeString, humanSize, lazyField, renderList, shortId, timeAgo } from '../format.js';
import { confirm, encPath, filtersFromFlags, requireArgs } from './common.js';
import { inspectCommand, splitRepoTag } from './containers.js';

type Json = Record<string, unknown>;
const formatFlag: FlagSpec = { name: 'format', type: 'string' };

/** Normalise like the docker CLI: `busybox` → `docker.io/library/busybox`. */
export function normalizeRepo(repo: string): string {
  const first = repo.split('/')[0]!;
  const hasRegistry = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return repo;
  return repo.includes('/') ? `docker.io/${repo}` : `docker.io/library/${repo}`;
}

/** Split an image ref into the `fromImage`/`tag` pull parameters (tag defaults to latest). */
export function pullParams(ref: string): { fromImage: string; tag: string; display: string } {
  const at = ref.indexOf('@');
  if (at >= 0) {
    const repo = normalizeRepo(ref.slice(0, at));
    return { fromImage: repo, tag: ref.slice(at + 1), display: `${repo}@${ref.slice(at + 1)}` };
  }
  const { repo, tag } = splitRepoTag(ref);
  const r = normalizeRepo(repo);
  return { fromImage: r, tag: tag ?? 'latest', display: `${r}:${tag ?? 'latest'}` };
}

interface JsonMessage {
  id?: string;
  status?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: Json;
}

/**
 * Print a JSON progress stream (pull/import/load) like docker's jsonmessage display. On a TTY a
 * layer's progress rewrites its line; otherwise progress updates are dropped. Throws on `error`.
 */
export async function displayProgress(cli: Cli, src: AsyncIterable<JsonMessage>, out: NodeJS.WritableStream = cli.out): Promise<JsonMessage[]> {
  const tty = !!cli.out.isTTY && out === cli.out;
  const lines = new Map<string, number>();
  let count = 0;
  const all: JsonMessage[] = [];
  for await (const m of src) {
    all.push(m);
    if (m.errorDetail || m.error) throw new StatusError(1, m.errorDetail?.message ?? m.error ?? 'unknown error');
    if (m.stream !== undefined) {
      out.write(m.stream);
      continue;
    }
    if (m.status === undefined) continue;
    const isProgress = !!m.progressDetail && m.progressDetail.current !== undefined;
    const text = `${m.id ? `${m.id}: ` : ''}${m.status}${tty && m.progress ? ` ${m.progress}` : ''}`;
    if (!tty) {
      if (!isProgress) out.write(`${text}\n`);
      continue;
    }
    if (m.id && lines.has(m.id)) {
      const up = count - lines.get(m.id)!;
      out.write(`\x1b[${up}A\r\x1b[2K${text}\r\x1b[${up}B`);
    } else {
      if (m.id) lines.set(m.id, count);
      out.write(`${text}\n`);
      count++;
    }
  }
  return all;
}

/** Pull an image, printing progress (used by pull and by run/create when the image is missing). */
export async function pullImage(cli: Cli, c: ApiClient, ref: string, opts: { platform?: string | undefined; quiet?: boolean; out?: NodeJS.WritableStream; allTags?: boolean } = {}): Promise<string> {
  const pp = pullParams(ref);
  if (opts.allTags) {
    if (pp.display !== `${pp.fromImage}:latest` || /:latest$|@/.test(ref)) throw new StatusError(1, "tag can't be used with --all-tags/-a");
    pp.display = pp.fromImage;
  }
  const res = await c.request('POST', '/images/create', {
    query: { fromImage: pp.fromImage, tag: opts.allTags ? undefined : pp.tag, platform: opts.platform },
    headers: { 'X-Registry-Auth': registryAuthHeader(cli, pp.fromImage) },
  });
  const out = opts.out ?? cli.out;
  if (opts.quiet) {
    for await (const m of readNdjson<JsonMessage>(res)) {
      if (m.errorDetail || m.error) throw new StatusError(1, m.errorDetail?.message ?? m.error ?? 'unknown error');
    }
  } else await displayProgress(cli, readNdjson<JsonMessage>(res), out);
  return pp.display;
}

/** `berth pull [-q] [--platform] REF`. */
export async function pull(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'platform', type: 'string' },
    { name: 'all-tags', short: 'a', type: 'bool' },
    { name: 'disable-content-trust', type: 'bool' },
  ], { command: 'pull' });
  requireArgs('pull', p.args, 1, 1);
  const c = await cli.client();
  const ref = p.args[0]!;
  const allTags = flagBool(p, 'all-tags');
  if (!allTags && !ref.includes(':') && !ref.includes('@') && !flagBool(p, 'quiet')) cli.print('Using default tag: latest\n');
  const shown = await pullImage(cli, c, ref, { platform: flagStr(p, 'platform'), quiet: flagBool(p, 'quiet'), allTags });
  cli.print(`${shown}\n`);
  return 0;
}

/** The row objects `images --format` sees (docker's ImageContext). */
export function imageRows(list: Json[], opts: { trunc: boolean; digests: boolean; all?: boolean }, now = Date.now()): Json[] {
  const rows: Json[] = [];
  for (const img of list) {
    const id = String(img['Id'] ?? '');
    const shownId = opts.trunc ? shortId(id) : id;
    const created = Number(img['Created'] ?? 0);
    const base = {
      ID: shownId,
      CreatedSince: timeAgo(created, now),
      CreatedAt: '', // lazyField below: the zone name costs an ICU start-up
      Size: humanSize(Number(img['Size'] ?? 0)),
      VirtualSize: humanSize(Number(img['VirtualSize'] ?? img['Size'] ?? 0)),
      SharedSize: Number(img['SharedSize'] ?? -1) < 0 ? 'N/A' : humanSize(Number(img['SharedSize'])),
      UniqueSize: 'N/A',
      Containers: Number(img['Containers'] ?? -1) < 0 ? 'N/A' : String(img['Containers']),
      Labels: Object.entries((img['Labels'] as Record<string, string> | null) ?? {}).map(([k, v]) => `${k}=${v}`).sort().join(','),
    };
    const createdAt = (): string => goTimeString(created);
    const first = rows.length;
    const tags = ((img['RepoTags'] as string[] | null) ?? []).filter((t) => t !== '<none>:<none>');
    const digests = ((img['RepoDigests'] as string[] | null) ?? []).filter((d) => d !== '<none>@<none>');
    const digestFor = (repo: string): string => {
      const d = digests.find((x) => x.startsWith(`${repo}@`));
      return d ? d.slice(d.indexOf('@') + 1) : '<none>';
    };
    if (tags.length) {
      for (const t of tags) {
        const { repo, tag } = splitRepoTag(t);
        rows.push({ ...base, Repository: repo, Tag: tag ?? '<none>', Digest: digestFor(repo) });
      }
      if (opts.digests) {
        for (const d of digests) {
          const repo = d.slice(0, d.indexOf('@'));
          if (!tags.some((t) => splitRepoTag(t).repo === repo)) rows.push({ ...base, Repository: repo, Tag: '<none>', Digest: d.slice(d.indexOf('@') + 1) });
        }
      }
    } else if (digests.length) {
      for (const d of digests) rows.push({ ...base, Repository: d.slice(0, d.indexOf('@')), Tag: '<none>', Digest: d.slice(d.indexOf('@') + 1) });
    } else rows.push({ ...base, Repository: '<none>', Tag: '<none>', Digest: '<none>' });
    for (let i = first; i < rows.length; i++) lazyField(rows[i]!, 'CreatedAt', createdAt);
  }
  return rows;
}

const imageHeaders = {
  ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT',
  Size: 'SIZE', VirtualSize: 'VIRTUAL SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE', Containers: 'CONTAINERS', Labels: 'LABELS',
};

/** `berth images` / `image ls`. */
export async function images(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'all', short: 'a', type: 'bool' },
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'filter', short: 'f', type: 'list' },
    { name: 'digests', type: 'bool' },
    { name: 'no-trunc', type: 'bool' },
    formatFlag,
  ], { command: 'images' });
  requireArgs('images', p.args, 0, 1);
  const c = await cli.client();
  const filters = filtersFromFlags(flagList(p, 'filter')) ?? {};
  if (p.args[0]) (filters['reference'] ??= {})[p.args[0]] = true;
  const list = await c.get<Json[]>('/images/json', {
    all: flagBool(p, 'all') ? 1 : undefined,
    filters: Object.keys(filters).length ? filters : undefined,
    digests: flagBool(p, 'digests') ? 1 : undefined,
  });
  const trunc = !flagBool(p, 'no-trunc');
  const format = flagStr(p, 'format');
  if (flagBool(p, 'quiet') && !format) {
    const seen = new Set<string>();
    for (const img of list) {
      const id = trunc ? shortId(String(img['Id'])) : String(img['Id']);
      if (!seen.has(id)) {
        seen.add(id);
        cli.print(`${id}\n`);
      }
    }
    return 0;
  }
  const digests = flagBool(p, 'digests');
  const rows = imageRows(list, { trunc, digests });
  const def = digests
    ? '{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
    : '{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
  cli.print(renderList(format, rows, { defaultTable: def, headers: imageHeaders }));
  return 0;
}

/** `berth rmi [-f] [--no-prune] IMAGE…`. */
export async function rmi(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', short: 'f', type: 'bool' }, { name: 'no-prune', type: 'bool' }], { command: 'rmi' });
  requireArgs('rmi', p.args, 1);
  const c = await cli.client();
  let failed = false;
  for (const n of p.args) {
    try {
      const r = await c.delete<{ Untagged?: string; Deleted?: string }[]>(`/images/${encPath(n)}`, {
        force: flagBool(p, 'force') ? 1 : undefined,
        noprune: flagBool(p, 'no-prune') ? 1 : undefined,
      });
      for (const x of r ?? []) {
        if (x.Untagged) cli.print(`Untagged: ${x.Untagged}\n`);
        if (x.Deleted) cli.print(`Deleted: ${x.Deleted}\n`);
      }
    } catch (err) {
      failed = true;
      cli.err.write(`Error response from daemon: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** `berth tag SOURCE TARGET`. */
export async function tag(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'tag' });
  requireArgs('tag', p.args, 2, 2);
  const c = await cli.client();
  const { repo, tag: t } = splitRepoTag(p.args[1]!);
  if (!/^[a-z0-9]+([._-][a-z0-9]+|__)*(?:[:.][a-z0-9-]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/.test(repo.replace(/:\d+\//, '/'))) {
    throw new UsageError(`invalid reference format: repository name (${repo}) must be lowercase`);
  }
  await c.post(`/images/${encPath(p.args[0]!)}/tag`, { repo: normalizeRepo(repo), tag: t ?? 'latest' });
  return 0;
}

/** `berth history [--no-trunc] [-q] [-H] [--format] IMAGE`. */
export async function history(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'no-trunc', type: 'bool' },
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'human', short: 'H', type: 'bool' },
    formatFlag,
  ], { command: 'history' });
  requireArgs('history', p.args, 1, 1);
  const c = await cli.client();
  const h = await c.get<Json[]>(`/images/${encPath(p.args[0]!)}/history`);
  const trunc = !flagBool(p, 'no-trunc');
  const human = p.flags['human'] !== false;
  const rows = h.map((x) => {
    const id = String(x['Id'] ?? '');
    const createdBy = String(x['CreatedBy'] ?? '').replace(/\t/g, ' ');
    const created = Number(x['Created'] ?? 0);
    return {
      ID: id === '<missing>' || !id ? '<missing>' : trunc ? shortId(id) : id,
      CreatedSince: human ? timeAgo(created) : new Date(created * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
      CreatedAt: new Date(created * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
      CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
      Size: human ? humanSize(Number(x['Size'] ?? 0)) : String(x['Size'] ?? 0),
      Comment: String(x['Comment'] ?? ''),
    };
  });
  if (flagBool(p, 'quiet')) {
    cli.print(rows.map((r) => `${r.ID}\n`).join(''));
    return 0;
  }
  cli.print(renderList(flagStr(p, 'format'), rows, {
    defaultTable: '{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
    headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' },
  }));
  return 0;
}

/** `berth import [-c]… [-m] [--platform] file|URL|- [REPO[:TAG]]`. */
export async function importImage(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'change', short: 'c', type: 'list' },
    { name: 'message', short: 'm', type: 'string' },
    { name: 'platform', type: 'string' },
  ], { command: 'import' });
  requireArgs('import', p.args, 1, 2);
  const src = p.args[0]!;
  const ref = p.args[1] ? splitRepoTag(p.args[1]) : undefined;
  const c = await cli.client();
  const isUrl = /^https?:\/\//.test(src);
  const query = {
    fromSrc: isUrl ? src : '-',
    repo: ref ? ref.repo : undefined,
    tag: ref?.tag,
    message: flagStr(p, 'message'),
    changes: flagList(p, 'change'),
    platform: flagStr(p, 'platform'),
  };
  const body = isUrl ? undefined : src === '-' ? cli.stdin : fs.createReadStream(src);
  const opts: { query: typeof query; body?: unknown; contentType?: string } = { query };
  if (body) {
    opts.body = body;
    opts.contentType = 'application/x-tar';
  }
  const res = await c.request('POST', '/images/create', opts);
  for await (const m of readNdjson<JsonMessage>(res)) {
    if (m.errorDetail || m.error) throw new StatusError(1, m.errorDetail?.message ?? m.error ?? 'unknown error');
    if (m.status && !m.progressDetail?.current) cli.print(`${m.status}\n`);
  }
  return 0;
}

/** `berth image inspect [-f] IMAGE…`. */
export function imageInspect(cli: Cli, argv: string[]): Promise<number> {
  return inspectCommand(cli, argv, 'image', 'image inspect');
}

/** `berth image prune [-a] [-f] [--filter]`. */
export async function prune(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', short: 'a', type: 'bool' }, { name: 'force', short: 'f', type: 'bool' }, { name: 'filter', type: 'list' }], { command: 'image prune' });
  const all = flagBool(p, 'all');
  if (!flagBool(p, 'force')) {
    const q = all
      ? 'WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?'
      : 'WARNING! This will remove all dangling images.\nAre you sure you want to continue?';
    if (!(await confirm(cli, q))) return 0;
  }
  const c = await cli.client();
  const filters = { ...(filtersFromFlags(flagList(p, 'filter')) ?? {}), dangling: { [all ? 'false' : 'true']: true } };
  const r = await c.post<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>('/images/prune', { filters });
  if (r?.ImagesDeleted?.length) {
    cli.print(`Deleted Images:\n${r.ImagesDeleted.map((x) => (x.Untagged ? `untagged: ${x.Untagged}` : `deleted: ${x.Deleted}`)).join('\n')}\n\n`);
  }
  cli.print(`Total reclaimed space: ${humanSize(r?.SpaceReclaimed ?? 0)}\n`);
  return 0;
}

/** `berth save [-o FILE] IMAGE…`. */
export async function save(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', type: 'string' }, { name: 'format', type: 'string' }], { command: 'save' });
  const format = flagStr(p, 'format');
  if (format !== undefined && format !== 'docker' && format !== 'oci') throw new StatusError(1, `unsupported format "${format}": use docker or oci`);
  requireArgs('save', p.args, 1);
  const out = flagStr(p, 'output');
  if (!out && cli.out.isTTY) throw new StatusError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const c = await cli.client();
  const res = await c.request('GET', '/images/get', { query: { names: p.args, format } });
  if (out) await pipeline(res, fs.createWriteStream(out));
  else await pipeline(res, cli.out, { end: false });
  return 0;
}

/** `berth load [-i FILE] [-q]`. */
export async function load(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'input', short: 'i', type: 'string' }, { name: 'quiet', short: 'q', type: 'bool' }], { command: 'load' });
  const input = flagStr(p, 'input');
  if (!input && cli.stdin.isTTY) throw new StatusError(1, 'requested load from stdin, but stdin is empty');
  const c = await cli.client();
  const res = await c.request('POST', '/images/load', {
    query: { quiet: flagBool(p, 'quiet') ? 1 : undefined },
    body: input ? fs.createReadStream(input) : cli.stdin,
    contentType: 'application/x-tar',
  });
  await displayProgress(cli, readNdjson<JsonMessage>(res));
  return 0;
}

// ---- credentials (Docker's ~/.docker/config.json `auths`) -------------------------------------

/** The key Docker uses for Docker Hub in `auths`. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** Path of the client config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(cli: Cli): string {
  const dir = cli.getenv('DOCKER_CONFIG') || join(cli.getenv('HOME') || homedir(), '.docker');
  return join(dir, 'config.json');
}

/** Read the client config (an empty object when absent). */
export function readDockerConfig(path: string): Json {
  try {
    const j = JSON.parse(fs.readFileSync(path, 'utf8')) as unknown;
    return j && typeof j === 'object' && !Array.isArray(j) ? (j as Json) : {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new StatusError(1, `error loading config file ${path}: ${(err as Error).message}`);
  }
}

/** Write the client config atomically (temp file + rename), mode 0600 like Docker. */
export function writeDockerConfig(path: string, cfg: Json): void {
  fs.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(cfg, null, '\t') + '\n', { mode: 0o600 });
  fs.renameSync(tmp, path);
}

/** The `auths` key of a registry: Docker Hub's legacy URL, else the host[:port]. */
export function authKeyFor(server: string | undefined): string {
  if (!server) return DOCKER_HUB_AUTH_KEY;
  const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') return DOCKER_HUB_AUTH_KEY;
  return host;
}

/** Stored credentials for a registry host (also matches `https://host` keys written by others). */
export function lookupAuth(cfg: Json, server: string | undefined): { username: string; password: string; serveraddress: string } | undefined {
  const auths = (cfg['auths'] ?? {}) as Record<string, { auth?: string; username?: string; password?: string }>;
  const key = authKeyFor(server);
  const hit = Object.entries(auths).find(([k]) => authKeyFor(k) === key);
  if (!hit) return undefined;
  const [k, v] = hit;
  let username = v.username ?? '';
  let password = v.password ?? '';
  if (v.auth) {
    const dec = Buffer.from(v.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i > 0) {
      username = dec.slice(0, i);
      password = dec.slice(i + 1);
    }
  }
  if (!username) return undefined;
  return { username, password, serveraddress: k };
}

/** The registry domain of a (normalised) repository name. */
function registryOf(repo: string): string {
  return normalizeRepo(repo).split('/')[0]!;
}

/** X-Registry-Auth for a repository: base64url JSON AuthConfig from the config file, or `{}`. */
export function registryAuthHeader(cli: Cli, repo: string): string {
  let cfg: Json;
  try {
    cfg = readDockerConfig(dockerConfigPath(cli));
  } catch {
    return 'e30=';
  }
  const a = lookupAuth(cfg, registryOf(repo));
  return a ? Buffer.from(JSON.stringify(a)).toString('base64url') : 'e30=';
}

async function readAllStdin(cli: Cli): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of cli.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** `berth login [-u USER] [-p PASS | --password-stdin] [SERVER]`. */
export async function login(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'username', short: 'u', type: 'string' },
    { name: 'password', short: 'p', type: 'string' },
    { name: 'password-stdin', type: 'bool' },
  ], { command: 'login' });
  requireArgs('login', p.args, 0, 1);
  const server = p.args[0];
  const cfgPath = dockerConfigPath(cli);
  const cfg = readDockerConfig(cfgPath);
  let username = flagStr(p, 'username');
  let password = flagStr(p, 'password');
  if (flagBool(p, 'password-stdin')) {
    if (password !== undefined) throw new UsageError('--password and --password-stdin are mutually exclusive');
    if (!username) throw new UsageError('Must provide --username with --password-stdin');
    password = (await readAllStdin(cli)).replace(/\r?\n$/, '');
  } else if (password !== undefined) {
    cli.err.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if (!username || password === undefined) {
    const stored = lookupAuth(cfg, server);
    if (!stored) throw new StatusError(1, 'Error: Cannot perform an interactive login from a non TTY device');
    username ??= stored.username;
    password ??= stored.password;
  }
  const key = authKeyFor(server);
  const c = await cli.client();
  try {
    await c.post('/auth', undefined, { username, password, serveraddress: key });
  } catch (err) {
    throw new StatusError(1, `Error response from daemon: ${(err as Error).message}`);
  }
  const auths = ((cfg['auths'] as Json | undefined) ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(auths)) if (authKeyFor(k) === key) delete auths[k];
  auths[key] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  cfg['auths'] = auths;
  writeDockerConfig(cfgPath, cfg);
  cli.err.write(`WARNING! Your password will be stored unencrypted in ${cfgPath}.\n`);
  cli.print('Login Succeeded\n');
  return 0;
}

/** `berth logout [SERVER]`. */
export async function logout(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'logout' });
  requireArgs('logout', p.args, 0, 1);
  const key = authKeyFor(p.args[0]);
  const cfgPath = dockerConfigPath(cli);
  const cfg = readDockerConfig(cfgPath);
  const auths = ((cfg['auths'] as Json | undefined) ?? {}) as Record<string, unknown>;
  const hits = Object.keys(auths).filter((k) => authKeyFor(k) === key);
  if (hits.length === 0) {
    cli.print(`Not logged in to ${p.args[0] ?? key}\n`);
    return 0;
  }
  cli.print(`Removing login credentials for ${p.args[0] ?? key}\n`);
  for (const k of hits) delete auths[k];
  cfg['auths'] = auths;
  writeDockerConfig(cfgPath, cfg);
  return 0;
}

/** `berth push [-a] [-q] NAME[:TAG]`. */
export async function push(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'all-tags', short: 'a', type: 'bool' },
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'disable-content-trust', type: 'bool' },
    { name: 'platform', type: 'string' },
  ], { command: 'push' });
  requireArgs('push', p.args, 1, 1);
  const ref = p.args[0]!;
  let name = ref;
  let tagName: string | undefined;
  if (!ref.includes('@')) {
    const st = splitRepoTag(ref);
    name = st.repo;
    tagName = st.tag;
  }
  if (!tagName && !flagBool(p, 'all-tags')) {
    tagName = 'latest';
    if (!flagBool(p, 'quiet')) cli.print('Using default tag: latest\n');
  }
  const c = await cli.client();
  const full = normalizeRepo(name);
  const res = await c.request('POST', `/images/${encPath(full)}/push`, {
    query: { tag: tagName },
    headers: { 'X-Registry-Auth': registryAuthHeader(cli, full) },
  });
  const msgs = flagBool(p, 'quiet')
    ? await (async () => {
        const all: JsonMessage[] = [];
        for await (const m of readNdjson<JsonMessage>(res)) {
          if (m.errorDetail || m.error) throw new StatusError(1, m.errorDetail?.message ?? m.error ?? 'unknown error');
          all.push(m);
        }
        return all;
      })()
    : await displayProgress(cli, readNdjson<JsonMessage>(res));
  if (flagBool(p, 'quiet')) cli.print(`${ref}\n`);
  void msgs;
  return 0;
}

/**
 * The classic builder: runs a parsed Dockerfile step by step. Every RUN executes in a real
 * container through the engine's container service (create → start → wait → commit the upper dir
 * → remove); COPY/ADD write a tar into a created (never started) container with putArchive and
 * commit it; config instructions commit an empty layer with the new config. Each step's result is
 * cached under <root>/build-cache, keyed like Docker's (parent, instruction, source content, args).
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';

import { EngineError, invalidArgument, isNotFound, notFound } from '../base/errors.js';
import type { BuildOptions, BuildService, ContainerService, Json } from '../engine/services.js';
import { applyChanges, type ImageConfig, type ImageRunConfig } from '../oci/index.js';
import type { CommitFromUpperOptions } from '../image/index.js';
import { extractInto, resolveInRoot } from '../snapshot/index.js';
import { BuildCache, cacheKey } from './build-cache.js';
import { applyDockerignore, hashSources, resolveSources, type ResolvedSource } from './build-context.js';
import { flagValue, parseDockerfile, parseJsonArgs, splitStages, type Instruction, type Stage } from './dockerfile-parser.js';
import { envLookup, expandWord, expandWords, parseKeyValuePairs, splitRaw, type Lookup } from './shell-words.js';

/** What the builder needs from the image store. */
export interface BuilderImages {
  resolve(ref: string): Promise<{ id: string; config: ImageConfig }>;
  commitFromUpper(opts: CommitFromUpperOptions): Promise<string>;
  tag(ref: string, repo: string, tag?: string): Promise<void>;
}

/** What the builder needs from the container service. */
export type BuilderContainers = Pick<ContainerService, 'create' | 'start' | 'wait' | 'logs' | 'remove' | 'putArchive' | 'statPath' | 'getArchive'> & {
  commitSource(ref: string): { upperDir: string };
};

/** Constructor options of {@link ClassicBuilder}. */
export interface ClassicBuilderOptions {
  root: string;
  images: BuilderImages;
  containers: BuilderContainers;
}

const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);
const DEFAULT_SHELL = ['/bin/sh', '-c'];
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface StageState {
  stage: Stage;
  /** Current image id; "" while on scratch with nothing committed. */
  imageId: string;
  config: ImageRunConfig;
  cmdSet: boolean;
  /** ARGs declared in this stage with their values (undefined: declared without a value). */
  args: Map<string, string | undefined>;
  author?: string;
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

/** Split `name[:tag]` (a port in the registry part is not a tag). */
function splitTag(t: string): { repo: string; tag?: string } {
  const at = t.indexOf('@');
  if (at >= 0) return { repo: t.slice(0, at) };
  const slash = t.lastIndexOf('/');
  const colon = t.lastIndexOf(':');
  if (colon > slash) return { repo: t.slice(0, colon), tag: t.slice(colon + 1) };
  return { repo: t };
}

/** The classic (non-BuildKit) builder. */
export class ClassicBuilder implements BuildService {
  private readonly cache: BuildCache;

  constructor(private readonly o: ClassicBuilderOptions) {
    this.cache = new BuildCache(o.root);
  }

  /** See {@link BuildService.prune}. */
  async prune(_opts: { all: boolean }): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    const r = await this.cache.prune();
    return { CachesDeleted: r.keys, SpaceReclaimed: r.bytes };
  }

  /** See {@link BuildService.build}. */
  build(opts: BuildOptions): AsyncIterable<Json> {
    return this.run(opts);
  }

  private async *run(opts: BuildOptions): AsyncGenerator<Json> {
    const tmpRoot = join(this.o.root, 'build-tmp');
    await mkdir(tmpRoot, { recursive: true });
    const work = await mkdtemp(join(tmpRoot, 'b-'));
    try {
      const ctx = join(work, 'context');
      await mkdir(ctx);
      await extractInto(ctx, '/', opts.context);
      const dfName = opts.dockerfile || 'Dockerfile';
      let dfText: string;
      try {
        dfText = await readFile(await resolveInRoot(ctx, posix.join('/', dfName)), 'utf8');
      } catch {
        throw invalidArgument(`Cannot locate specified Dockerfile: ${dfName}`);
      }
      await applyDockerignore(ctx);
      yield* this.runDockerfile(dfText, ctx, work, opts);
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async *runDockerfile(text: string, ctx: string, work: string, opts: BuildOptions): AsyncGenerator<Json> {
    const df = parseDockerfile(text);
    const plan = splitStages(df);
    const esc = df.escape;
    const buildArgs = new Map<string, string>();
    for (const [k, v] of Object.entries(opts.buildArgs)) if (v !== null) buildArgs.set(k, v);
    const usedArgs = new Set<string>();
    // global (meta) ARGs, usable in FROM lines
    const meta = new Map<string, string | undefined>();
    for (const inst of plan.metaArgs) {
      for (const [k, v] of this.argPairs(inst, envLookup([...meta].filter(([, x]) => x !== undefined).map(([a, x]) => `${a}=${x}`)), esc)) {
        const val = buildArgs.has(k) ? buildArgs.get(k) : v;
        if (buildArgs.has(k)) usedArgs.add(k);
        meta.set(k, val);
      }
    }
    const metaLookup: Lookup = (n) => meta.get(n);
    // which stages the target needs
    let last = plan.stages.length - 1;
    if (opts.target) {
      const t = opts.target.toLowerCase();
      const i = plan.stages.findIndex((s) => s.name === t);
      if (i < 0) throw invalidArgument(`failed to reach build target ${opts.target} in Dockerfile`);
      last = i;
    }
    const stageRef = (ref: string, before: number): number | undefined => {
      const lower = ref.toLowerCase();
      const byName = plan.stages.findIndex((s, j) => j < before && s.name === lower);
      if (byName >= 0) return byName;
      if (/^\d+$/.test(ref)) {
        const n = Number(ref);
        if (n >= before) throw invalidArgument(`invalid from flag value ${ref}: refers to current or future build stage`);
        return n;
      }
      return undefined;
    };
    const needed = new Set<number>();
    const need = (i: number): void => {
      if (needed.has(i)) return;
      needed.add(i);
      const st = plan.stages[i]!;
      const base = stageRef(expandWord(st.base, metaLookup, esc), i);
      if (base !== undefined) need(base);
      for (const inst of st.instructions) {
        const f = (inst.cmd === 'COPY' || inst.cmd === 'ADD') ? flagValue(inst, 'from') : undefined;
        if (f) {
          const j = stageRef(f, i);
          if (j !== undefined) need(j);
        }
      }
    };
    need(last);
    const order = [...needed].sort((a, b) => a - b);
    const total = order.reduce((n, i) => n + 1 + plan.stages[i]!.instructions.length, 0);
    let step = 0;
    const results = new Map<number, string>();
    let final: StageState | undefined;
    for (const si of order) {
      const stage = plan.stages[si]!;
      step++;
      yield { stream: `Step ${step}/${total} : ${stage.from.original.replace(/^\s*from/i, 'FROM')}\n` };
      const baseRef = expandWord(stage.base, metaLookup, esc);
      const st: StageState = { stage, imageId: '', config: { Env: [DEFAULT_PATH] }, cmdSet: false, args: new Map() };
      const fromStage = stageRef(baseRef, si);
      if (fromStage !== undefined) {
        const id = results.get(fromStage)!;
        st.imageId = id;
        st.config = structuredClone((await this.o.images.resolve(id)).config.config ?? {});
      } else if (baseRef.toLowerCase() !== 'scratch') {
        const img = await this.o.images.resolve(baseRef);
        st.imageId = img.id;
        st.config = structuredClone(img.config.config ?? {});
      }
      yield { stream: st.imageId ? ` ---> ${short(st.imageId)}\n` : ' ---> \n' };
      // ONBUILD triggers of the base image run first
      const triggers = st.config.OnBuild ?? [];
      if (triggers.length > 0) {
        yield { stream: `# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n` };
        st.config.OnBuild = null;
        for (const t of triggers) {
          const inst = parseDockerfile(t).instructions[0];
          if (inst) yield* this.step(inst, st, { ctx, work, opts, esc, buildArgs, usedArgs, meta, results, stageRef: (r) => stageRef(r, si) });
        }
      }
      for (const inst of stage.instructions) {
        if (opts.signal?.aborted) throw new EngineError('cancelled', 'build cancelled');
        step++;
        yield { stream: `Step ${step}/${total} : ${inst.original}\n` };
        yield* this.step(inst, st, { ctx, work, opts, esc, buildArgs, usedArgs, meta, results, stageRef: (r) => stageRef(r, si) });
      }
      if (!st.imageId) {
        // a stage with nothing but FROM scratch: commit an empty image
        st.imageId = await this.commitConfig(st, work, 'FROM scratch');
      }
      results.set(si, st.imageId);
      final = st;
    }
    const unused = [...buildArgs.keys()].filter((k) => !usedArgs.has(k) && !PROXY_ARGS.has(k));
    if (unused.length) yield { stream: `[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n` };
    let id = final!.imageId;
    if (Object.keys(opts.labels).length) {
      final!.config.Labels = { ...(final!.config.Labels ?? {}), ...opts.labels };
      id = await this.commitConfig(final!, work, 'LABEL');
    }
    yield { aux: { ID: id } };
    yield { stream: `Successfully built ${short(id)}\n` };
    for (const t of opts.tags) {
      const { repo, tag } = splitTag(t);
      await this.o.images.tag(id, repo, tag);
      yield { stream: `Successfully tagged ${tag === undefined && !t.includes('@') ? `${t}:latest` : t}\n` };
    }
  }

  /** Pairs of an ARG instruction; value undefined when no default is given. */
  private argPairs(inst: Instruction, env: Lookup, esc: string): Array<[string, string | undefined]> {
    return splitRaw(inst.rest, esc).map((w) => {
      const i = w.indexOf('=');
      if (i < 0) return [w, undefined];
      if (i === 0) throw invalidArgument(`dockerfile parse error on line ${inst.line}: ARG names can not be blank`);
      return [w.slice(0, i), expandWord(w.slice(i + 1), env, esc)];
    });
  }

  private stageEnv(st: StageState): Lookup {
    const args = [...st.args].filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    return envLookup(args, st.config.Env ?? []);
  }

  /** Run one instruction against the stage state. */
  private async *step(inst: Instruction, st: StageState, c: StepContext): AsyncGenerator<Json> {
    const esc = c.esc;
    const env = this.stageEnv(st);
    const at = (e: unknown): never => {
      const msg = (e as Error).message ?? String(e);
      if (/^dockerfile parse error/.test(msg) || e instanceof EngineError && e.kind !== 'invalid-argument') throw e;
      throw invalidArgument(`dockerfile parse error on line ${inst.line}: ${msg}`);
    };
    switch (inst.cmd) {
      case 'ARG': {
        for (const [k, v] of this.argPairs(inst, env, esc)) {
          let val = v;
          if (val === undefined && c.meta.has(k)) val = c.meta.get(k);
          if (c.buildArgs.has(k)) {
            val = c.buildArgs.get(k);
            c.usedArgs.add(k);
          }
          st.args.set(k, val);
        }
        yield { stream: ` ---> ${st.imageId ? short(st.imageId) : ''}\n` };
        return;
      }
      case 'RUN':
        yield* this.runStep(inst, st, c);
        return;
      case 'COPY':
      case 'ADD':
        yield* this.copyStep(inst, st, c);
        return;
      case 'MAINTAINER':
        st.author = inst.rest;
        break;
      case 'ENV': {
        let pairs: Array<[string, string]> = [];
        try {
          pairs = parseKeyValuePairs('ENV', inst.rest, env, esc);
        } catch (e) {
          at(e);
        }
        const list = [...(st.config.Env ?? [])];
        for (const [k, v] of pairs) {
          const i = list.findIndex((x) => x.split('=', 1)[0] === k);
          if (i < 0) list.push(`${k}=${v}`);
          else list[i] = `${k}=${v}`;
        }
        st.config.Env = list;
        break;
      }
      case 'LABEL': {
        let pairs: Array<[string, string]> = [];
        try {
          pairs = parseKeyValuePairs('LABEL', inst.rest, env, esc);
        } catch (e) {
          at(e);
        }
        st.config.Labels = { ...(st.config.Labels ?? {}), ...Object.fromEntries(pairs) };
        break;
      }
      case 'SHELL': {
        if (!inst.json || inst.json.length === 0) throw invalidArgument(`dockerfile parse error on line ${inst.line}: SHELL requires the arguments to be in JSON form`);
        st.config.Shell = inst.json;
        break;
      }
      case 'WORKDIR': {
        let dir = '';
        try {
          dir = expandWord(inst.rest, env, esc);
        } catch (e) {
          at(e);
        }
        const abs = posix.normalize(dir.startsWith('/') ? dir : posix.join(st.config.WorkingDir || '/', dir));
        st.config.WorkingDir = abs;
        const key = cacheKey({ parent: st.imageId, instruction: `WORKDIR ${abs}` });
        if (yield* this.tryCache(key, st, c)) return;
        if (st.imageId && abs !== '/') {
          const id = await this.withContainer(st, async (cid) => {
            const exists = await this.o.containers.statPath(cid, abs).then(() => true, (e: unknown) => (isNotFound(e) ? false : Promise.reject(e)));
            if (!exists) await this.o.containers.putArchive(cid, '/', dirTar(abs), { noOverwriteDirNonDir: false, copyUIDGID: false });
            return this.commit(st, cid, this.o.containers.commitSource(cid).upperDir);
          });
          st.imageId = id;
        } else {
          st.imageId = await this.commitConfig(st, c.work, `WORKDIR ${abs}`);
        }
        await this.cache.put(key, st.imageId);
        yield { stream: ` ---> ${short(st.imageId)}\n` };
        return;
      }
      case 'USER':
      case 'STOPSIGNAL':
      case 'EXPOSE':
      case 'VOLUME': {
        let rest = inst.rest;
        try {
          rest = inst.json ? JSON.stringify(inst.json.map((w) => expandWord(w, env, esc))) : expandWords(inst.rest, env, esc).join(' ');
        } catch (e) {
          at(e);
        }
        try {
          st.config = applyChanges(st.config, [`${inst.cmd} ${rest}`]);
        } catch (e) {
          at(e);
        }
        break;
      }
      case 'CMD':
      case 'ENTRYPOINT':
      case 'HEALTHCHECK':
      case 'ONBUILD': {
        const cmdBefore = st.config.Cmd;
        try {
          st.config = applyChanges(st.config, [`${inst.cmd} ${inst.rest}`]);
        } catch (e) {
          at(e);
        }
        if (inst.cmd === 'CMD') st.cmdSet = true;
        if (inst.cmd === 'ENTRYPOINT' && st.cmdSet) st.config.Cmd = cmdBefore ?? null;
        break;
      }
      default:
        throw invalidArgument(`dockerfile parse error on line ${inst.line}: unknown instruction: ${inst.cmd}`);
    }
    // config-only step: a new image with an empty layer
    const key = cacheKey({ parent: st.imageId, instruction: `${inst.cmd} ${JSON.stringify(st.config)} ${st.author ?? ''}` });
    if (yield* this.tryCache(key, st, c)) return;
    st.imageId = await this.commitConfig(st, c.work, inst.original);
    await this.cache.put(key, st.imageId);
    yield { stream: ` ---> ${short(st.imageId)}\n` };
  }

  /** On a cache hit, move the stage to the cached image and report it. */
  private async *tryCache(key: string, st: StageState, c: StepContext): AsyncGenerator<Json, boolean> {
    if (c.opts.noCache) return false;
    const id = await this.cache.get(key);
    if (!id) return false;
    try {
      const img = await this.o.images.resolve(id);
      st.imageId = img.id;
      yield { stream: ' ---> Using cache\n' };
      yield { stream: ` ---> ${short(img.id)}\n` };
      return true;
    } catch {
      await this.cache.delete(key);
      return false;
    }
  }

  private runConfigJson(st: StageState): Json {
    return { ...st.config, Entrypoint: st.config.Entrypoint ?? null, Cmd: st.config.Cmd ?? null } as unknown as Json;
  }

  private async commit(st: StageState, containerId: string, upperDir: string): Promise<string> {
    return this.o.images.commitFromUpper({
      upperDir,
      ...(st.imageId ? { parentId: st.imageId } : {}),
      containerConfig: this.runConfigJson(st),
      containerId,
      ...(st.author ? { author: st.author } : {}),
    });
  }

  /** Commit the stage config over an empty layer (no container needed). */
  private async commitConfig(st: StageState, work: string, what: string): Promise<string> {
    const empty = await mkdtemp(join(work, 'empty-'));
    try {
      void what;
      return await this.commit(st, '', empty);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  }

  /** Create a (not started) container of the stage image, run fn, always remove it. */
  private async withContainer<T>(st: StageState, fn: (cid: string) => Promise<T>, body: Json = {}): Promise<T> {
    const { Id } = await this.o.containers.create({
      body: { Image: st.imageId, Entrypoint: [''], Cmd: ['/bin/true'], Labels: {}, HostConfig: { NetworkMode: 'none' }, ...body },
    });
    try {
      return await fn(Id);
    } finally {
      await this.o.containers.remove(Id, { force: true, volumes: true }).catch(() => undefined);
    }
  }

  private async *runStep(inst: Instruction, st: StageState, c: StepContext): AsyncGenerator<Json> {
    if (!st.imageId) throw invalidArgument(`dockerfile parse error on line ${inst.line}: RUN needs a base image with a shell (FROM scratch has none)`);
    const shell = st.config.Shell && st.config.Shell.length ? st.config.Shell : DEFAULT_SHELL;
    let cmd: string[];
    if (inst.json) cmd = inst.json;
    else if (inst.heredocs.length > 0) {
      const only = /^<<-?\s*(["']?)[A-Za-z_][A-Za-z0-9_.-]*\1$/.test(inst.rest.trim());
      if (only) cmd = [...shell, inst.heredocs[0]!.content];
      else cmd = [...shell, `${inst.rest}\n${inst.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}`];
    } else cmd = [...shell, inst.rest];
    // build args visible to this RUN (not persisted), unless ENV sets the same name
    const envNames = new Set((st.config.Env ?? []).map((e) => e.split('=', 1)[0]));
    const argEnv = [...st.args].filter(([k, v]) => v !== undefined && !envNames.has(k)).map(([k, v]) => `${k}=${v}`);
    for (const [k, v] of c.buildArgs) {
      if (PROXY_ARGS.has(k) && !st.args.has(k)) {
        argEnv.push(`${k}=${v}`);
        c.usedArgs.add(k);
      }
    }
    argEnv.sort();
    const key = cacheKey({ parent: st.imageId, instruction: `RUN ${JSON.stringify(cmd)}`, args: argEnv });
    if (yield* this.tryCache(key, st, c)) return;
    const hc: Json = { NetworkMode: c.opts.networkMode && c.opts.networkMode !== 'default' ? c.opts.networkMode : 'host' };
    if (c.opts.extraHosts?.length) hc['ExtraHosts'] = c.opts.extraHosts;
    const body: Json = {
      Image: st.imageId,
      Entrypoint: [''],
      Cmd: cmd,
      Env: [...(st.config.Env ?? []), ...argEnv],
      WorkingDir: st.config.WorkingDir ?? '',
      User: st.config.User ?? '',
      Labels: {},
      HostConfig: hc,
    };
    const { Id } = await this.o.containers.create({ body });
    let removed = false;
    try {
      yield { stream: ` ---> Running in ${short(Id)}\n` };
      const w = await this.o.containers.wait(Id, 'next-exit', c.opts.signal);
      await w.ready;
      await this.o.containers.start(Id);
      const logs = await this.o.containers.logs(Id, { follow: true, stdout: true, stderr: true, timestamps: false, ...(c.opts.signal ? { signal: c.opts.signal } : {}) });
      for await (const chunk of logs.chunks) yield { stream: chunk.data.toString('utf8') };
      const r = await w.result;
      if (r.StatusCode !== 0) {
        await this.o.containers.remove(Id, { force: true, volumes: true }).catch(() => undefined);
        removed = true;
        const shown = inst.json ? JSON.stringify(cmd) : cmd.join(' ');
        throw new EngineError('failed-precondition', `The command '${shown}' returned a non-zero code: ${r.StatusCode}`, { code: 'BUILD_STEP_FAILED', details: { code: r.StatusCode } });
      }
      st.imageId = await this.commit(st, Id, this.o.containers.commitSource(Id).upperDir);
    } finally {
      if (!removed) await this.o.containers.remove(Id, { force: true, volumes: true }).catch(() => undefined);
    }
    yield { stream: ` ---> Removed intermediate container ${short(Id)}\n` };
    await this.cache.put(key, st.imageId);
    yield { stream: ` ---> ${short(st.imageId)}\n` };
  }

  private async *copyStep(inst: Instruction, st: StageState, c: StepContext): AsyncGenerator<Json> {
    const env = this.stageEnv(st);
    const esc = c.esc;
    const what = inst.cmd;
    let words: string[];
    try {
      words = inst.json ? inst.json.map((w) => expandWord(w, env, esc)) : expandWords(inst.rest, env, esc);
    } catch (e) {
      throw invalidArgument(`dockerfile parse error on line ${inst.line}: ${(e as Error).message}`);
    }
    if (words.length < 2) throw invalidArgument(`dockerfile parse error on line ${inst.line}: ${what} requires at least two arguments, but only one was provided. Destination could not be determined.`);
    const destRaw = words[words.length - 1]!;
    const srcSpecs = words.slice(0, -1);
    const chown = flagValue(inst, 'chown');
    const chmodS = flagValue(inst, 'chmod');
    let owner = { uid: 0, gid: 0 };
    if (chown) owner = parseChown(expandWord(chown, env, esc), inst.line);
    const chmod = chmodS ? Number.parseInt(chmodS, 8) : undefined;
    if (chmodS && (!/^[0-7]{3,4}$/.test(chmodS))) throw invalidArgument(`dockerfile parse error on line ${inst.line}: invalid chmod parameter ${chmodS}`);
    // the tree the sources are read from
    let srcRoot = c.ctx;
    const fromFlag = flagValue(inst, 'from');
    const staged: string[] = [];
    const heredocSrc = new Map(inst.heredocs.map((h) => [h.name, h]));
    const sources: ResolvedSource[] = [];
    const urls: string[] = [];
    try {
      if (fromFlag) {
        const ref = expandWord(fromFlag, env, esc);
        const si = c.stageRef(ref);
        const imageId = si !== undefined ? c.results.get(si) : (await this.o.images.resolve(ref)).id;
        if (!imageId) throw invalidArgument(`dockerfile parse error on line ${inst.line}: stage ${ref} was not built`);
        srcRoot = await mkdtemp(join(c.work, 'from-'));
        staged.push(srcRoot);
        await this.withContainer({ ...st, imageId }, async (cid) => {
          for (const s of srcSpecs) {
            let arc;
            try {
              arc = await this.o.containers.getArchive(cid, s);
            } catch (e) {
              if (isNotFound(e)) throw notFound(`${what} failed: stat ${s}: file does not exist`);
              throw e;
            }
            const parent = posix.dirname(posix.join('/', s.replace(/\/+$/, '') || '/'));
            await mkdir(join(srcRoot, parent), { recursive: true });
            await extractInto(srcRoot, parent, arc.tar);
          }
        });
      }
      const plain: string[] = [];
      for (const s of srcSpecs) {
        const hm = /^<<-?(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\1$/.exec(s);
        if (hm && heredocSrc.has(hm[2]!)) {
          const h = heredocSrc.get(hm[2]!)!;
          const dir = await mkdtemp(join(c.work, 'heredoc-'));
          staged.push(dir);
          const { writeFile } = await import('node:fs/promises');
          await writeFile(join(dir, h.name), h.expand ? expandHeredoc(h.content, env) : h.content, { mode: 0o644 });
          sources.push(...(await resolveSources(dir, [h.name], what)));
        } else if (what === 'ADD' && /^https?:\/\//.test(s)) {
          urls.push(s);
        } else {
          plain.push(s);
        }
      }
      sources.push(...(await resolveSources(srcRoot, plain, what)));
      for (const u of urls) {
        const dir = await mkdtemp(join(c.work, 'url-'));
        staged.push(dir);
        let res: Response;
        try {
          res = await fetch(u, c.opts.signal ? { signal: c.opts.signal } : {});
        } catch (e) {
          throw invalidArgument(`failed to GET ${u}: ${(e as Error).message}`);
        }
        if (!res.ok) throw invalidArgument(`failed to GET ${u} with status ${res.status}: ${res.statusText}`);
        const name = posix.basename(new URL(u).pathname) || 'index.html';
        const { writeFile } = await import('node:fs/promises');
        await writeFile(join(dir, name), Buffer.from(await res.arrayBuffer()), { mode: 0o600 });
        sources.push(...(await resolveSources(dir, [name], what)));
      }
      const workdir = st.config.WorkingDir || '/';
      const destAbs = destRaw.startsWith('/') ? destRaw : posix.join(workdir, destRaw);
      const hash = await hashSources(sources);
      const key = cacheKey({ parent: st.imageId, instruction: `${what} ${JSON.stringify(inst.flags.filter((f) => !f.startsWith('--from=')))} ${JSON.stringify(srcSpecs)} ${destAbs} ${fromFlag ? `from=${srcRoot === c.ctx ? '' : 'x'}` : ''}`, contentHash: hash });
      if (yield* this.tryCache(key, st, c)) return;
      const build = async (destIsDirKnown: (p: string) => Promise<boolean>): Promise<{ tar: Readable; archives: Array<{ file: string; dest: string }> }> => {
        const multi = sources.length > 1 || srcSpecs.some((s) => /[*?[]/.test(s));
        const destIsDir = destRaw.endsWith('/') || multi || (await destIsDirKnown(destAbs));
        const pack = tarStream.pack();
        const archives: Array<{ file: string; dest: string }> = [];
        const entries: Array<{ header: tarStream.Headers; data?: string }> = [];
        for (const s of sources) {
          if (s.isDir) {
            for (const e of s.entries) {
              const name = posix.join(destAbs, e.rel);
              entries.push(entryFor(name, e, owner, chmod));
            }
          } else {
            const e = s.entries[0]!;
            const name = destIsDir ? posix.join(destAbs, s.name) : destAbs;
            if (what === 'ADD' && e.st.isFile() && !urls.length && (await isArchive(e.host))) {
              archives.push({ file: e.host, dest: destAbs });
              continue;
            }
            entries.push(entryFor(name, e, owner, chmod));
          }
        }
        void (async () => {
          try {
            for (const en of entries) {
              const body = en.data !== undefined ? await readFile(en.data) : undefined;
              await new Promise<void>((resolve, reject) => {
                pack.entry(en.header, body, (err) => (err ? reject(err) : resolve()));
              });
            }
            pack.finalize();
          } catch (err) {
            pack.destroy(err as Error);
          }
        })();
        return { tar: Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false }), archives };
      };
      if (st.imageId) {
        st.imageId = await this.withContainer(st, async (cid) => {
          const isDir = async (p: string): Promise<boolean> => {
            try {
              const s = await this.o.containers.statPath(cid, p);
              return (s.mode & 2 ** 31) !== 0;
            } catch {
              return false;
            }
          };
          const { tar, archives } = await build(isDir);
          await this.o.containers.putArchive(cid, '/', tar, { noOverwriteDirNonDir: false, copyUIDGID: false });
          for (const a of archives) {
            await this.o.containers.putArchive(cid, '/', dirTar(a.dest), { noOverwriteDirNonDir: false, copyUIDGID: false });
            await this.o.containers.putArchive(cid, a.dest, await openArchive(a.file), { noOverwriteDirNonDir: false, copyUIDGID: false });
          }
          return this.commit(st, cid, this.o.containers.commitSource(cid).upperDir);
        });
      } else {
        const upper = await mkdtemp(join(c.work, 'upper-'));
        staged.push(upper);
        const { tar, archives } = await build(async () => false);
        await extractInto(upper, '/', tar);
        for (const a of archives) {
          await mkdir(await resolveInRoot(upper, a.dest), { recursive: true });
          await extractInto(upper, a.dest, await openArchive(a.file));
        }
        st.imageId = await this.commit(st, '', upper);
      }
      await this.cache.put(key, st.imageId);
      yield { stream: ` ---> ${short(st.imageId)}\n` };
    } finally {
      for (const d of staged) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

interface StepContext {
  ctx: string;
  work: string;
  opts: BuildOptions;
  esc: string;
  buildArgs: Map<string, string>;
  usedArgs: Set<string>;
  meta: Map<string, string | undefined>;
  results: Map<number, string>;
  stageRef: (ref: string) => number | undefined;
}

function entryFor(name: string, e: { host: string; st: import('node:fs').Stats; linkTarget?: string }, owner: { uid: number; gid: number }, chmod: number | undefined): { header: tarStream.Headers; data?: string } {
  const rel = name.replace(/^\/+/, '');
  const mode = chmod ?? e.st.mode & 0o7777;
  const base = { name: rel || '.', uid: owner.uid, gid: owner.gid, mtime: e.st.mtime };
  if (e.st.isDirectory()) return { header: { ...base, name: `${rel}/`, type: 'directory', mode } };
  if (e.st.isSymbolicLink()) return { header: { ...base, type: 'symlink', linkname: e.linkTarget ?? '', mode: 0o777 } };
  return { header: { ...base, type: 'file', mode, size: e.st.size }, data: e.host };
}

/** A tar holding just the directories of `abs`. */
function dirTar(abs: string): Readable {
  const pack = tarStream.pack();
  const comps = abs.split('/').filter(Boolean);
  pack.entry({ name: `${comps.join('/')}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date() });
  pack.finalize();
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

async function isArchive(file: string): Promise<boolean> {
  const fh = await (await import('node:fs/promises')).open(file, 'r');
  try {
    const buf = Buffer.alloc(262);
    const { bytesRead } = await fh.read(buf, 0, 262, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return true;
    return bytesRead >= 262 && buf.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

async function openArchive(file: string): Promise<Readable> {
  const { createReadStream } = await import('node:fs');
  const head = Buffer.alloc(2);
  const fh = await (await import('node:fs/promises')).open(file, 'r');
  await fh.read(head, 0, 2, 0);
  await fh.close();
  const rs = createReadStream(file);
  return head[0] === 0x1f && head[1] === 0x8b ? rs.pipe(createGunzip()) : rs;
}

function parseChown(s: string, line: number): { uid: number; gid: number } {
  const [u, g] = s.split(':');
  const num = (x: string | undefined, def: number): number => {
    if (x === undefined || x === '') return def;
    if (/^\d+$/.test(x)) return Number(x);
    if (x === 'root') return 0;
    throw invalidArgument(`dockerfile parse error on line ${line}: --chown with a user or group name (${x}) is not supported yet; use numeric ids`);
  };
  const uid = num(u, 0);
  return { uid, gid: num(g, uid) };
}

function expandHeredoc(content: string, env: Lookup): string {
  return content.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => env((a ?? b)!) ?? '');
}

void parseJsonArgs;

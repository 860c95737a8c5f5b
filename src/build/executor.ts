/**
 * The classic builder: runs a parsed Dockerfile step by step. Every RUN executes in a real
 * container through the engine's container service (create → start → wait → commit the upper dir
 * → remove, the removal overlapping the next steps), with its `--mount`s (cache, bind, tmpfs,
 * secret) and `--network`; COPY/ADD write the new layer's directory themselves (files copied in the
 * kernel; the parent image is looked at through its layer dirs) and hand it to the image store,
 * which moves it into place (through a created, never started container with putArchive only when
 * the destination path has symlinks or ADD unpacks an archive; `--link`: a layer of its own);
 * config instructions commit the new config without a layer (`empty_layer`).
 * Stages the target needs run concurrently as soon as the stages they use are built; their
 * messages are streamed stage by stage in Dockerfile order, so the classic output stays sequential.
 * Each step's result is cached under <root>/build-cache, keyed like Docker's (parent, instruction,
 * source content, args, mount specs). Base images missing locally are pulled (`--pull`: always).
 */
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';

import { EngineError, invalidArgument, isNotFound } from '../base/errors.js';
import type { BuildOptions, BuildService, ContainerService, Json } from '../engine/services.js';
import { compressionOf } from '../host/decompress.js';
import { mountOverlay, unmount } from '../host/mount.js';
import { applyChanges, hostArchitecture, type ImageConfig, type ImageRunConfig } from '../oci/index.js';
import type { CommitFromUpperOptions } from '../image/index.js';
import { extractInto, resolveInRoot, writeEntries, type HostEntry } from '../snapshot/index.js';
import { BuildCache, cacheKey } from './build-cache.js';
import { applyDockerignore, hashSources, resolveSources, type FileDigests, type ResolvedSource } from './build-context.js';
import { flagValue, flagValues, parseDockerfile, splitStages, type Instruction, type Stage } from './dockerfile-parser.js';
import { layerStack, unionFind, unionLstat, type UnionLayer } from './layer-view.js';
import { CacheMountRegistry, mountCacheKey, parseRunMount, parseRunNetwork, prepareRunMounts, removeMountPoints, type RunMount } from './run-mounts.js';
import { envLookup, expandWord, expandWords, parseKeyValuePairs, splitRaw, type Lookup } from './shell-words.js';

/** What the builder needs from the image store. */
export interface BuilderImages {
  /** A local image; `layerDirs` are its unpacked layers, lowest first. Not-found when missing. */
  resolve(ref: string): Promise<{ id: string; config: ImageConfig; layerDirs: string[]; layerOpaque?: Array<readonly string[] | undefined> }>;
  /** Pull from a registry; yields Docker's pull progress messages. */
  pull(ref: string, opts: { signal?: AbortSignal; platform?: string }): AsyncIterable<Json>;
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
/** History prefix of steps that run nothing (the classic builder's). */
const NOP = '/bin/sh -c #(nop) ';

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

/** Go's %q of a string list (`["a" "b"]`), as the classic builder writes CMD/ENTRYPOINT history. */
function goList(v: readonly string[] | null | undefined): string {
  return `[${(v ?? []).map((x) => JSON.stringify(x)).join(' ')}]`;
}

/** The platform berth builds for: the host's (there is no emulation). */
function hostPlatform(): { os: string; arch: string } {
  return { os: 'linux', arch: hostArchitecture() };
}

/** Accept `linux` or `linux/<host arch>[/variant]`; anything else is a clear error. */
export function checkBuildPlatform(p: string, where: string): void {
  const [os, arch] = p.trim().toLowerCase().split('/');
  const host = hostPlatform();
  if (os !== host.os || (arch !== undefined && arch !== '' && arch !== host.arch)) {
    throw invalidArgument(`${where}: platform "${p}" is not supported: berth builds only for ${host.os}/${host.arch} (no emulation)`);
  }
}

/** A regular file's text from the union of `layers`, or undefined. */
async function readFromLayers(layers: readonly UnionLayer[], p: string): Promise<string | undefined> {
  const f = await unionFind(layers, p);
  return f?.st.isFile() ? readFile(join(f.dir, p), 'utf8') : undefined;
}

/**
 * One stage's messages: the stage writes while it runs, the build stream reads them in stage
 * order, so concurrent stages do not interleave their lines.
 */
class StageOutput {
  private readonly buf: Json[] = [];
  private wake: (() => void) | undefined;
  done = false;
  error: unknown;

  push(m: Json): void {
    this.buf.push(m);
    this.wake?.();
  }

  finish(err?: unknown): void {
    this.done = true;
    if (err !== undefined) this.error = err;
    this.wake?.();
  }

  /** Everything written so far and later, until the stage finishes. */
  async *drain(): AsyncGenerator<Json> {
    for (;;) {
      while (this.buf.length > 0) yield this.buf.shift()!;
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

/** A read view of image layers (or a directory): an overlay with a throw-away upper dir. */
async function mountTree(layers: readonly string[], work: string): Promise<{ root: string; release: () => Promise<void> }> {
  const base = await mkdtemp(join(work, 'tree-'));
  const root = join(base, 'merged');
  await mkdir(root);
  await mkdir(join(base, 'upper'));
  await mkdir(join(base, 'work'));
  try {
    await mountOverlay([...layers], join(base, 'upper'), join(base, 'work'), root);
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw e;
  }
  return {
    root,
    release: async () => {
      await unmount(root).catch(() => undefined);
      await rm(base, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/** The classic (non-BuildKit) builder. */
export class ClassicBuilder implements BuildService {
  private readonly cache: BuildCache;
  private readonly caches = new CacheMountRegistry();
  /** Pulls in flight, by reference. */
  private readonly pulls = new Map<string, Promise<void>>();

  constructor(private readonly o: ClassicBuilderOptions) {
    this.cache = new BuildCache(o.root);
  }

  /** See {@link BuildService.prune}: step cache entries and RUN cache-mount directories not in use. */
  async prune(_opts: { all: boolean }): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    const r = await this.cache.prune();
    const mounts = this.caches.busy ? { keys: [], bytes: 0 } : await this.cache.pruneDirs(join(this.o.root, 'build-cache-mounts'));
    return { CachesDeleted: [...r.keys, ...mounts.keys], SpaceReclaimed: r.bytes + mounts.bytes };
  }

  /** See {@link BuildService.build}. */
  build(opts: BuildOptions): AsyncIterable<Json> {
    return this.run(opts);
  }

  private async *run(opts: BuildOptions): AsyncGenerator<Json> {
    if (opts.platform) checkBuildPlatform(opts.platform, 'build');
    const tmpRoot = join(this.o.root, 'build-tmp');
    await mkdir(tmpRoot, { recursive: true });
    const work = await mkdtemp(join(tmpRoot, 'b-'));
    // removals of finished RUN containers, left to run beside the next steps
    const cleanups: Array<Promise<void>> = [];
    try {
      const ctx = join(work, 'context');
      await mkdir(ctx);
      // each file is hashed as it arrives: COPY cache keys need no second read of the context
      const digests: FileDigests = new Map();
      await extractInto(ctx, '/', opts.context, { onFileDigest: (p, sha256, ino) => digests.set(p, { sha256, ino }) });
      const dfName = opts.dockerfile || 'Dockerfile';
      let dfText: string;
      try {
        dfText = await readFile(await resolveInRoot(ctx, posix.join('/', dfName)), 'utf8');
      } catch {
        throw invalidArgument(`Cannot locate specified Dockerfile: ${dfName}`);
      }
      await applyDockerignore(ctx);
      yield* this.runDockerfile(dfText, ctx, work, opts, digests, cleanups);
    } finally {
      // nothing the build started outlives its response
      await Promise.allSettled(cleanups);
      await rm(work, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async *runDockerfile(text: string, ctx: string, work: string, opts: BuildOptions, digests: FileDigests, cleanups: Array<Promise<void>>): AsyncGenerator<Json> {
    const df = parseDockerfile(text);
    const plan = splitStages(df);
    const esc = df.escape;
    const buildArgs = new Map<string, string>();
    for (const [k, v] of Object.entries(opts.buildArgs)) if (v !== null) buildArgs.set(k, v);
    const usedArgs = new Set<string>();
    // global (meta) ARGs, usable in FROM lines; the platform args are predefined there
    const hp = hostPlatform();
    const platformArgs = new Map<string, string>([
      ['BUILDPLATFORM', `${hp.os}/${hp.arch}`], ['BUILDOS', hp.os], ['BUILDARCH', hp.arch], ['BUILDVARIANT', ''],
      ['TARGETPLATFORM', `${hp.os}/${hp.arch}`], ['TARGETOS', hp.os], ['TARGETARCH', hp.arch], ['TARGETVARIANT', ''],
    ]);
    const meta = new Map<string, string | undefined>();
    for (const inst of plan.metaArgs) {
      for (const [k, v] of this.argPairs(inst, envLookup([...meta].filter(([, x]) => x !== undefined).map(([a, x]) => `${a}=${x}`)), esc)) {
        const val = buildArgs.has(k) ? buildArgs.get(k) : v ?? platformArgs.get(k);
        if (buildArgs.has(k)) usedArgs.add(k);
        meta.set(k, val);
      }
    }
    const metaLookup: Lookup = (n) => (meta.has(n) ? meta.get(n) : platformArgs.get(n));
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
    // the dependency graph: FROM <stage>, COPY/ADD --from=<stage>, RUN --mount=…,from=<stage>;
    // flags are checked here so a bad --mount fails before any step runs
    const deps = new Map<number, Set<number>>();
    const depsOf = (i: number): Set<number> => {
      let d = deps.get(i);
      if (d) return d;
      d = new Set();
      const st = plan.stages[i]!;
      const base = stageRef(expandWord(st.base, metaLookup, esc), i);
      if (base !== undefined) d.add(base);
      const p = flagValue(st.from, 'platform');
      if (p) checkBuildPlatform(expandWord(p, metaLookup, esc), `dockerfile line ${st.from.line}`);
      for (const inst of st.instructions) {
        const froms: string[] = [];
        if (inst.cmd === 'COPY' || inst.cmd === 'ADD') {
          const f = flagValue(inst, 'from');
          if (f) froms.push(f);
        }
        if (inst.cmd === 'RUN') {
          for (const mv of flagValues(inst, 'mount')) {
            const m = parseRunMount(mv, inst.line);
            if (m.from) froms.push(m.from);
          }
          const n = flagValue(inst, 'network');
          if (n !== undefined) parseRunNetwork(n, inst.line);
          const sec = flagValue(inst, 'security');
          if (sec !== undefined && sec !== 'sandbox') throw invalidArgument(`dockerfile parse error on line ${inst.line}: RUN --security=${sec} is not supported by berth`);
        }
        for (const f of froms) {
          const j = stageRef(f, i);
          if (j !== undefined) d.add(j);
        }
      }
      deps.set(i, d);
      return d;
    };
    const needed = new Set<number>();
    const need = (i: number): void => {
      if (needed.has(i)) return;
      needed.add(i);
      for (const j of depsOf(i)) need(j);
    };
    need(last);
    const order = [...needed].sort((a, b) => a - b);
    const total = order.reduce((n, i) => n + 1 + plan.stages[i]!.instructions.length, 0);
    const firstStep = new Map<number, number>();
    let n = 0;
    for (const i of order) {
      firstStep.set(i, n + 1);
      n += 1 + plan.stages[i]!.instructions.length;
    }
    // run every needed stage at once; each waits for the stages it uses
    const ac = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
    const outputs = new Map<number, StageOutput>();
    const states = new Map<number, Promise<StageState>>();
    let firstError: unknown;
    let failedStage: number | undefined;
    const stageResult = async (i: number): Promise<string> => {
      const p = states.get(i);
      if (!p) throw invalidArgument(`stage ${i} was not built`);
      return (await p).imageId;
    };
    for (const si of order) {
      const out = new StageOutput();
      outputs.set(si, out);
      const c: StepContext = { ctx, digests, cleanups, work, opts, esc, buildArgs, usedArgs, meta, signal, stageResult, stageRef: (r) => stageRef(r, si) };
      const p = this.buildStage(plan.stages[si]!, firstStep.get(si)!, total, metaLookup, depsOf(si), states, c, out);
      states.set(si, p);
      p.then(
        () => out.finish(),
        (e: unknown) => {
          if (firstError === undefined) {
            firstError = e;
            failedStage = si;
          }
          ac.abort();
          out.finish(e);
        },
      );
    }
    try {
      for (const si of order) {
        const out = outputs.get(si)!;
        yield* out.drain();
        if (out.error !== undefined) {
          // show what the stage that failed first printed, then its error
          if (failedStage !== undefined && failedStage !== si) yield* outputs.get(failedStage)!.drain();
          throw firstError ?? out.error;
        }
      }
    } finally {
      // the consumer stopped early (client gone): stop the stages and wait for their cleanup
      ac.abort();
      await Promise.allSettled([...states.values()]);
    }
    const final = await states.get(last)!;
    const unused = [...buildArgs.keys()].filter((k) => !usedArgs.has(k) && !PROXY_ARGS.has(k));
    if (unused.length) yield { stream: `[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n` };
    let id = final.imageId;
    if (Object.keys(opts.labels).length) {
      final.config.Labels = { ...(final.config.Labels ?? {}), ...opts.labels };
      id = await this.commitConfig(final, work, `${NOP} LABEL ${Object.entries(opts.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
    yield { aux: { ID: id } };
    yield { stream: `Successfully built ${short(id)}\n` };
    for (const t of opts.tags) {
      const { repo, tag } = splitTag(t);
      await this.o.images.tag(id, repo, tag);
      yield { stream: `Successfully tagged ${tag === undefined && !t.includes('@') ? `${t}:latest` : t}\n` };
    }
  }

  /** Build one stage after the stages it depends on; its messages go to `out`. */
  private async buildStage(stage: Stage, first: number, total: number, metaLookup: Lookup, stageDeps: Set<number>, states: Map<number, Promise<StageState>>, c: StepContext, out: StageOutput): Promise<StageState> {
    // wait for the stages this one uses (a failed dependency fails this stage too)
    for (const d of stageDeps) await states.get(d);
    const emit = async (g: AsyncGenerator<Json>): Promise<void> => {
      for await (const m of g) out.push(m);
    };
    let step = first;
    out.push({ stream: `Step ${step}/${total} : ${stage.from.original.replace(/^\s*from/i, 'FROM')}\n` });
    const baseRef = expandWord(stage.base, metaLookup, c.esc);
    const st: StageState = { stage, imageId: '', config: { Env: [DEFAULT_PATH] }, cmdSet: false, args: new Map() };
    const fromStage = c.stageRef(baseRef);
    if (fromStage !== undefined) {
      const id = await c.stageResult(fromStage);
      st.imageId = id;
      st.config = structuredClone((await this.o.images.resolve(id)).config.config ?? {});
    } else if (baseRef.toLowerCase() !== 'scratch') {
      const gen = this.ensureImage(baseRef, Boolean(c.opts.pull), c.signal);
      let r = await gen.next();
      while (!r.done) {
        out.push(r.value);
        r = await gen.next();
      }
      st.imageId = r.value.id;
      st.config = structuredClone(r.value.config.config ?? {});
    }
    out.push({ stream: st.imageId ? ` ---> ${short(st.imageId)}\n` : ' ---> \n' });
    // ONBUILD triggers of the base image run first
    const triggers = st.config.OnBuild ?? [];
    if (triggers.length > 0) {
      out.push({ stream: `# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n` });
      st.config.OnBuild = null;
      for (const t of triggers) {
        const inst = parseDockerfile(t).instructions[0];
        if (inst) await emit(this.step(inst, st, c));
      }
    }
    for (const inst of stage.instructions) {
      if (c.signal.aborted) throw new EngineError('cancelled', 'build cancelled');
      step++;
      out.push({ stream: `Step ${step}/${total} : ${inst.original}\n` });
      await emit(this.step(inst, st, c));
    }
    if (!st.imageId) {
      // a stage with nothing but FROM scratch: commit an empty image
      st.imageId = await this.commitConfig(st, c.work, `${NOP} FROM scratch`);
    }
    return st;
  }

  /**
   * A local image, pulled first when missing (or always, with `--pull`). Yields the pull's
   * messages (without the per-byte progress) and returns the image.
   */
  private async *ensureImage(ref: string, always: boolean, signal: AbortSignal): AsyncGenerator<Json, { id: string; config: ImageConfig; layerDirs: string[] }> {
    if (!always) {
      try {
        return await this.o.images.resolve(ref);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    // stages (or builds) needing the same missing image share one pull
    const running = this.pulls.get(ref);
    if (running) {
      await running;
      return this.o.images.resolve(ref);
    }
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    this.pulls.set(ref, mine);
    try {
      for await (const m of this.o.images.pull(ref, { signal })) {
        if ((m['progressDetail'] as Json | undefined)?.['current'] !== undefined) continue;
        yield m;
      }
    } finally {
      this.pulls.delete(ref);
      done();
    }
    return this.o.images.resolve(ref);
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
    // history text of a metadata-only step
    let desc = `${inst.cmd} ${inst.rest}`;
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
        desc = `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
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
        desc = `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
        break;
      }
      case 'SHELL': {
        if (!inst.json || inst.json.length === 0) throw invalidArgument(`dockerfile parse error on line ${inst.line}: SHELL requires the arguments to be in JSON form`);
        st.config.Shell = inst.json;
        desc = `SHELL ${goList(inst.json)}`;
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
        const createdBy = `${NOP}WORKDIR ${abs}`;
        if (st.imageId && abs !== '/' && !(await unionLstat(await this.stackOf(st.imageId), abs))) {
          const id = await this.withContainer(st, async (cid) => {
            await this.o.containers.putArchive(cid, '/', dirTar(abs), { noOverwriteDirNonDir: false, copyUIDGID: false });
            return this.commit(st, cid, this.o.containers.commitSource(cid).upperDir, createdBy);
          });
          st.imageId = id;
        } else {
          st.imageId = await this.commitConfig(st, c.work, createdBy);
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
        desc = `${inst.cmd} ${rest}`;
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
        if (inst.cmd === 'CMD') desc = `CMD ${goList(st.config.Cmd)}`;
        if (inst.cmd === 'ENTRYPOINT') desc = `ENTRYPOINT ${goList(st.config.Entrypoint)}`;
        break;
      }
      default:
        throw invalidArgument(`dockerfile parse error on line ${inst.line}: unknown instruction: ${inst.cmd}`);
    }
    // config-only step: a new image without a new layer
    const key = cacheKey({ parent: st.imageId, instruction: `${inst.cmd} ${JSON.stringify(st.config)} ${st.author ?? ''}` });
    if (yield* this.tryCache(key, st, c)) return;
    st.imageId = await this.commitConfig(st, c.work, `${NOP} ${desc}`);
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

  /** `ownUpper`: the builder wrote `upperDir` itself (not a container's), and it may be moved into the layer store. */
  private async commit(st: StageState, containerId: string, upperDir: string, createdBy: string, emptyLayer = false, ownUpper = false): Promise<string> {
    return this.o.images.commitFromUpper({
      upperDir,
      ...(st.imageId ? { parentId: st.imageId } : {}),
      containerConfig: this.runConfigJson(st),
      containerId,
      createdBy,
      emptyLayer,
      ownUpper,
      ...(st.author ? { author: st.author } : {}),
    });
  }

  /** Commit the stage config without a new layer (an empty one when there is no parent). */
  private async commitConfig(st: StageState, work: string, createdBy: string): Promise<string> {
    const empty = await mkdtemp(join(work, 'empty-'));
    try {
      return await this.commit(st, '', empty, createdBy, true, true);
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

  /** The layers a `from=` names (a stage, or an image pulled when missing), or the context's. */
  private async sourceLayers(from: string | undefined, c: StepContext): Promise<{ layers: string[]; id: string }> {
    if (from === undefined) return { layers: [c.ctx], id: '' };
    const si = c.stageRef(from);
    let id: string;
    if (si !== undefined) id = await c.stageResult(si);
    else {
      const gen = this.ensureImage(from, false, c.signal);
      let r = await gen.next();
      while (!r.done) r = await gen.next();
      id = r.value.id;
    }
    const img = await this.o.images.resolve(id);
    return { layers: img.layerDirs, id: img.id };
  }

  private async *runStep(inst: Instruction, st: StageState, c: StepContext): AsyncGenerator<Json> {
    if (!st.imageId) throw invalidArgument(`dockerfile parse error on line ${inst.line}: RUN needs a base image with a shell (FROM scratch has none)`);
    const env = this.stageEnv(st);
    const shell = st.config.Shell && st.config.Shell.length ? st.config.Shell : DEFAULT_SHELL;
    let cmd: string[];
    if (inst.json) cmd = inst.json;
    else if (inst.heredocs.length > 0) {
      const only = /^<<-?\s*(["']?)[A-Za-z_][A-Za-z0-9_.-]*\1$/.test(inst.rest.trim());
      if (only) cmd = [...shell, inst.heredocs[0]!.content];
      else cmd = [...shell, `${inst.rest}\n${inst.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}`];
    } else cmd = [...shell, inst.rest];
    let mounts: RunMount[];
    try {
      mounts = flagValues(inst, 'mount').map((v) => parseRunMount(expandWord(v, env, c.esc), inst.line));
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw invalidArgument(`dockerfile parse error on line ${inst.line}: ${(e as Error).message}`);
    }
    const netFlag = flagValue(inst, 'network');
    const runNet = netFlag !== undefined ? parseRunNetwork(netFlag, inst.line) : 'default';
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
    // bind mounts are inputs: their content (context) or image id (from=) is part of the key
    const bindParts: string[] = [];
    for (const m of mounts.filter((x) => x.type === 'bind')) {
      if (m.from === undefined) {
        const src = await resolveSources(c.ctx, [m.source === '/' ? '.' : m.source], 'RUN --mount').catch(() => {
          throw invalidArgument(`dockerfile parse error on line ${inst.line}: failed to mount ${m.source}: not found in build context or excluded by .dockerignore`);
        });
        bindParts.push(`${m.target}=${await hashSources(src, c.digests)}`);
      } else {
        bindParts.push(`${m.target}=${(await this.sourceLayers(m.from, c)).id}`);
      }
    }
    const instruction = `RUN ${JSON.stringify(cmd)}${mounts.length ? ` mounts=${mountCacheKey(mounts)}` : ''}${runNet !== 'default' ? ` network=${runNet}` : ''}`;
    const key = cacheKey({ parent: st.imageId, instruction, args: argEnv, ...(bindParts.length ? { contentHash: bindParts.join('\n') } : {}) });
    if (yield* this.tryCache(key, st, c)) return;
    const buildNet = c.opts.networkMode && c.opts.networkMode !== 'default' ? c.opts.networkMode : 'default';
    const hc: Json = { NetworkMode: runNet === 'default' ? buildNet : runNet };
    if (c.opts.extraHosts?.length) hc['ExtraHosts'] = c.opts.extraHosts;
    if (c.opts.shmSize) hc['ShmSize'] = c.opts.shmSize;
    const prepared = await prepareRunMounts(mounts, {
      root: this.o.root,
      work: c.work,
      secrets: c.opts.secrets ?? new Map(),
      caches: this.caches,
      sourceTree: (from) => this.sourceLayers(from, c),
    });
    let Id = '';
    try {
      if (prepared.mounts.length) hc['Mounts'] = prepared.mounts;
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
      Id = (await this.o.containers.create({ body, scratch: true })).Id;
      yield { stream: ` ---> Running in ${short(Id)}\n` };
      const w = await this.o.containers.wait(Id, 'next-exit', c.signal);
      await w.ready;
      await this.o.containers.start(Id);
      const logs = await this.o.containers.logs(Id, { follow: true, stdout: true, stderr: true, timestamps: false, signal: c.signal });
      for await (const chunk of logs.chunks) yield { stream: chunk.data.toString('utf8') };
      const r = await w.result;
      if (r.StatusCode !== 0) {
        const shown = inst.json ? JSON.stringify(cmd) : cmd.join(' ');
        throw new EngineError('failed-precondition', `The command '${shown}' returned a non-zero code: ${r.StatusCode}`, { code: 'BUILD_STEP_FAILED', details: { code: r.StatusCode } });
      }
      const upper = this.o.containers.commitSource(Id).upperDir;
      if (mounts.length) {
        const layers = await this.stackOf(st.imageId);
        await removeMountPoints(upper, mounts.map((m) => m.target), async (p) => Boolean(await unionLstat(layers, p)));
      }
      const createdBy = inst.json ? cmd.join(' ') : `${argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : ''}${cmd.join(' ')}`;
      st.imageId = await this.commit(st, Id, upper, createdBy);
    } finally {
      // the container goes (then its mounts) while the next steps run; the build waits for it at its end
      const removed = (async () => {
        if (Id) await this.o.containers.remove(Id, { force: true, volumes: true }).catch(() => undefined);
        await prepared.release();
      })();
      c.cleanups.push(removed.catch(() => undefined));
    }
    yield { stream: ` ---> Removed intermediate container ${short(Id)}\n` };
    await this.cache.put(key, st.imageId);
    yield { stream: ` ---> ${short(st.imageId)}\n` };
  }

  /**
   * COPY without a container: the new layer is written straight into an empty upper dir. The
   * parent image is looked at through a read-only overlay view to decide whether the destination
   * is a directory and to give directories the copy only passes through the image's mode and
   * owner (as an overlay copy-up would). Returns undefined when a path the copy goes through is a
   * symlink (or not a directory) in the image, or when ADD unpacks an archive: the caller then
   * copies through a container, which follows those like Docker.
   */
  private async copyIntoNewLayer(
    st: StageState,
    c: StepContext,
    destAbs: string,
    destIsDirFor: (isDir: (p: string) => Promise<boolean>) => Promise<boolean>,
    plan: (destIsDir: boolean) => { entries: Array<{ header: tarStream.Headers; data?: string }>; archives: unknown[] },
    releases: Array<() => Promise<void>>,
    staged: string[],
    createdBy: string,
  ): Promise<string | undefined> {
    const img = await this.o.images.resolve(st.imageId);
    let look: (p: string) => Promise<import('node:fs').Stats | undefined>;
    const opaque = img.layerOpaque;
    if (opaque && opaque.length === img.layerDirs.length && opaque.every((o) => o !== undefined)) {
      // every layer's opaque dirs are known: look through the stack without mounting it
      const layers = layerStack(img.layerDirs, opaque);
      look = (p) => unionLstat(layers, p);
    } else {
      const view = await mountTree(img.layerDirs, c.work);
      releases.push(view.release);
      look = (p) => lstat(join(view.root, p)).catch(() => undefined);
    }
    const seen = new Map<string, import('node:fs').Stats | undefined>();
    const lst = async (p: string): Promise<import('node:fs').Stats | undefined> => {
      if (!seen.has(p)) seen.set(p, await look(p));
      return seen.get(p);
    };
    const chain = (p: string): string[] => {
      const out: string[] = [];
      for (let d = p; d !== '/' && d !== '.'; d = posix.dirname(d)) out.unshift(d);
      return out;
    };
    for (const a of chain(destAbs)) {
      const s = await lst(a);
      if (!s) break;
      if (s.isSymbolicLink()) return undefined;
    }
    const { entries, archives } = plan(await destIsDirFor(async (p) => Boolean((await lst(p))?.isDirectory())));
    if (archives.length) return undefined;
    const inTar = new Set<string>();
    const dirs = new Set<string>();
    for (const e of entries) {
      const name = posix.join('/', String(e.header.name)).replace(/\/+$/, '') || '/';
      inTar.add(name);
      const parentOnly = e.header.type === 'directory' ? name : posix.dirname(name);
      for (const d of chain(parentOnly)) dirs.add(d);
    }
    const pre: Array<[string, import('node:fs').Stats]> = [];
    for (const d of [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))) {
      const s = await lst(d);
      if (!s) continue;
      if (!s.isDirectory()) return undefined;
      if (!inTar.has(d)) pre.push([d, s]);
    }
    const upper = await mkdtemp(join(c.work, 'upper-'));
    staged.push(upper);
    for (const [d, s] of pre) {
      const host = join(upper, d);
      await mkdir(host);
      await chown(host, s.uid, s.gid);
      await chmod(host, s.mode & 0o7777);
    }
    await writeEntries(upper, entries.map(hostEntry));
    return this.commit(st, '', upper, createdBy, false, true);
  }

  /** `--chown=user:group` with names looked up in the stage image's /etc/passwd and /etc/group. */
  /** The layer stack of image `id`, for looking into it without a mount. */
  private async stackOf(id: string): Promise<UnionLayer[]> {
    const img = await this.o.images.resolve(id);
    return layerStack(img.layerDirs, img.layerOpaque);
  }

  private async resolveOwner(spec: string, st: StageState, line: number): Promise<{ uid: number; gid: number }> {
    const [u = '', g] = spec.split(':');
    if (/^\d+$/.test(u) && (g === undefined || g === '' || /^\d+$/.test(g))) {
      const uid = Number(u);
      return { uid, gid: g ? Number(g) : uid };
    }
    const layers = st.imageId ? await this.stackOf(st.imageId) : [];
    const table = async (file: string): Promise<string[][]> => ((await readFromLayers(layers, file)) ?? '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
    let uid = 0;
    let gid = 0;
    if (/^\d+$/.test(u)) {
      uid = Number(u);
      gid = uid;
    } else {
      const ent = (await table('/etc/passwd')).find((f) => f[0] === u);
      if (!ent || !/^\d+$/.test(ent[2] ?? '') || !/^\d+$/.test(ent[3] ?? '')) {
        throw invalidArgument(`dockerfile parse error on line ${line}: unable to convert uid/gid chown string to host mapping: can't find uid for user ${u}: no such user: ${u}`);
      }
      uid = Number(ent[2]);
      gid = Number(ent[3]);
    }
    if (g !== undefined && g !== '') {
      if (/^\d+$/.test(g)) gid = Number(g);
      else {
        const ent = (await table('/etc/group')).find((f) => f[0] === g);
        if (!ent || !/^\d+$/.test(ent[2] ?? '')) {
          throw invalidArgument(`dockerfile parse error on line ${line}: unable to convert uid/gid chown string to host mapping: can't find gid for group ${g}: no such group: ${g}`);
        }
        gid = Number(ent[2]);
      }
    }
    return { uid, gid };
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
    const link = flagValue(inst, 'link') !== undefined && flagValue(inst, 'link') !== 'false';
    if (chmodS && (!/^[0-7]{3,4}$/.test(chmodS))) throw invalidArgument(`dockerfile parse error on line ${inst.line}: invalid chmod parameter ${chmodS}`);
    const owner = chown ? await this.resolveOwner(expandWord(chown, env, esc), st, inst.line) : { uid: 0, gid: 0 };
    const chmod = chmodS ? Number.parseInt(chmodS, 8) : undefined;
    // the tree the sources are read from
    let srcRoot = c.ctx;
    const fromFlag = flagValue(inst, 'from');
    const staged: string[] = [];
    const releases: Array<() => Promise<void>> = [];
    const heredocSrc = new Map(inst.heredocs.map((h) => [h.name, h]));
    const sources: ResolvedSource[] = [];
    const urls: string[] = [];
    try {
      if (fromFlag) {
        const ref = expandWord(fromFlag, env, esc);
        const src = await this.sourceLayers(ref, c);
        const tree = await mountTree(src.layers, c.work);
        releases.push(tree.release);
        srcRoot = tree.root;
      }
      const plain: string[] = [];
      for (const s of srcSpecs) {
        const hm = /^<<-?(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\1$/.exec(s);
        if (hm && heredocSrc.has(hm[2]!)) {
          const h = heredocSrc.get(hm[2]!)!;
          const dir = await mkdtemp(join(c.work, 'heredoc-'));
          staged.push(dir);
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
          res = await fetch(u, { signal: c.signal });
        } catch (e) {
          throw invalidArgument(`failed to GET ${u}: ${(e as Error).message}`);
        }
        if (!res.ok) throw invalidArgument(`failed to GET ${u} with status ${res.status}: ${res.statusText}`);
        const name = posix.basename(new URL(u).pathname) || 'index.html';
        await writeFile(join(dir, name), Buffer.from(await res.arrayBuffer()), { mode: 0o600 });
        sources.push(...(await resolveSources(dir, [name], what)));
      }
      const workdir = st.config.WorkingDir || '/';
      const destAbs = destRaw.startsWith('/') ? destRaw : posix.join(workdir, destRaw);
      const hash = await hashSources(sources, c.digests);
      const key = cacheKey({ parent: st.imageId, instruction: `${what} ${JSON.stringify(inst.flags.filter((f) => !f.startsWith('--from=')))} ${JSON.stringify(owner)} ${JSON.stringify(srcSpecs)} ${destAbs} ${fromFlag ? 'from' : ''}`, contentHash: hash });
      if (yield* this.tryCache(key, st, c)) return;
      const kind = sources.length === 1 ? (sources[0]!.isDir ? 'dir' : 'file') : 'multi';
      const createdBy = `${NOP}${what} ${kind}:${hash} in ${destAbs} `;
      type Entry = { header: tarStream.Headers; data?: string };
      /** What the tar holds (entries) and which ADD archives are unpacked at the destination. */
      const plan = (destIsDir: boolean): { entries: Entry[]; archives: Array<{ file: string; dest: string }> } => {
        const archives: Array<{ file: string; dest: string }> = [];
        const entries: Entry[] = [];
        for (const s of sources) {
          if (s.isDir) {
            for (const e of s.entries) entries.push(entryFor(posix.join(destAbs, e.rel), e, owner, chmod));
          } else {
            const e = s.entries[0]!;
            const name = destIsDir ? posix.join(destAbs, s.name) : destAbs;
            if (what === 'ADD' && e.st.isFile() && !urls.length && archiveSources.has(e.host)) {
              archives.push({ file: e.host, dest: destAbs });
              continue;
            }
            entries.push(entryFor(name, e, owner, chmod));
          }
        }
        return { entries, archives };
      };
      const archiveSources = new Set<string>();
      if (what === 'ADD') {
        for (const s of sources) if (!s.isDir && s.entries[0]!.st.isFile() && (await isArchive(s.entries[0]!.host))) archiveSources.add(s.entries[0]!.host);
      }
      const multi = sources.length > 1 || srcSpecs.some((s) => /[*?[]/.test(s));
      const destIsDirFor = async (isDir: (p: string) => Promise<boolean>): Promise<boolean> => destRaw.endsWith('/') || multi || isDir(destAbs);
      if (st.imageId && !link) {
        const id = await this.copyIntoNewLayer(st, c, destAbs, destIsDirFor, plan, releases, staged, createdBy);
        if (id) st.imageId = id;
        else {
          // the destination path has symlinks in the image (or ADD unpacks an archive): copy
          // through a container's rootfs, where they are followed as in Docker
          st.imageId = await this.withContainer(st, async (cid) => {
            const isDir = async (p: string): Promise<boolean> => {
              try {
                const s = await this.o.containers.statPath(cid, p);
                return (s.mode & 2 ** 31) !== 0;
              } catch {
                return false;
              }
            };
            const { entries, archives } = plan(await destIsDirFor(isDir));
            await this.o.containers.putArchive(cid, '/', packEntries(entries), { noOverwriteDirNonDir: false, copyUIDGID: false });
            for (const a of archives) {
              await this.o.containers.putArchive(cid, '/', dirTar(a.dest), { noOverwriteDirNonDir: false, copyUIDGID: false });
              await this.o.containers.putArchive(cid, a.dest, await openArchive(a.file), { noOverwriteDirNonDir: false, copyUIDGID: false });
            }
            return this.commit(st, cid, this.o.containers.commitSource(cid).upperDir, createdBy);
          });
        }
      } else {
        // scratch, or --link: the layer is made on its own, independent of the parent's content
        const upper = await mkdtemp(join(c.work, 'upper-'));
        staged.push(upper);
        const { entries, archives } = plan(await destIsDirFor(async () => false));
        await writeEntries(upper, entries.map(hostEntry));
        for (const a of archives) {
          await mkdir(await resolveInRoot(upper, a.dest), { recursive: true });
          await extractInto(upper, a.dest, await openArchive(a.file));
        }
        // an unpacked ADD archive may hold names that mean whiteouts in a layer tar: that tree is
        // unpacked again from its tar, so the layer matches what the tar says
        st.imageId = await this.commit(st, '', upper, createdBy, false, archives.length === 0);
      }
      await this.cache.put(key, st.imageId);
      yield { stream: ` ---> ${short(st.imageId)}\n` };
    } finally {
      for (const r of releases) await r();
      for (const d of staged) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

interface StepContext {
  ctx: string;
  /** Content hashes of the context's files, taken while it was unpacked. */
  digests: FileDigests;
  /** Background work the build waits for before it ends (RUN container removals). */
  cleanups: Array<Promise<void>>;
  work: string;
  opts: BuildOptions;
  esc: string;
  buildArgs: Map<string, string>;
  usedArgs: Set<string>;
  meta: Map<string, string | undefined>;
  /** Aborts when the build is cancelled or another stage failed. */
  signal: AbortSignal;
  /** The image id a stage ends with (waits for the stage). */
  stageResult: (i: number) => Promise<string>;
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

/** A planned COPY entry as {@link writeEntries} takes it (file content copied from the source). */
function hostEntry(e: { header: tarStream.Headers; data?: string }): HostEntry {
  return e.data !== undefined ? { header: e.header, copyFrom: e.data } : { header: e.header };
}

/** A tar stream of planned COPY entries, file contents read as the tar is consumed. */
function packEntries(entries: ReadonlyArray<{ header: tarStream.Headers; data?: string }>): Readable {
  const pack = tarStream.pack();
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
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

/** A tar holding just the directories of `abs`. */
function dirTar(abs: string): Readable {
  const pack = tarStream.pack();
  const comps = abs.split('/').filter(Boolean);
  pack.entry({ name: `${comps.join('/')}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date() });
  pack.finalize();
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

/** A local ADD source Docker unpacks: a tar, or a gzip, bzip2, xz or zstd stream (of a tar). */
async function isArchive(file: string): Promise<boolean> {
  const fh = await (await import('node:fs/promises')).open(file, 'r');
  try {
    const buf = Buffer.alloc(262);
    const { bytesRead } = await fh.read(buf, 0, 262, 0);
    if (compressionOf(buf.subarray(0, bytesRead))) return true;
    return bytesRead >= 262 && buf.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

/** An ADD archive as a stream; its compression is undone where the tar is read (readTar). */
async function openArchive(file: string): Promise<Readable> {
  const { createReadStream } = await import('node:fs');
  return createReadStream(file);
}

function expandHeredoc(content: string, env: Lookup): string {
  return content.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => env((a ?? b)!) ?? '');
}

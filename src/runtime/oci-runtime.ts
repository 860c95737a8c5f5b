/**
 * A stateless wrapper around an OCI runtime binary (crun, runc, runsc). All container state rules
 * live in container/; this only runs the runtime's verbs and classifies its errors.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readFile, readdir, mkdtemp, writeFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError, internal, notFound } from '../base/errors.js';

/** Where a runtime is and how to call it. */
export interface RuntimeConfig {
  /** User-facing name: crun, runc, runsc. */
  name: string;
  /** The executable conmon runs for `create` and `exec` (may be a wrapper, e.g. nsenter). */
  path: string;
  /**
   * Arguments placed before `globalArgs` whenever `path` is run: a wrapper's own options and the
   * runtime binary (e.g. `--mount=<ns file> -- <crun>` for nsenter).
   */
  wrapArgs?: string[];
  /**
   * The executable berthd runs itself for the verbs that create no process (start, state, kill,
   * delete, pause, resume, update); `path` when absent. On a hybrid cgroup host crun refuses only
   * `create` and `exec` (conmon runs those through the wrapper at `path`); every other verb works
   * on the plain binary, which saves the wrapper on each call.
   */
  verbPath?: string;
  /**
   * A wrapper that creates a container in a mount namespace made for that one call (hybrid cgroup
   * hosts, when `path` enters a long-lived namespace): for containers whose bind-mount sources lie
   * outside the data root, so a host mount made after that namespace is still seen. Run without
   * `wrapArgs`.
   */
  freshPath?: string;
  /** Global arguments placed before every verb (e.g. --root). */
  globalArgs: string[];
  /** A note shown by `berth info`, e.g. why a wrapper is used. */
  note?: string;
}

/** The command line that runs a process-creating verb (`exec`, `create`) through `path`. */
export function processCommand(cfg: RuntimeConfig, args: string[]): { file: string; args: string[] } {
  return { file: cfg.path, args: [...(cfg.wrapArgs ?? []), ...cfg.globalArgs, ...args] };
}

/** The state the runtime reports for a container. */
export interface RuntimeState {
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  pid: number;
}

/** Run a runtime command, rejecting with the runtime's own message. */
function run(path: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(path, args, { maxBuffer: 16 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        const msg = runtimeMessage(String(stderr)) || err.message;
        reject(classifyRuntimeError(msg));
        return;
      }
      resolve(String(stdout));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Extract the human message from runtime stderr (plain or JSON log lines). */
export function runtimeMessage(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const msgs: string[] = [];
  for (const l of lines) {
    if (l.startsWith('{')) {
      try {
        const j = JSON.parse(l) as { msg?: string; level?: string };
        if (j.msg && (j.level === 'error' || j.level === 'fatal' || !j.level)) msgs.push(j.msg);
        continue;
      } catch {
        /* not JSON */
      }
    }
    const m = /level=(?:error|fatal) msg="((?:[^"\\]|\\.)*)"/.exec(l);
    if (m) msgs.push(m[1]!.replace(/\\"/g, '"'));
    else msgs.push(l);
  }
  return msgs.join('; ');
}

/** Read a runtime's JSON log file (--log-format=json) and return its error messages. */
export async function readRuntimeLog(path: string): Promise<string> {
  try {
    return runtimeMessage(await readFile(path, 'utf8'));
  } catch {
    return '';
  }
}

/** Turn a runtime message into an EngineError of the right kind. */
export function classifyRuntimeError(msg: string): EngineError {
  if (/does not exist|not found|no such container/i.test(msg) && /container/i.test(msg) && !/exec/i.test(msg)) {
    return notFound(msg);
  }
  return internal(msg);
}

/**
 * Exit code Docker reports when the container's command could not be started:
 * 127 when the executable is missing, 126 when it cannot be executed.
 */
export function startFailureExitCode(msg: string): number {
  // only failures to exec the command map to 126/127; any other runtime failure is 128
  const aboutExec = /exec|executable|no such file or directory|not found in \$PATH/i.test(msg) && !/^open \/proc\/sys|sysctl|mount|cgroup|setrlimit|apply caps/i.test(msg);
  if (!aboutExec) return 128;
  if (/permission denied|is a directory|exec format error|not executable/i.test(msg)) return 126;
  if (/not found|no such file or directory|executable file/i.test(msg)) return 127;
  return 128;
}

/** Docker's wording for a command that cannot start. */
export function dockerStartMessage(msg: string, cmd0: string | undefined): string {
  const code = startFailureExitCode(msg);
  if (code === 127 && cmd0) {
    return `failed to create task for container: OCI runtime create failed: exec: "${cmd0}": executable file not found in $PATH: unknown`;
  }
  if (code === 126 && cmd0) {
    return `failed to create task for container: OCI runtime create failed: exec: "${cmd0}": permission denied: unknown`;
  }
  return `failed to create task for container: OCI runtime create failed: ${msg}: unknown`;
}

/** The verbs berthd needs from an OCI runtime. */
export class OciRuntime {
  constructor(readonly config: RuntimeConfig) {}

  get name(): string {
    return this.config.name;
  }

  private a(...args: string[]): string[] {
    return [...this.config.globalArgs, ...args];
  }

  /** The executable for verbs that create no process. */
  private get bin(): string {
    return this.config.verbPath ?? this.config.path;
  }

  /** Let a created container run its process. */
  async start(id: string): Promise<void> {
    if (await this.startThroughFifo(id)) return;
    await run(this.bin, this.a('start', id));
  }

  /**
   * crun's `start`, without a crun process (issue 7: one process less per container start). A
   * created crun container waits reading `<root>/<id>/exec.fifo`; `crun start` opens it for
   * writing, unlinks it (which is what marks the container running) and writes one byte
   * (crun 1.8 `libcrun_status_write_exec_fifo`). Beyond that crun's start only runs poststart
   * hooks and waits for a notify socket, neither of which berth uses. False (the caller runs the
   * binary) for other runtimes and whenever the fifo has no reader or is missing.
   */
  private async startThroughFifo(id: string): Promise<boolean> {
    const root = this.config.name === 'crun' ? this.stateRoot() : undefined;
    if (!root || /[/\\]|^\.\.?$/.test(id)) return false;
    const fifo = join(root, id, 'exec.fifo');
    let fh;
    try {
      // non-blocking: ENXIO at once when no process waits on it
      fh = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      return false;
    }
    try {
      if (!(await fh.stat()).isFIFO()) return false;
      await unlink(fifo);
      await fh.write(Buffer.alloc(1));
      return true;
    } finally {
      await fh.close();
    }
  }

  /** Send a signal (name without SIG or number). */
  async kill(id: string, signal: string, all = false): Promise<void> {
    await run(this.bin, this.a('kill', ...(all ? ['--all'] : []), id, signal));
  }

  /**
   * False only when the runtime certainly keeps no state for `id`: crun and runc keep one directory
   * per container under their --root, so a missing directory means `delete` has nothing to do (and
   * the caller saves a runtime process, ~10 ms with the crun wrapper; issue 7). True when unsure.
   */
  async hasState(id: string): Promise<boolean> {
    const root = this.stateRoot();
    if (!root || /[/\\]|^\.\.?$/.test(id)) return true;
    return stat(join(root, id)).then(
      () => true,
      (e: NodeJS.ErrnoException) => e.code !== 'ENOENT',
    );
  }

  /** Ids the runtime keeps a record of (crun and runc: the directories under --root); [] when unknown. */
  async stateIds(): Promise<string[]> {
    const root = this.stateRoot();
    if (!root) return [];
    return readdir(root).catch(() => [] as string[]);
  }

  private stateRoot(): string | undefined {
    if (this.config.name !== 'crun' && this.config.name !== 'runc') return undefined;
    const g = this.config.globalArgs;
    const i = g.findIndex((x) => x === '--root' || x.startsWith('--root='));
    return i < 0 ? undefined : g[i] === '--root' ? g[i + 1] : g[i]!.slice('--root='.length);
  }

  /** Remove the runtime's record (and cgroup) of a container. Missing is fine. */
  async delete(id: string, force = false): Promise<void> {
    try {
      await run(this.bin, this.a('delete', ...(force ? ['--force'] : []), id));
    } catch (err) {
      const m = (err as Error).message;
      if (/does not exist|not found|no such/i.test(m)) return;
      throw err;
    }
  }

  /** The runtime's view of a container, or undefined when it has none. */
  async state(id: string): Promise<RuntimeState | undefined> {
    try {
      const out = await run(this.bin, this.a('state', id));
      const j = JSON.parse(out) as { status: RuntimeState['status']; pid: number };
      return { status: j.status, pid: j.pid };
    } catch {
      return undefined;
    }
  }

  async pause(id: string): Promise<void> {
    await run(this.bin, this.a('pause', id));
  }

  async resume(id: string): Promise<void> {
    await run(this.bin, this.a('resume', id));
  }

  /** Apply new resource limits (OCI linux.resources JSON) to a running container. */
  async update(id: string, resources: object): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-update-'));
    const file = join(dir, 'resources.json');
    try {
      await writeFile(file, JSON.stringify(resources));
      await run(this.bin, this.a('update', '--resources', file, id));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

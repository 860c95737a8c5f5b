/**
 * A resident `/bin/sh` that starts short host commands for berthd (issue 7).
 *
 * Every `child_process.spawn` forks berthd's whole process (~80 MB of heap here) and blocks its
 * event loop for ~4 ms while doing so; on the container start path that is most of berthd's own CPU
 * time. A shell started once forks a ~1 MB process instead, and berthd only writes a line to a pipe.
 * Each command runs as a background job of that shell, so commands run concurrently; its stdout and
 * stderr go to files in a private directory, and the job reports `@<n> <exit code>` on the shell's
 * stdout (one short write, atomic on a pipe) when it is done.
 *
 * Arguments are single-quoted, stdin text is passed as a quoted here-document, so no argument or
 * input is ever parsed by the shell. If the shell dies, its pending commands fail and the next
 * command starts a new one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** What a command produced. */
export interface ShellResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface Pending {
  resolve: (r: ShellResult) => void;
  reject: (e: Error) => void;
}

/** Quote one word for sh (single quotes; a quote inside becomes '\''). */
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs commands through one long-lived shell. */
export class ResidentShell {
  private sh: ChildProcess | undefined;
  private seq = 0;
  private buf = '';
  private readonly pending = new Map<number, Pending>();
  private dirReady = false;

  /**
   * @param dir a directory only this shell uses (its job output files); emptied at first use.
   * @param shell the shell binary.
   */
  constructor(private readonly dir: string, private readonly shell = '/bin/sh') {}

  /** Run `argv` (a program and its arguments, no shell syntax) with `input` on stdin. Never throws for a non-zero exit. */
  async exec(argv: string[], input?: string): Promise<ShellResult> {
    const sh = this.start();
    const n = ++this.seq;
    const out = join(this.dir, `${n}.out`);
    const err = join(this.dir, `${n}.err`);
    let stdin = '</dev/null';
    let body = '';
    if (input !== undefined) {
      let tag = `__berth_input_${n}`;
      while (input.includes(tag)) tag += '_';
      stdin = `<<'${tag}'`;
      body = `${input}${input.endsWith('\n') || input === '' ? '' : '\n'}${tag}\n`;
    }
    const done = new Promise<ShellResult>((resolve, reject) => this.pending.set(n, { resolve, reject }));
    this.hold(true);
    // `( … ) &`: a background job, so the shell reads the next command at once
    sh.stdin!.write(`( ${argv.map(quote).join(' ')} >${quote(out)} 2>${quote(err)} ${stdin}\n${body}echo "@${n} $?" ) &\n`);
    let code: number;
    try {
      ({ code } = await done);
    } finally {
      if (this.pending.size === 0) this.hold(false);
    }
    const [stdout, stderr] = await Promise.all([readFile(out, 'utf8').catch(() => ''), readFile(err, 'utf8').catch(() => '')]);
    await Promise.all([rm(out, { force: true }), rm(err, { force: true })]);
    return { code, stdout, stderr };
  }

  /** Let the shell exit (after its running jobs); a later exec starts a new one. */
  close(): void {
    this.sh?.stdin?.end();
    this.sh = undefined;
  }

  private start(): ChildProcess {
    if (this.sh) return this.sh;
    if (!this.dirReady) {
      mkdirSync(this.dir, { recursive: true });
      for (const f of readdirSync(this.dir)) rmSync(join(this.dir, f), { force: true });
      this.dirReady = true;
    }
    const sh = spawn(this.shell, ['-s'], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.sh = sh;
    sh.stdout!.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    const fail = (why: string): void => {
      if (this.sh === sh) this.sh = undefined;
      const e = new Error(`resident shell ${why}`);
      for (const [n, p] of this.pending) {
        this.pending.delete(n);
        p.reject(e);
      }
    };
    sh.on('error', (e) => fail(`failed: ${e.message}`));
    sh.on('exit', (code, signal) => fail(`exited (${signal ?? code})`));
    sh.stdin!.on('error', () => undefined);
    // an idle shell does not keep berthd's process alive (see hold); when berthd exits, the shell
    // sees the end of its input and exits too
    this.sh = sh;
    this.hold(false);
    return sh;
  }

  /** Keep the process alive while commands are pending, not while the shell idles. */
  private hold(on: boolean): void {
    const sh = this.sh;
    if (!sh) return;
    for (const h of [sh, sh.stdout, sh.stdin] as Array<{ ref?: () => void; unref?: () => void } | null>) {
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }

  private onData(d: string): void {
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      const m = /^@(\d+) (\d+)$/.exec(line);
      if (!m) continue;
      const p = this.pending.get(Number(m[1]));
      if (!p) continue;
      this.pending.delete(Number(m[1]));
      p.resolve({ code: Number(m[2]), stdout: '', stderr: '' });
    }
  }
}

/** A small promise wrapper around child_process.spawn with stdin input (used for ip/unshare/netavark). */
import { spawn } from 'node:child_process';

/** Result of {@link run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Something that runs a program like {@link run} does (run itself, or a resident shell). */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<RunResult>;

/** Run a program, feed `input` on stdin, collect output; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout: out, stderr: err }));
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? '');
  });
}

export { systemBinary } from '../host/binaries.js';

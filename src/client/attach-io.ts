/**
 * Moving bytes over attach/exec/logs streams: stdcopy demux to stdout/stderr, stdin forwarding with half-close.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { once } from 'node:events';

import { Deframer, STDERR, SYSTEMERR } from '../wire/stdcopy.js';

async function writeWithBackpressure(dst: Writable, data: Buffer): Promise<void> {
  if (!dst.write(data)) await once(dst, 'drain');
}

/**
 * Copy a daemon output stream to local stdout/stderr. When `multiplexed`, frames are demultiplexed
 * (stream 2 and 3 to stderr); otherwise bytes go to stdout unchanged. Resolves at EOF.
 */
export async function copyOutput(
  src: AsyncIterable<Buffer | string>,
  multiplexed: boolean,
  stdout: Writable,
  stderr: Writable,
): Promise<void> {
  const d = multiplexed ? new Deframer() : undefined;
  for await (const raw of src) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    if (!d) {
      await writeWithBackpressure(stdout, chunk);
      continue;
    }
    for (const f of d.push(chunk)) {
      await writeWithBackpressure(f.stream === STDERR || f.stream === SYSTEMERR ? stderr : stdout, f.data);
    }
  }
}

/**
 * Forward local stdin to the hijacked socket; at stdin EOF half-close the socket (`end()`) so the
 * daemon closes the process's stdin, while output keeps flowing the other way.
 */
export function forwardStdin(stdin: Readable, socket: Duplex): { stop(): void; done: Promise<void> } {
  let stopped = false;
  const onData = (c: Buffer): void => {
    if (stopped) return;
    if (!socket.write(c)) {
      stdin.pause();
      socket.once('drain', () => stdin.resume());
    }
  };
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const onEnd = (): void => {
    if (!stopped && !socket.destroyed) socket.end();
    resolveDone();
  };
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  stdin.once('error', onEnd);
  return {
    stop(): void {
      stopped = true;
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      resolveDone();
    },
    done,
  };
}

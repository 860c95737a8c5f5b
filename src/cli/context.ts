/**
 * The CLI's view of its environment: output streams, stdin, the API client (connected lazily,
 * starting the embedded daemon when nothing answers on the default socket), and exit codes.
 */
import type { Readable, Writable } from 'node:stream';

import { EngineError } from '../base/errors.js';
import type { ApiClient } from '../client/index.js';

/** An error that carries the CLI exit code (docker's cli.StatusError). */
export class StatusError extends EngineError {
  readonly exitCode: number;
  /** Print nothing (the message has already been shown or is empty). */
  readonly silent: boolean;
  constructor(exitCode: number, message = '', silent = message === '') {
    super('internal', message, { code: 'STATUS' });
    this.name = 'StatusError';
    this.exitCode = exitCode;
    this.silent = silent;
  }
}

/** Everything a command gets. */
export interface Cli {
  readonly out: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  readonly err: Writable;
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };
  /**
   * The client. Without BERTH_API_VERSION it contacts the daemon lazily (no `/_ping` first; its
   * first request starts the daemon when none answers, see ApiClientOptions.lazy); with it, it pings
   * first. Either way it may start the daemon.
   */
  client(): Promise<ApiClient>;
  /** Write text to stdout. */
  print(s: string): void;
  /** Environment lookup. */
  getenv(name: string): string | undefined;
}

/** A command implementation: returns the exit code. */
export type CommandFn = (cli: Cli, argv: string[]) => Promise<number>;

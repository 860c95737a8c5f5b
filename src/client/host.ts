/**
 * Daemon address parsing: `unix:///path`, a bare `/path`, or `tcp://host:port`.
 */
import { EngineError } from '../base/errors.js';

/** Default daemon socket of berthd. */
export const DEFAULT_SOCKET = '/run/berth/berth.sock';
/** Default host URL used when neither `-H` nor `BERTH_HOST` is set. */
export const DEFAULT_HOST = `unix://${DEFAULT_SOCKET}`;

/** Where the daemon listens, as node:http connection options. */
export type DaemonAddress =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number };

/** Parse a host string given by `-H`/`BERTH_HOST`. */
export function parseHost(host: string): DaemonAddress {
  const h = host.trim();
  if (h.startsWith('unix://')) {
    const p = h.slice('unix://'.length);
    if (!p) throw new EngineError('invalid-argument', `invalid host: ${host}`);
    return { kind: 'unix', socketPath: p };
  }
  if (h.startsWith('/')) return { kind: 'unix', socketPath: h };
  let rest: string;
  if (h.startsWith('tcp://')) rest = h.slice('tcp://'.length);
  else if (h.startsWith('http://')) rest = h.slice('http://'.length);
  else if (/^[^/]*:\d+$/.test(h)) rest = h;
  else throw new EngineError('invalid-argument', `invalid host: ${host}`);
  rest = rest.replace(/\/+$/, '');
  let hostname: string;
  let portStr: string;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (v6) {
    hostname = v6[1]!;
    portStr = v6[2] ?? '2375';
  } else {
    const i = rest.lastIndexOf(':');
    hostname = i >= 0 ? rest.slice(0, i) : rest;
    portStr = i >= 0 ? rest.slice(i + 1) : '2375';
  }
  const port = Number(portStr);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new EngineError('invalid-argument', `invalid host: ${host}`);
  }
  return { kind: 'tcp', host: hostname || '127.0.0.1', port };
}

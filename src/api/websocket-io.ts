/**
 * WebSocket transport for `GET /containers/{id}/attach/ws` (RFC 6455 over an upgraded socket):
 * the handshake answer, output as one frame per chunk (binary from API 1.28, text before, as moby's
 * x/net/websocket use), client frames unmasked into stdin, ping answered with pong, and a close
 * frame answered and followed by closing the connection.
 */
import type { IncomingMessage } from 'node:http';

import { invalidArgument, messageOf } from '../base/errors.js';
import {
  acceptKey,
  closeFrame,
  encodeFrame,
  FrameDecoder,
  isValidKey,
  CLOSE_NORMAL,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  WsProtocolError,
} from '../wire/websocket.js';
import type { HijackIO, UpgradeIO } from './hijack.js';

/**
 * Check the handshake request (RFC 6455 §4.2.1); returns the Sec-WebSocket-Accept value.
 * Throws invalid-argument (400) for anything that is not a version-13 websocket upgrade.
 */
export function websocketAccept(req: IncomingMessage): string {
  const upgrade = String(req.headers['upgrade'] ?? '').toLowerCase();
  if (!upgrade.split(',').some((u) => u.trim() === 'websocket')) throw invalidArgument('websocket: the client is not using the websocket protocol: \'websocket\' token not found in \'Upgrade\' header');
  const version = String(req.headers['sec-websocket-version'] ?? '');
  if (version.trim() !== '13') throw invalidArgument(`websocket: unsupported version ${JSON.stringify(version)}: only version 13 is supported`);
  const key = req.headers['sec-websocket-key'];
  if (!isValidKey(typeof key === 'string' ? key : undefined)) throw invalidArgument('websocket: missing or invalid Sec-WebSocket-Key');
  return acceptKey(key as string);
}

/** A HijackIO speaking WebSocket frames over an upgraded connection. */
export class WebSocketIO implements HijackIO {
  readonly upgraded = true;
  private closed = false;

  constructor(
    private readonly inner: UpgradeIO,
    private readonly accept: string,
    private readonly binary: boolean,
    private readonly log: (msg: string) => void,
  ) {}

  get started(): boolean {
    return this.inner.started;
  }

  get signal(): AbortSignal {
    return this.inner.signal;
  }

  async readBody(): Promise<Buffer> {
    return Buffer.alloc(0);
  }

  async *input(): AsyncGenerator<Buffer> {
    const dec = new FrameDecoder();
    for await (const chunk of this.inner.input()) {
      let frames;
      try {
        frames = dec.push(chunk);
      } catch (e) {
        const code = e instanceof WsProtocolError ? e.code : 1002;
        this.log(`websocket attach: ${messageOf(e)}`);
        await this.sendClose(code, messageOf(e).slice(0, 100));
        return;
      }
      for (const f of frames) {
        if (f.opcode === OP_TEXT || f.opcode === OP_BINARY || f.opcode === OP_CONTINUATION) {
          if (f.payload.length) yield f.payload;
        } else if (f.opcode === OP_PING) {
          if (!this.closed) await this.inner.write(encodeFrame(OP_PONG, f.payload));
        } else if (f.opcode === OP_CLOSE) {
          // Echo the close (RFC 6455 §5.5.1), then end the connection: the session stops.
          await this.sendClose(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : CLOSE_NORMAL);
          return;
        }
      }
    }
  }

  private async sendClose(code: number, reason = ''): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inner.write(closeFrame(code, reason));
    this.inner.end();
  }

  fail(err: unknown): void {
    this.inner.fail(err);
  }

  finishEmpty(status: number): void {
    this.inner.finishEmpty(status);
  }

  begin(_contentType: string): Promise<void> {
    return this.inner.beginWith('101 Switching Protocols', { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Accept': this.accept });
  }

  write(buf: Buffer): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.inner.write(encodeFrame(this.binary ? OP_BINARY : OP_TEXT, buf));
  }

  end(): void {
    void this.sendClose(CLOSE_NORMAL);
  }
}

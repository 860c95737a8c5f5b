/**
 * RFC 6455 WebSocket pieces for `GET /containers/{id}/attach/ws`: the handshake accept value, the
 * server's (unmasked) frame encoder and an incremental decoder of the client's (masked) frames.
 * Pure: no sockets here; the API edge feeds bytes in and writes frames out.
 */
import { createHash } from 'node:crypto';

/** RFC 6455 §1.3 magic GUID appended to Sec-WebSocket-Key. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Frame opcodes (RFC 6455 §5.2). */
export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Close status codes used by the server (RFC 6455 §7.4.1). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_TOO_BIG = 1009;

/** Largest frame payload accepted from a client (stdin chunks are small; this bounds memory). */
export const MAX_CLIENT_FRAME = 16 << 20;

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key.trim() + WS_GUID).digest('base64');
}

/** True when a Sec-WebSocket-Key is well formed: base64 of 16 bytes. */
export function isValidKey(key: string | undefined): key is string {
  if (typeof key !== 'string' || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) return false;
  return Buffer.from(key.trim(), 'base64').length === 16;
}

/** Encode one unmasked, final frame (what a server sends). */
export function encodeFrame(opcode: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const n = payload.length;
  let head: Buffer;
  if (n < 126) {
    head = Buffer.from([0x80 | opcode, n]);
  } else if (n < 0x10000) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

/** A close frame with a status code (and optional reason). */
export function closeFrame(code: number, reason = ''): Buffer {
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return encodeFrame(OP_CLOSE, body);
}

/** One decoded frame. */
export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A protocol violation by the peer; `code` is the close status to answer with. */
export class WsProtocolError extends Error {
  constructor(
    message: string,
    readonly code: number = CLOSE_PROTOCOL_ERROR,
  ) {
    super(message);
    this.name = 'WsProtocolError';
  }
}

/**
 * Incremental decoder of client frames: push bytes, get complete frames. Enforces what a server
 * must (RFC 6455 §5.1–5.5): client frames are masked, no reserved bits, known opcodes, control
 * frames short and unfragmented, payloads within MAX_CLIENT_FRAME.
 */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPayload = MAX_CLIENT_FRAME) {}

  /** Feed bytes; returns the frames completed by them. Throws WsProtocolError on a bad frame. */
  push(chunk: Buffer): WsFrame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: WsFrame[] = [];
    for (;;) {
      const f = this.next();
      if (!f) return out;
      out.push(f);
    }
  }

  private next(): WsFrame | undefined {
    const b = this.buf;
    if (b.length < 2) return undefined;
    const fin = (b[0]! & 0x80) !== 0;
    if ((b[0]! & 0x70) !== 0) throw new WsProtocolError('reserved bits set');
    const opcode = b[0]! & 0x0f;
    if (![OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG].includes(opcode)) throw new WsProtocolError(`unknown opcode ${opcode}`);
    const masked = (b[1]! & 0x80) !== 0;
    if (!masked) throw new WsProtocolError('client frames must be masked');
    let len = b[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(this.maxPayload)) throw new WsProtocolError('frame too large', CLOSE_TOO_BIG);
      len = Number(big);
      off = 10;
    }
    if (opcode >= 0x8 && (len > 125 || !fin)) throw new WsProtocolError('bad control frame');
    if (len > this.maxPayload) throw new WsProtocolError('frame too large', CLOSE_TOO_BIG);
    if (b.length < off + 4 + len) return undefined;
    const mask = b.subarray(off, off + 4);
    const payload = Buffer.alloc(len);
    for (let i = 0; i < len; i++) payload[i] = b[off + 4 + i]! ^ mask[i & 3]!;
    this.buf = b.subarray(off + 4 + len);
    return { fin, opcode, payload };
  }
}

/** Encode a masked client frame (for tests and clients). */
export function encodeClientFrame(opcode: number, payload: Buffer, mask: Buffer = Buffer.from([0x12, 0x34, 0x56, 0x78]), fin = true): Buffer {
  const plain = encodeFrame(opcode, payload);
  const headLen = plain.length - payload.length;
  const head = Buffer.from(plain.subarray(0, headLen));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = head[1]! | 0x80;
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

/** Decode server (unmasked) frames from a buffer (for tests and clients); returns frames and leftover bytes. */
export function decodeServerFrames(buf: Buffer): { frames: WsFrame[]; rest: Buffer } {
  const frames: WsFrame[] = [];
  let b = buf;
  for (;;) {
    if (b.length < 2) break;
    let len = b[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) break;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) break;
      len = Number(b.readBigUInt64BE(2));
      off = 10;
    }
    if (b.length < off + len) break;
    frames.push({ fin: (b[0]! & 0x80) !== 0, opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(off, off + len)) });
    b = b.subarray(off + len);
  }
  return { frames, rest: b };
}

// Minimal server side of RFC 6455 over an upgraded node:http socket: handshake, masked client
// frames (fragmented or not), binary/text messages, ping/pong and the close handshake.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_MESSAGE = 64 * 1024 * 1024;

const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export interface WebSocketEvents {
  message: [data: Buffer, binary: boolean];
  close: [];
}

export class WebSocketConnection extends EventEmitter<WebSocketEvents> {
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOp = 0;
  private closeSent = false;
  private closed = false;

  constructor(
    readonly socket: Duplex,
    readonly protocol: string,
    head: Buffer,
  ) {
    super();
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.finish());
    socket.on('error', () => this.finish());
    if (head.length) queueMicrotask(() => this.onData(head));
  }

  get isOpen(): boolean {
    return !this.closed && !this.closeSent;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      const fin = (b0 & 0x80) !== 0;
      const op = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE)) return this.fail(1009);
        len = Number(big);
        off = 10;
      }
      if (!masked) return this.fail(1002);
      if (this.buf.length < off + 4 + len) return;
      const mask = this.buf.subarray(off, off + 4);
      const payload = Buffer.from(this.buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      this.buf = this.buf.subarray(off + 4 + len);
      this.onFrame(fin, op, payload);
      if (this.closed) return;
    }
  }

  private onFrame(fin: boolean, op: number, payload: Buffer): void {
    switch (op) {
      case OP_PING:
        this.writeFrame(OP_PONG, payload);
        return;
      case OP_PONG:
        return;
      case OP_CLOSE:
        if (!this.closeSent) this.writeFrame(OP_CLOSE, payload.subarray(0, 2));
        this.closeSent = true;
        this.socket.end();
        this.finish();
        return;
      case OP_TEXT:
      case OP_BINARY:
      case OP_CONT: {
        if (op !== OP_CONT) {
          this.fragmentOp = op;
          this.fragments = [];
        }
        this.fragments.push(payload);
        if (this.fragments.reduce((n, f) => n + f.length, 0) > MAX_MESSAGE) return this.fail(1009);
        if (fin) {
          const msg = Buffer.concat(this.fragments);
          this.fragments = [];
          this.emit('message', msg, this.fragmentOp === OP_BINARY);
        }
        return;
      }
      default:
        this.fail(1002);
    }
  }

  private fail(code: number): void {
    this.close(code);
    this.socket.destroy();
    this.finish();
  }

  private writeFrame(op: number, payload: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return true;
    let header: Buffer;
    if (payload.length < 126) {
      header = Buffer.from([0x80 | op, payload.length]);
    } else if (payload.length < 65536) {
      header = Buffer.alloc(4);
      header[0] = 0x80 | op;
      header[1] = 126;
      header.writeUInt16BE(payload.length, 2);
    } else {
      header = Buffer.alloc(10);
      header[0] = 0x80 | op;
      header[1] = 127;
      header.writeBigUInt64BE(BigInt(payload.length), 2);
    }
    this.socket.write(header);
    return this.socket.write(payload);
  }

  /** Sends one binary message; false means wait for the socket's 'drain'. */
  send(data: Buffer): boolean {
    if (!this.isOpen) return true;
    return this.writeFrame(OP_BINARY, data);
  }

  /** Starts the close handshake; the socket ends when the peer answers (or after a grace period). */
  close(code = 1000): void {
    if (this.closeSent || this.closed) return;
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    this.writeFrame(OP_CLOSE, p);
    this.closeSent = true;
    const t = setTimeout(() => this.socket.destroy(), 2000);
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }
}

/**
 * Completes the upgrade handshake, choosing the first of `supported` the client offers. Returns
 * undefined after answering 400 when the request is not a usable WebSocket upgrade.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, supported: readonly string[]): WebSocketConnection | undefined {
  const key = req.headers['sec-websocket-key'];
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const protocol = supported.find((p) => offered.includes(p));
  if (typeof key !== 'string' || String(req.headers.upgrade).toLowerCase() !== 'websocket' || !protocol) {
    const body = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: protocol ? 'not a websocket upgrade request' : `unable to upgrade: no supported subprotocol in [${offered.join(' ')}]`,
      reason: 'BadRequest',
      code: 400,
    });
    socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    return undefined;
  }
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n` +
      `Sec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
  );
  return new WebSocketConnection(socket, protocol, head);
}

// Server side of SPDY/3.1 as far as Kubernetes' remotecommand needs it (kubectl before 1.30, and
// later ones when WebSockets are turned off or fail): the client opens one stream per channel with
// SYN_STREAM (header `streamtype`), we acknowledge with SYN_REPLY, and data flows in DATA frames
// whose FIN flag half-closes a stream. Header blocks are zlib-compressed with the protocol's
// fixed dictionary, one compression context per direction for the whole session.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import { constants as zc, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';

/** SPDY/3 header dictionary: length-prefixed words, then a literal tail (zlib dictionary id 0xe3c6a7c2). */
const DICT_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag',
  'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
  'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive',
  'origin',
];
const DICT_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized' +
  '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,' +
  'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY_DICTIONARY = Buffer.concat([
  ...DICT_WORDS.flatMap((w) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    return [len, Buffer.from(w, 'latin1')];
  }),
  Buffer.from(DICT_TAIL, 'latin1'),
]);

const SYN_STREAM = 1;
const SYN_REPLY = 2;
const RST_STREAM = 3;
const SETTINGS = 4;
const PING = 6;
const GOAWAY = 7;
const HEADERS = 8;
const WINDOW_UPDATE = 9;
const FLAG_FIN = 0x01;
const MAX_FRAME = 16 * 1024 * 1024;
const DATA_CHUNK = 32 * 1024;

/** Runs zlib over successive header blocks of one session, keeping the shared context. */
class HeaderCodec {
  private readonly inflate: Inflate = createInflate({ dictionary: SPDY_DICTIONARY });
  private readonly deflate: Deflate = createDeflate({ dictionary: SPDY_DICTIONARY });
  private queue: Promise<unknown> = Promise.resolve();

  private run(z: Inflate | Deflate, input: Buffer): Promise<Buffer> {
    const next = this.queue.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          const out: Buffer[] = [];
          const onData = (d: Buffer) => out.push(d);
          const onError = (e: Error) => {
            z.off('data', onData);
            reject(e);
          };
          z.on('data', onData);
          z.once('error', onError);
          z.write(input);
          z.flush(zc.Z_SYNC_FLUSH, () => {
            z.off('data', onData);
            z.off('error', onError);
            resolve(Buffer.concat(out));
          });
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  async decode(block: Buffer): Promise<Map<string, string>> {
    const raw = await this.run(this.inflate, block);
    const headers = new Map<string, string>();
    let pos = 4;
    const count = raw.readUInt32BE(0);
    for (let i = 0; i < count; i++) {
      const nlen = raw.readUInt32BE(pos);
      const name = raw.subarray(pos + 4, pos + 4 + nlen).toString('latin1');
      pos += 4 + nlen;
      const vlen = raw.readUInt32BE(pos);
      headers.set(name.toLowerCase(), raw.subarray(pos + 4, pos + 4 + vlen).toString('latin1'));
      pos += 4 + vlen;
    }
    return headers;
  }

  encode(headers: Map<string, string>): Promise<Buffer> {
    const parts: Buffer[] = [];
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    parts.push(u32(headers.size));
    for (const [k, v] of headers) parts.push(u32(Buffer.byteLength(k)), Buffer.from(k), u32(Buffer.byteLength(v)), Buffer.from(v));
    return this.run(this.deflate, Buffer.concat(parts));
  }

  close(): void {
    this.inflate.destroy();
    this.deflate.destroy();
  }
}

/** One SPDY stream: `incoming` carries the peer's data, write/end send ours. */
export class SpdyStream {
  readonly incoming = new PassThrough();
  private ended = false;

  constructor(
    private readonly session: SpdySession,
    readonly id: number,
    readonly headers: Map<string, string>,
  ) {}

  /** Sends data; resolves when the socket has taken it (backpressure). */
  write(data: Buffer): Promise<void> {
    return this.session.sendData(this.id, data, false);
  }

  end(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.ended = true;
    return this.session.sendData(this.id, Buffer.alloc(0), true);
  }
}

export interface SpdySessionEvents {
  stream: [stream: SpdyStream];
  close: [];
}

export class SpdySession extends EventEmitter<SpdySessionEvents> {
  private buf: Buffer = Buffer.alloc(0);
  private readonly codec = new HeaderCodec();
  private readonly streams = new Map<number, SpdyStream>();
  private processing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(readonly socket: Duplex, head: Buffer) {
    super();
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.finish());
    socket.on('error', () => this.finish());
    if (head.length) this.onData(head);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) s.incoming.end();
    this.codec.close();
    this.emit('close');
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.buf.length < 8) return;
      const len = this.buf.readUIntBE(5, 3);
      if (len > MAX_FRAME) return this.destroy();
      if (this.buf.length < 8 + len) return;
      const frame = this.buf.subarray(0, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      // Header blocks decompress asynchronously; frames are still handled strictly in order.
      this.processing = this.processing.then(() => this.onFrame(frame)).catch(() => this.destroy());
    }
  }

  private async onFrame(frame: Buffer): Promise<void> {
    const flags = frame[4];
    const payload = frame.subarray(8);
    if ((frame[0] & 0x80) === 0) {
      const s = this.streams.get(frame.readUInt32BE(0) & 0x7fffffff);
      if (!s) return;
      if (payload.length) s.incoming.write(Buffer.from(payload));
      if (flags & FLAG_FIN) s.incoming.end();
      return;
    }
    const type = frame.readUInt16BE(2);
    switch (type) {
      case SYN_STREAM: {
        const id = payload.readUInt32BE(0) & 0x7fffffff;
        const headers = await this.codec.decode(payload.subarray(10));
        const s = new SpdyStream(this, id, headers);
        this.streams.set(id, s);
        await this.sendControl(SYN_REPLY, 0, Buffer.concat([u32(id), await this.codec.encode(new Map())]));
        if (flags & FLAG_FIN) s.incoming.end();
        this.emit('stream', s);
        return;
      }
      case HEADERS:
        await this.codec.decode(payload.subarray(4));
        return;
      case RST_STREAM:
        this.streams.get(payload.readUInt32BE(0) & 0x7fffffff)?.incoming.end();
        return;
      case PING:
        await this.sendControl(PING, 0, Buffer.from(payload));
        return;
      case GOAWAY:
        this.socket.end();
        return;
      case SETTINGS:
      case WINDOW_UPDATE:
      default:
        return;
    }
  }

  private write(buf: Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.socket.write(buf)) resolve();
      else this.socket.once('drain', () => resolve());
    });
  }

  private sendControl(type: number, flags: number, payload: Buffer): Promise<void> {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(0x8003, 0);
    h.writeUInt16BE(type, 2);
    h[4] = flags;
    h.writeUIntBE(payload.length, 5, 3);
    return this.write(Buffer.concat([h, payload]));
  }

  async sendData(id: number, data: Buffer, fin: boolean): Promise<void> {
    let off = 0;
    do {
      const part = data.subarray(off, off + DATA_CHUNK);
      off += part.length;
      const h = Buffer.alloc(8);
      h.writeUInt32BE(id & 0x7fffffff, 0);
      h[4] = fin && off >= data.length ? FLAG_FIN : 0;
      h.writeUIntBE(part.length, 5, 3);
      await this.write(Buffer.concat([h, part]));
    } while (off < data.length);
  }

  /** Says goodbye and closes the connection once written. */
  async close(): Promise<void> {
    await this.sendControl(GOAWAY, 0, Buffer.concat([u32(0), u32(0)]));
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
    this.finish();
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

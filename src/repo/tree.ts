// Tree blobs: `{"nodes":[…]}\n` exactly as restic 0.14 (Go 1.19 encoding/json) writes them, since
// the blob id is the SHA-256 of these bytes.
import { IntegrityError, ResticError, UsageError } from '../errors.js';
import { goJsonString, goStringFromBytes, INVALID_BYTE_MARK, quoteName, unquoteName } from './gostring.js';
import { checkGoTime } from './gotime.js';
import type { Node, NodeType } from './node.js';

const NODE_TYPES: ReadonlySet<string> = new Set<NodeType>(['file', 'dir', 'symlink', 'dev', 'chardev', 'fifo', 'socket']);
/** What Go decodes a missing time field to. */
const ZERO_TIME = '0001-01-01T00:00:00Z';
const ID_RE = /^[0-9a-fA-F]{64}$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** restic's order: byte-wise by raw name (Go compares names as byte strings). Sorts in place. */
export function sortNodes(nodes: Node[]): Node[] {
  return nodes.sort((a, b) => Buffer.compare(a.rawName, b.rawName));
}

function uint(v: number | bigint): string {
  return typeof v === 'bigint' ? v.toString() : String(v);
}

/** One node as Go's json.Marshal of restic's Node: field order and omitempty as in its struct tags. */
function encodeNode(n: Node): string {
  let s = '{"name":' + goJsonString(quoteName(n.rawName)) + ',"type":' + goJsonString(n.type);
  if (n.mode) s += ',"mode":' + uint(n.mode);
  s += ',"mtime":' + goJsonString(n.mtime) + ',"atime":' + goJsonString(n.atime) + ',"ctime":' + goJsonString(n.ctime);
  s += ',"uid":' + uint(n.uid) + ',"gid":' + uint(n.gid);
  if (n.user) s += ',"user":' + goJsonString(n.user);
  if (n.group) s += ',"group":' + goJsonString(n.group);
  if (n.inode) s += ',"inode":' + uint(n.inode);
  if (n.deviceId) s += ',"device_id":' + uint(n.deviceId);
  if (n.size) s += ',"size":' + uint(n.size);
  if (n.links) s += ',"links":' + uint(n.links);
  if (n.linktarget) s += ',"linktarget":' + goJsonString(n.linktarget);
  if (n.extendedAttributes !== undefined && n.extendedAttributes.length > 0) {
    const attrs = n.extendedAttributes.map((a) => '{"name":' + goJsonString(a.name) + ',"value":"' + a.value.toString('base64') + '"}');
    s += ',"extended_attributes":[' + attrs.join(',') + ']';
  }
  if (n.device) s += ',"device":' + uint(n.device);
  s += ',"content":' + (n.content === null ? 'null' : '[' + n.content.map((id) => '"' + id + '"').join(',') + ']');
  if (n.subtree !== undefined) s += ',"subtree":"' + n.subtree + '"';
  if (n.error) s += ',"error":' + goJsonString(n.error);
  return s + '}';
}

/** The exact tree blob restic writes, trailing newline included; `nodes` must be sorted (sortNodes). */
export function encodeTree(nodes: readonly Node[]): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    // restic refuses unsorted or duplicate names: such a tree would not be found by name lookups.
    if (i > 0 && Buffer.compare(nodes[i - 1]!.rawName, n.rawName) >= 0) {
      throw new UsageError(`tree nodes not sorted or duplicated at ${JSON.stringify(n.name)}`);
    }
    parts.push(encodeNode(n));
  }
  return Buffer.from('{"nodes":[' + parts.join(',') + ']}\n', 'utf8');
}

// ---- decoding: a small JSON reader with Go's encoding/json semantics ----

/** A JSON number other than a short plain integer, kept as its literal so 64-bit values stay exact. */
class JsonNumber {
  constructor(readonly text: string) {}
}
/** Plain integers of up to 15 digits (always exact as doubles) are JS numbers. */
type JsonValue = null | boolean | string | number | JsonNumber | JsonValue[] | Map<string, JsonValue>;

const MAX_DEPTH = 10_000;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

class JsonReader {
  private pos = 0;
  /** The input as latin1 (one char per byte): ASCII strings and numbers are cheap slices of it. */
  private readonly src: string;
  constructor(private readonly b: Uint8Array) {
    this.src = Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
  }

  fail(what: string): never {
    throw new IntegrityError(`invalid tree JSON: ${what} at byte ${this.pos}`);
  }

  private ws(): void {
    const b = this.b;
    while (this.pos < b.length) {
      const c = b[this.pos]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  /** The whole input as one value followed only by whitespace. */
  document(): JsonValue {
    const v = this.value(0);
    this.ws();
    if (this.pos !== this.b.length) this.fail('trailing data');
    return v;
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    this.ws();
    const c = this.b[this.pos];
    switch (c) {
      case 0x7b:
        return this.object(depth);
      case 0x5b:
        return this.array(depth);
      case 0x22:
        return this.string();
      case 0x74:
        return this.literal('true', true);
      case 0x66:
        return this.literal('false', false);
      case 0x6e:
        return this.literal('null', null);
      default:
        return this.number();
    }
  }

  private literal<T extends JsonValue>(word: string, v: T): T {
    for (let i = 0; i < word.length; i++) {
      if (this.b[this.pos + i] !== word.charCodeAt(i)) this.fail('invalid literal');
    }
    this.pos += word.length;
    return v;
  }

  private number(): number | JsonNumber {
    const start = this.pos;
    const b = this.b;
    const digits = (): number => {
      const from = this.pos;
      while (this.pos < b.length && b[this.pos]! >= 0x30 && b[this.pos]! <= 0x39) this.pos++;
      return this.pos - from;
    };
    if (b[this.pos] === 0x2d) this.pos++;
    if (b[this.pos] === 0x30) this.pos++;
    else if (digits() === 0) this.fail('invalid value');
    if (b[this.pos] === 0x2e) {
      this.pos++;
      if (digits() === 0) this.fail('invalid number');
    }
    if (b[this.pos] === 0x65 || b[this.pos] === 0x45) {
      this.pos++;
      if (b[this.pos] === 0x2b || b[this.pos] === 0x2d) this.pos++;
      if (digits() === 0) this.fail('invalid number');
    }
    const len = this.pos - start;
    if (len <= 15 && b[start] !== 0x2d) {
      let v = 0;
      for (let i = start; i < this.pos; i++) {
        const d = b[i]! - 0x30;
        if (d < 0 || d > 9) return new JsonNumber(this.src.slice(start, this.pos));
        v = v * 10 + d;
      }
      return v;
    }
    return new JsonNumber(this.src.slice(start, this.pos));
  }

  private array(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.ws();
    if (this.b[this.pos] === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.b[this.pos++];
      if (c === 0x5d) return out;
      if (c !== 0x2c) this.fail('expected , or ]');
    }
  }

  /** Keys are lower-cased: Go matches struct fields case-insensitively; a repeated key wins last. */
  private object(depth: number): Map<string, JsonValue> {
    this.pos++;
    const out = new Map<string, JsonValue>();
    this.ws();
    if (this.b[this.pos] === 0x7d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.b[this.pos] !== 0x22) this.fail('expected object key');
      const key = this.string().toLowerCase();
      this.ws();
      if (this.b[this.pos++] !== 0x3a) this.fail('expected :');
      out.set(key, this.value(depth + 1));
      this.ws();
      const c = this.b[this.pos++];
      if (c === 0x7d) return out;
      if (c !== 0x2c) this.fail('expected , or }');
    }
  }

  /**
   * A string literal. Like Go: raw invalid UTF-8 and lone surrogate escapes become U+FFFD. Unlike
   * Go, the escape `\ufffd` itself becomes INVALID_BYTE_MARK: Go only writes it for an invalid byte,
   * and the mark makes the value encode back to the same escape.
   */
  string(): string {
    const b = this.b;
    const start = ++this.pos;
    let plain = true;
    while (this.pos < b.length) {
      const c = b[this.pos]!;
      if (c === 0x22) break;
      if (c === 0x5c || c >= 0x80 || c < 0x20) {
        plain = false;
        break;
      }
      this.pos++;
    }
    if (plain) {
      if (this.pos >= b.length) this.fail('unterminated string');
      this.pos++;
      return this.src.slice(start, this.pos - 1);
    }
    this.pos = start;
    let out = '';
    let run = start;
    const flush = (): void => {
      if (this.pos > run) out += goStringFromBytes(b.subarray(run, this.pos), '\ufffd');
    };
    for (;;) {
      if (this.pos >= b.length) this.fail('unterminated string');
      const c = b[this.pos]!;
      if (c === 0x22) {
        flush();
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      flush();
      const e = b[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const u = this.hex4();
          if (u === 0xfffd) out += INVALID_BYTE_MARK;
          else if (u >= 0xd800 && u < 0xdc00 && b[this.pos] === 0x5c && b[this.pos + 1] === 0x75) {
            const save = this.pos;
            this.pos += 2;
            const low = this.hex4();
            if (low >= 0xdc00 && low <= 0xdfff) out += String.fromCharCode(u, low);
            else {
              out += '\ufffd';
              this.pos = save;
            }
          } else if (u >= 0xd800 && u <= 0xdfff) out += '\ufffd';
          else out += String.fromCharCode(u);
          break;
        }
        default:
          this.fail('invalid escape');
      }
      run = this.pos;
    }
  }

  private hex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.b[this.pos + i];
      const d = c === undefined ? -1 : c >= 0x30 && c <= 0x39 ? c - 0x30 : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 ? (c | 0x20) - 0x57 : -1;
      if (d < 0) this.fail('invalid \\u escape');
      v = v * 16 + d;
    }
    this.pos += 4;
    return v;
  }
}

function typeName(v: JsonValue): string {
  if (v === null) return 'null';
  if (typeof v === 'number' || v instanceof JsonNumber) return 'number';
  if (v instanceof Map) return 'object';
  return Array.isArray(v) ? 'array' : typeof v;
}

function fieldError(field: string, v: JsonValue): IntegrityError {
  return new IntegrityError(`invalid tree: node field "${field}" has unexpected ${typeName(v)}`);
}

function str(obj: Map<string, JsonValue>, field: string): string {
  const v = obj.get(field);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw fieldError(field, v);
  return v;
}

/** A Go unsigned integer of `bits` bits; numbers beyond 2^53 come back as bigint. */
function uintField(obj: Map<string, JsonValue>, field: string, bits: 32 | 64): number | bigint {
  const v = obj.get(field);
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') {
    if (bits === 32 && v > 0xffffffff) throw new IntegrityError(`invalid tree: node field "${field}" out of range`);
    return v;
  }
  // Go's unsigned fields take plain integer literals only (no sign, fraction or exponent).
  if (!(v instanceof JsonNumber) || !/^[1-9][0-9]*$/.test(v.text)) throw fieldError(field, v);
  const n = BigInt(v.text);
  if (n >= 1n << BigInt(bits)) throw new IntegrityError(`invalid tree: node field "${field}" out of range`);
  return n <= MAX_SAFE ? Number(n) : n;
}

function numField(obj: Map<string, JsonValue>, field: string, bits: 32 | 64): number {
  const n = uintField(obj, field, bits);
  if (typeof n === 'bigint') throw new IntegrityError(`invalid tree: node field "${field}" too large`);
  return n;
}

function timeField(obj: Map<string, JsonValue>, field: string): string {
  const v = obj.get(field);
  if (v === undefined || v === null) return ZERO_TIME;
  if (typeof v !== 'string') throw fieldError(field, v);
  checkGoTime(v);
  return v;
}

function idField(v: JsonValue, field: string): string {
  if (typeof v !== 'string' || !ID_RE.test(v)) throw fieldError(field, v);
  return v.toLowerCase();
}

function decodeNode(v: JsonValue): Node {
  if (!(v instanceof Map)) throw new IntegrityError(`invalid tree: node is ${typeName(v)}`);
  const type = str(v, 'type');
  if (!NODE_TYPES.has(type)) throw new IntegrityError(`invalid tree: unknown node type ${JSON.stringify(type)}`);
  const rawName = unquoteName(str(v, 'name'));
  const content = v.get('content');
  let ids: string[] | null = null;
  if (Array.isArray(content)) ids = content.map((id) => idField(id, 'content'));
  else if (content !== undefined && content !== null) throw fieldError('content', content);
  const node: Node = {
    rawName,
    name: rawName.toString('utf8'),
    type: type as NodeType,
    mtime: timeField(v, 'mtime'),
    atime: timeField(v, 'atime'),
    ctime: timeField(v, 'ctime'),
    uid: numField(v, 'uid', 32),
    gid: numField(v, 'gid', 32),
    content: ids,
  };
  // Zero values are left out, matching omitempty: an absent field and a zero one encode alike.
  const mode = numField(v, 'mode', 32);
  if (mode) node.mode = mode;
  const user = str(v, 'user');
  if (user) node.user = user;
  const group = str(v, 'group');
  if (group) node.group = group;
  const inode = uintField(v, 'inode', 64);
  if (inode) node.inode = inode;
  const deviceId = uintField(v, 'device_id', 64);
  if (deviceId) node.deviceId = deviceId;
  const size = numField(v, 'size', 64);
  if (size) node.size = size;
  const links = numField(v, 'links', 64);
  if (links) node.links = links;
  const linktarget = str(v, 'linktarget');
  if (linktarget) node.linktarget = linktarget;
  const attrs = v.get('extended_attributes');
  if (Array.isArray(attrs) && attrs.length > 0) {
    node.extendedAttributes = attrs.map((a) => {
      if (!(a instanceof Map)) throw fieldError('extended_attributes', a);
      const value = str(a, 'value');
      if (!BASE64_RE.test(value)) throw fieldError('extended_attributes', value);
      return { name: str(a, 'name'), value: Buffer.from(value, 'base64') };
    });
  } else if (attrs !== undefined && attrs !== null && !Array.isArray(attrs)) throw fieldError('extended_attributes', attrs);
  const device = numField(v, 'device', 64);
  if (device) node.device = device;
  const subtree = v.get('subtree');
  if (subtree !== undefined && subtree !== null) node.subtree = idField(subtree, 'subtree');
  const error = str(v, 'error');
  if (error) node.error = error;
  return node;
}

/** Parses a tree blob; unknown fields are ignored, malformed data throws IntegrityError. */
export function decodeTreeExact(data: Uint8Array): Node[] {
  const doc = new JsonReader(data).document();
  if (doc === null) return [];
  if (!(doc instanceof Map)) throw new IntegrityError(`invalid tree: top level is ${typeName(doc)}`);
  const nodes = doc.get('nodes');
  if (nodes === undefined || nodes === null) return [];
  if (!Array.isArray(nodes)) throw new IntegrityError(`invalid tree: "nodes" is ${typeName(nodes)}`);
  return nodes.map(decodeNode);
}

const KNOWN_FIELDS = new Set(['name', 'type', 'mode', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'user', 'group', 'inode', 'device_id', 'size', 'links', 'linktarget', 'device', 'content', 'subtree', 'error']);
const LOWER_ID = /^[0-9a-f]{64}$/;

/** Thrown inside the fast path when a tree needs the exact decoder. */
class Unusual extends Error {}

function count(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Unusual();
  return v;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new Unusual();
  return v;
}

/** Strict UTF-8: restic writes link targets and names as raw bytes, which may be invalid UTF-8. */
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function time(v: unknown): string {
  if (v === undefined || v === null) return ZERO_TIME;
  const t = text(v);
  checkGoTime(t);
  return t;
}

function id(v: unknown): string {
  if (typeof v !== 'string' || !LOWER_ID.test(v)) throw new Unusual();
  return v;
}

/**
 * decodeTreeExact's result for trees as restic writes them (lower-case field names, integers below
 * 2^53, no extended attributes), several times faster through JSON.parse; undefined for any other
 * tree, which then needs the exact decoder (that also reports malformed trees).
 */
export function decodeTreeFast(data: Uint8Array): Node[] | undefined {
  try {
    let json: string;
    try {
      json = utf8Strict.decode(data);
    } catch {
      throw new Unusual();
    }
    // Escapes JSON.parse reads differently from the exact decoder: surrogates (\ud800…; Go reads lone
    // ones otherwise and never writes any) and \ufffd (Go's mark for a byte of invalid UTF-8, kept apart
    // from a real U+FFFD so the tree encodes back to the same bytes).
    if (/\\u(?:[dD][89a-fA-F]|[fF][fF][fF][dD])/.test(json)) throw new Unusual();
    const doc = JSON.parse(json) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Unusual();
    const list = (doc as { nodes?: unknown }).nodes;
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list)) throw new Unusual();
    return list.map((v: unknown): Node => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Unusual();
      const o = v as Record<string, unknown>;
      for (const k in o) if (!KNOWN_FIELDS.has(k)) throw new Unusual();
      const type = text(o.type);
      if (!NODE_TYPES.has(type)) throw new Unusual();
      const rawName = unquoteName(text(o.name));
      let content: string[] | null = null;
      if (Array.isArray(o.content)) content = o.content.map(id);
      else if (o.content !== undefined && o.content !== null) throw new Unusual();
      // decodeNode's rules, with named property reads: one builder for both decoders (fields looked up
      // by name through an interface) made this path ~25 % slower.
      const node: Node = {
        rawName,
        name: rawName.toString('utf8'),
        type: type as Node['type'],
        mtime: time(o.mtime),
        atime: time(o.atime),
        ctime: time(o.ctime),
        uid: count(o.uid),
        gid: count(o.gid),
        content,
      };
      if (node.uid > 0xffffffff || node.gid > 0xffffffff) throw new Unusual();
      const mode = count(o.mode);
      if (mode > 0xffffffff) throw new Unusual();
      if (mode) node.mode = mode;
      const user = text(o.user);
      if (user) node.user = user;
      const group = text(o.group);
      if (group) node.group = group;
      const inode = count(o.inode);
      if (inode) node.inode = inode;
      const deviceId = count(o.device_id);
      if (deviceId) node.deviceId = deviceId;
      const size = count(o.size);
      if (size) node.size = size;
      const links = count(o.links);
      if (links) node.links = links;
      const linktarget = text(o.linktarget);
      if (linktarget) node.linktarget = linktarget;
      const device = count(o.device);
      if (device) node.device = device;
      if (o.subtree !== undefined && o.subtree !== null) node.subtree = id(o.subtree);
      const error = text(o.error);
      if (error) node.error = error;
      return node;
    });
  } catch (err) {
    if (err instanceof Unusual || err instanceof SyntaxError || err instanceof ResticError) return undefined;
    throw err;
  }
}

/** A tree blob's nodes, as restic's Go decoder reads them; IntegrityError for a malformed tree. */
export function decodeTree(data: Uint8Array): Node[] {
  return decodeTreeFast(data) ?? decodeTreeExact(data);
}

// Go 1.19's path/filepath.Match on Unix and the helpers restic's filter builds on it (Clean, the
// byte-string view of names). Written from Go's documented behaviour; restic 0.14 is built with Go 1.19.

/** A pattern that filepath.Match rejects (Go's ErrBadPattern). */
export class BadPatternError extends Error {
  override name = 'BadPatternError';
}

/** UTF-16 units taken by the code point at `i`. */
function width(s: string, i: number): number {
  const u = s.charCodeAt(i);
  return u >= 0xd800 && u <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
}

/** Splits off the leading stars and the chunk up to the next star outside a `[...]` class. */
function scanChunk(pattern: string): { star: boolean; chunk: string; rest: string } {
  let p = 0;
  while (p < pattern.length && pattern[p] === '*') p++;
  const star = p > 0;
  let inRange = false;
  let i = p;
  scan: for (; i < pattern.length; i++) {
    switch (pattern[i]) {
      case '\\':
        if (i + 1 < pattern.length) i++;
        break;
      case '[':
        inRange = true;
        break;
      case ']':
        inRange = false;
        break;
      case '*':
        if (!inRange) break scan;
    }
  }
  return { star, chunk: pattern.slice(p, i), rest: pattern.slice(i) };
}

/** One (possibly escaped) character of a `[...]` class and the position after it. */
function getEsc(chunk: string, c: number): [number, number] {
  if (c >= chunk.length || chunk[c] === '-' || chunk[c] === ']') throw new BadPatternError('syntax error in pattern');
  if (chunk[c] === '\\') {
    c++;
    if (c >= chunk.length) throw new BadPatternError('syntax error in pattern');
  }
  const r = chunk.codePointAt(c)!;
  // A lone surrogate stands for a byte that is not UTF-8: Go's decoder reports RuneError there.
  if (r >= 0xd800 && r <= 0xdfff) throw new BadPatternError('syntax error in pattern');
  c += r > 0xffff ? 2 : 1;
  if (c >= chunk.length) throw new BadPatternError('syntax error in pattern');
  return [r, c];
}

/**
 * Matches `chunk` (no stars) at the start of `s`; returns the unmatched rest, or undefined. Like Go,
 * the whole chunk is parsed even after a mismatch, so a malformed chunk always throws.
 */
function matchChunk(chunk: string, s: string): string | undefined {
  let failed = false;
  let si = 0;
  let c = 0;
  while (c < chunk.length) {
    if (!failed && si >= s.length) failed = true;
    const ch = chunk[c];
    if (ch === '[') {
      let r = 0;
      if (!failed) {
        r = s.codePointAt(si)!;
        si += width(s, si);
      }
      c++;
      let negated = false;
      if (c < chunk.length && chunk[c] === '^') {
        negated = true;
        c++;
      }
      let match = false;
      for (let ranges = 0; ; ranges++) {
        if (c < chunk.length && chunk[c] === ']' && ranges > 0) {
          c++;
          break;
        }
        let lo: number;
        let hi: number;
        [lo, c] = getEsc(chunk, c);
        hi = lo;
        if (chunk[c] === '-') [hi, c] = getEsc(chunk, c + 1);
        if (lo <= r && r <= hi) match = true;
      }
      if (match === negated) failed = true;
    } else if (ch === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si += width(s, si);
      }
      c++;
    } else {
      if (ch === '\\') {
        c++;
        if (c >= chunk.length) throw new BadPatternError('syntax error in pattern');
      }
      if (!failed) {
        if (chunk[c] !== s[si]) failed = true;
        si++;
      }
      c++;
    }
  }
  return failed ? undefined : s.slice(si);
}

/**
 * Go's filepath.Match: `*` any run of non-`/` characters, `?` one non-`/` character, `[...]` a class
 * (`^` negates, `a-z` ranges), `\` escapes. Throws BadPatternError for a malformed pattern.
 * (Go steps a star through bytes, we through characters: the two differ only when `?` or a class
 * would have to match part of a multi-byte character.)
 */
export function goMatch(pattern: string, name: string): boolean {
  let p = pattern;
  let n = name;
  next: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p);
    p = rest;
    if (star && chunk === '') return !n.includes('/');
    const t = matchChunk(chunk, n);
    if (t !== undefined && (t.length === 0 || p.length > 0)) {
      n = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < n.length && n[i] !== '/'; i += width(n, i)) {
        const t2 = matchChunk(chunk, n.slice(i + width(n, i)));
        if (t2 === undefined) continue;
        // The last chunk must use up the name.
        if (p.length === 0 && t2.length > 0) continue;
        n = t2;
        continue next;
      }
    }
    // Go 1.19 does not look at the rest of the pattern here, malformed or not.
    return false;
  }
  return n.length === 0;
}

/** Go's path.Clean (Unix filepath.Clean): shortest equivalent path, "." for empty. */
export function goClean(path: string): string {
  if (path === '') return '.';
  const rooted = path.startsWith('/');
  const out: string[] = [];
  let dotdot = 0;
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > dotdot) out.pop();
      else if (!rooted) {
        out.push('..');
        dotdot = out.length;
      }
      continue;
    }
    out.push(seg);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** Byte length of the UTF-8 sequence at `i` if valid by Go's rules (no overlongs, no surrogates), else 0. */
function utf8Len(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f)) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return 0;
    return 4;
  }
  return 0;
}

/**
 * A byte string (file name, path) as a JS string for matching: valid UTF-8 decoded, every other byte
 * as the lone surrogate U+DC80+byte, so distinct byte strings stay distinct and a `?` takes one
 * invalid byte, as Go's rune decoding does.
 */
export function bytesToMatchString(raw: Uint8Array): string {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  const text = buf.toString('utf8');
  if (!text.includes('\ufffd')) return text;
  let out = '';
  let start = 0;
  for (let i = 0; i < raw.length; ) {
    const n = utf8Len(raw, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += buf.toString('utf8', start, i) + String.fromCharCode(0xdc80 + raw[i]!);
    i++;
    start = i;
  }
  return out + buf.toString('utf8', start);
}

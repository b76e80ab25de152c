// Reading pattern and file lists the way restic 0.14's backup does: textfile.Read (UTF-8 BOM dropped,
// UTF-16 with BOM converted), bufio line splitting, whitespace trimming, "#" comments, and for
// exclude files Go's os.Expand of $VAR / ${VAR} ("$$" is a literal "$").
import { readFile } from 'node:fs/promises';
import { bytesToMatchString } from './gomatch.js';

/** restic's textfile.Decode: text bytes → string (invalid UTF-8 bytes kept distinct, see bytesToMatchString). */
export function decodeTextFile(data: Uint8Array): string {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return bytesToMatchString(buf.subarray(3));
  if (buf[0] === 0xfe && buf[1] === 0xff) return new TextDecoder('utf-16be').decode(buf.subarray(2));
  if (buf[0] === 0xff && buf[1] === 0xfe) return new TextDecoder('utf-16le').decode(buf.subarray(2));
  return bytesToMatchString(buf);
}

/** Go's bufio.ScanLines: split at "\n", drop one trailing "\r", no empty last line. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Go's strings.TrimSpace (Unicode White_Space; unlike String.trim, U+FEFF is kept). */
export function goTrimSpace(s: string): string {
  return s.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g, '');
}

const SPECIAL_VAR = /[*#$@!?\-0-9]/;
const ALNUM = /[_0-9A-Za-z]/;

/** Go's os.Expand: `$name`, `${name}`, single-character special names; bad `${` syntax is dropped. */
export function goExpand(s: string, mapping: (name: string) => string): string {
  let out = '';
  let i = 0;
  for (let j = 0; j < s.length; j++) {
    if (s[j] !== '$' || j + 1 >= s.length) continue;
    out += s.slice(i, j);
    const rest = s.slice(j + 1);
    let name = '';
    let w = 0;
    if (rest[0] === '{') {
      if (rest.length > 2 && SPECIAL_VAR.test(rest[1]!) && rest[2] === '}') {
        name = rest[1]!;
        w = 3;
      } else {
        const close = rest.indexOf('}', 1);
        if (close === 1) w = 2; // "${}": eaten
        else if (close < 0) w = 1; // "${" without "}": eaten
        else {
          name = rest.slice(1, close);
          w = close + 1;
        }
      }
    } else if (SPECIAL_VAR.test(rest[0]!)) {
      name = rest[0]!;
      w = 1;
    } else {
      while (w < rest.length && ALNUM.test(rest[w]!)) w++;
      name = rest.slice(0, w);
    }
    if (name !== '') out += mapping(name);
    else if (w === 0) out += '$'; // "$" not followed by a name stays
    j += w;
    i = j + 1;
  }
  return i === 0 ? s : out + s.slice(i);
}

/** Patterns of an exclude file's text: trimmed lines, no blanks or "#" comments, variables expanded. */
export function parsePatternFile(text: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const patterns: string[] = [];
  for (const raw of splitLines(text)) {
    const line = goTrimSpace(raw);
    if (line === '' || line.startsWith('#')) continue;
    patterns.push(goExpand(line, (name) => (name === '$' ? '$' : (env[name] ?? ''))));
  }
  return patterns;
}

/** Reads exclude files (--exclude-file / --iexclude-file) into one pattern list, in order. */
export async function readPatternFiles(files: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const patterns: string[] = [];
  for (const file of files) patterns.push(...parsePatternFile(decodeTextFile(await readFile(file)), env));
  return patterns;
}

// restic 0.14's pattern matcher (internal/filter) and exclude-file reading. The same patterns are
// cross-checked against the real restic binary in backup-exclude.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePatterns, goExpand, goMatch, invalidPatterns, matchPattern, parsePatternFile, decodeTextFile, bytesToMatchString } from '../src/filter/index.js';
import { UsageError } from '../src/errors.js';

describe('goMatch (Go filepath.Match)', () => {
  const cases: [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['*', 'abc', true],
    ['*c', 'abc', true],
    ['a*', 'a', true],
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['ab[^b-d]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'a/b', false],
    ['a*b', 'a/b', false],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['*x', 'xxx', true],
  ];
  it.each(cases)('%s vs %s', (pattern, name, want) => expect(goMatch(pattern, name)).toBe(want));

  it.each(['[', '[^', '[^bc', 'a[', '[]a]', '[-]', '[x-]', '[a-b-c]', 'a\\', '[\\'])('rejects %s', (pattern) => {
    expect(() => goMatch(pattern, 'x')).toThrow();
  });

  it('parses a failing chunk to its end, but not the chunks after it (Go 1.19)', () => {
    expect(() => goMatch('x[', 'a')).toThrow();
    expect(goMatch('x*[', 'a')).toBe(false);
  });
});

describe('compilePatterns', () => {
  // pattern list, path, matches, childMayMatch
  const table: [string[], string, boolean, boolean][] = [
    [['*.go'], '/src/x/main.go', true, true],
    [['*.go'], '/src/x', false, true],
    [['x'], '/a/x/b', true, true], // a component anywhere: everything below an excluded dir
    [['x'], '/a/xy', false, true],
    [['a/b'], '/r/a/b/c', true, true],
    [['a/b'], '/r/a/c/b', false, true],
    [['/r/a'], '/r/a/c', true, true],
    [['/r/a'], '/s/r/a', false, false],
    [['/r/a/'], '/r/a', true, true], // cleaned: trailing slash dropped
    [['/r/./a//b'], '/r/a/b', true, true],
    [['/r/../a'], '/a', true, true],
    [['/r/*'], '/r', false, true],
    [['/r/*'], '/r/z', true, true],
    [['/r/*/c'], '/r/z/d', false, false],
    [['**/c'], '/r/z/c', true, true],
    [['/r/**/c'], '/r/c', true, true],
    [['/r/**/c'], '/r/a/b/c', true, true],
    [['/r/**/c'], '/q/a/b/c', false, false],
    [['/r/**'], '/r/a/b', true, true],
    [['a/**/b/**/c'], '/x/a/1/b/2/3/c', true, true],
    [['*'], '/anything', true, true],
    [['?'], '/ab', false, true],
    [['?'], '/ab/c', true, true],
    [['*.tmp', '!keep.tmp'], '/d/keep.tmp', false, false],
    [['*.tmp', '!keep.tmp'], '/d/other.tmp', true, true],
    [['!keep.tmp', '*.tmp'], '/d/keep.tmp', true, true], // later patterns win
    [['/d/*', '!/d/b', '/d/b/x*'], '/d/b/xy', true, true],
    [['/d/*', '!/d/b', '/d/b/x*'], '/d/b/yy', false, false],
    [['[ab]*'], '/z/bcd', true, true],
    [['\\*'], '/z/*', true, true],
    [['\\*'], '/z/q', false, true],
    [[], '/a', false, false],
    [[''], '/a', false, false],
  ];
  it.each(table)('%j on %s', (patterns, path, matched, child) => {
    const m = compilePatterns(patterns);
    expect(m.matches(path)).toBe(matched);
    expect(m.match(path)).toEqual({ matched, childMayMatch: child });
    expect(m.childMayMatch(path)).toBe(child);
  });

  it('is case-sensitive unless asked', () => {
    expect(compilePatterns(['*.JPG']).matches('/p/a.jpg')).toBe(false);
    expect(compilePatterns(['*.JPG'], { caseInsensitive: true }).matches('/P/A.jpg')).toBe(true);
    expect(compilePatterns(['/Photos/raw'], { caseInsensitive: true }).matches('/PHOTOS/RAW/x')).toBe(true);
  });

  it('names every invalid pattern in one UsageError', () => {
    expect(invalidPatterns(['ok', 'a[', '*', 'b\\'])).toEqual(['a[', 'b\\']);
    expect(() => compilePatterns(['ok', 'a['])).toThrow(UsageError);
    expect(() => compilePatterns(['ok', 'a['])).toThrow(/a\[/);
  });

  it('matches raw byte names without merging invalid bytes', () => {
    const name = Buffer.from([0x2f, 0x64, 0x2f, 0x66, 0xff, 0xfe]); // "/d/f\xff\xfe"
    expect(compilePatterns(['f??']).matches(name)).toBe(true);
    expect(compilePatterns(['f?']).matches(name)).toBe(false);
    expect(compilePatterns(['/d/f*']).matches(name)).toBe(true);
    expect(bytesToMatchString(Buffer.from([0x61, 0xff]))).not.toBe(bytesToMatchString(Buffer.from([0x61, 0xfe])));
    expect(bytesToMatchString(Buffer.from('é☺'))).toBe('é☺');
  });

  it('matchPattern is restic filter.Match for a single pattern', () => {
    expect(matchPattern('', '/x')).toBe(true);
    expect(matchPattern('foo/**/bar/*.go', '/home/foo/bar/test.go')).toBe(true);
    expect(matchPattern('/foo/*', '/foo')).toBe(false);
    expect(() => matchPattern('[', '/x')).toThrow(UsageError);
  });
});

describe('exclude files', () => {
  it('expands variables like os.Expand', () => {
    const env: Record<string, string> = { HOME: '/home/u', X_1: 'v', '1': 'one' };
    const get = (n: string) => (n === '$' ? '$' : (env[n] ?? ''));
    expect(goExpand('$HOME/.cache', get)).toBe('/home/u/.cache');
    expect(goExpand('${HOME}x', get)).toBe('/home/ux');
    expect(goExpand('$X_1-$NOPE-', get)).toBe('v--');
    expect(goExpand('cost$$', get)).toBe('cost$');
    expect(goExpand('$1x', get)).toBe('onex');
    expect(goExpand('a$', get)).toBe('a$');
    expect(goExpand('a$/b', get)).toBe('a$/b');
    expect(goExpand('a${}b', get)).toBe('ab');
    expect(goExpand('a${b', get)).toBe('ab');
    expect(goExpand('plain', get)).toBe('plain');
  });

  it('drops blanks and comments, trims, handles CRLF and BOMs', () => {
    const text = '# comment\r\n  *.tmp  \r\n\r\n\t# indented comment\n$HOME/x\n!keep\n';
    expect(parsePatternFile(text, { HOME: '/h' })).toEqual(['*.tmp', '/h/x', '!keep']);
    expect(decodeTextFile(Buffer.from('\ufeffa\nb', 'utf8'))).toBe('a\nb');
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('*.log\n', 'utf16le')]);
    expect(parsePatternFile(decodeTextFile(utf16))).toEqual(['*.log']);
  });
});

// Differential check against Go 1.19 itself (restic 0.14's toolchain) when a Go compiler is installed.
const GO_PROGRAM = `package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var c [3]string
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			panic(err)
		}
		if c[0] == "expand" {
			fmt.Fprintln(out, os.Expand(c[1], func(s string) string {
				if s == "$" {
					return "$"
				}
				return "<" + s + ">"
			}))
			continue
		}
		ok, err := filepath.Match(c[1], c[2])
		switch {
		case err != nil:
			fmt.Fprintln(out, "E")
		case ok:
			fmt.Fprintln(out, "1")
		default:
			fmt.Fprintln(out, "0")
		}
	}
}
`;

const hasGo = spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;

describe.skipIf(!hasGo)('against Go 1.19 (go run)', () => {
  it('filepath.Match and os.Expand agree on random inputs', () => {
    // Deterministic xorshift so a failure reproduces.
    let x = 0x9e3779b9;
    const rand = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const pick = (alphabet: string[], max: number) => Array.from({ length: rand(max + 1) }, () => alphabet[rand(alphabet.length)]).join('');
    const patAlphabet = ['a', 'b', 'é', '*', '?', '[', ']', '^', '-', '\\', '/', 'a-b'];
    const nameAlphabet = ['a', 'b', 'é', '-', ']', '^', '/', '*'];
    const expAlphabet = ['$', '{', '}', 'a', 'B', '_', '1', '#', '/', '$$'];
    const cases: string[][] = [];
    for (let i = 0; i < 4000; i++) cases.push(['m', pick(patAlphabet, 6), pick(nameAlphabet, 5)]);
    for (let i = 0; i < 1000; i++) cases.push(['expand', pick(expAlphabet, 7), '']);
    const dir = mkdtempSync(join(tmpdir(), 'restic-ts-gomatch-'));
    try {
      writeFileSync(join(dir, 'main.go'), GO_PROGRAM);
      const r = spawnSync('go', ['run', join(dir, 'main.go')], {
        input: cases.map((c) => JSON.stringify(c)).join('\n') + '\n',
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, GOCACHE: join(dir, 'cache'), GOPATH: join(dir, 'gopath'), GO111MODULE: 'off' },
      });
      expect(r.status, r.stderr).toBe(0);
      const want = r.stdout.split('\n');
      const diffs: string[] = [];
      cases.forEach((c, i) => {
        let got: string;
        if (c[0] === 'expand') got = goExpand(c[1]!, (s) => (s === '$' ? '$' : `<${s}>`));
        else {
          try {
            got = goMatch(c[1]!, c[2]!) ? '1' : '0';
          } catch {
            got = 'E';
          }
        }
        if (got !== want[i]) diffs.push(`${JSON.stringify(c)}: go ${want[i]}, ours ${got}`);
      });
      expect(diffs.slice(0, 20)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

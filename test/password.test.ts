// Password sources as restic 0.14 reads them: --password-command (split like restic, no shell),
// --password-file (surrounding whitespace trimmed), RESTIC_PASSWORD; conflicts and failures are one line.
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitShellWords } from '../src/cli/password.js';
import { makeTempDir, removeDir } from './helpers/fixtures.js';
import { expectOk, ours, restic } from './helpers/run.js';

let work: string;
let repo: string;

beforeAll(async () => {
  work = await makeTempDir('password');
  repo = path.join(work, 'repo');
  await writeFile(path.join(work, 'pw'), '  s3cret pass \n');
  await mkdir(path.join(work, 'data'));
  await writeFile(path.join(work, 'data', 'f'), 'x');
  // restic itself makes the repository from the file: its trimming is the reference.
  expectOk('restic init', await restic(['-r', repo, '--password-file', path.join(work, 'pw'), 'init']));
});

afterAll(() => removeDir(work));

describe('splitShellWords (restic SplitShellStrings)', () => {
  it.each([
    ['echo  a b', ['echo', 'a', 'b']],
    [`printf '%s' "two words"`, ['printf', '%s', 'two words']],
    ['a\\b', ['a', 'b']],
    [`x "it's"`, ['x', "it's"]],
  ])('%s', (text, words) => expect(splitShellWords(text)).toEqual(words));

  it('rejects unterminated quotes and empty commands', () => {
    expect(() => splitShellWords(`echo 'a`)).toThrow('single-quoted string not terminated');
    expect(() => splitShellWords('echo "a')).toThrow('double-quoted string not terminated');
    expect(() => splitShellWords('   ')).toThrow('empty');
  });
});

describe('password sources', () => {
  it('a password file is trimmed as restic trims it', async () => {
    expectOk('snapshots', await ours(['-r', repo, '--password-file', path.join(work, 'pw'), 'snapshots']));
  });

  it('--password-command and RESTIC_PASSWORD_COMMAND give the command output', async () => {
    expectOk('flag', await ours(['-r', repo, '--password-command', `printf '%s\\n' "s3cret pass"`, 'backup', path.join(work, 'data')]));
    expectOk('env', await ours(['-r', repo, 'snapshots'], { env: { RESTIC_PASSWORD_COMMAND: 'echo s3cret pass' } }));
    // restic reads the password the same way from the same command.
    expectOk('restic', await restic(['-r', repo, '--password-command', 'echo s3cret pass', 'snapshots']));
  });

  it('a failing command, or file and command together, is one line and exit 1', async () => {
    const failing = await ours(['-r', repo, '--password-command', 'false', 'snapshots']);
    expect(failing.code).toBe(1);
    expect(failing.stderr.trim()).toBe('Fatal: password command false: exit status 1');
    const both = await ours(['-r', repo, '--password-file', path.join(work, 'pw'), '--password-command', 'echo x', 'snapshots']);
    expect(both.code).toBe(1);
    expect(both.stderr.trim()).toBe('Fatal: password file and command are mutually exclusive options');
  });
});

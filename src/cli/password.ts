import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { UsageError } from '../errors.js';

/** Where restic takes a repository password from, in its order of precedence. */
export interface PasswordSources {
  /** --password-file / RESTIC_PASSWORD_FILE. */
  file?: string;
  /** --password-command / RESTIC_PASSWORD_COMMAND: its standard output is the password. */
  command?: string;
  /** RESTIC_PASSWORD (an empty value counts as unset, as in restic). */
  password?: string;
}

/** Whether readPassword can do without asking on the terminal. */
export function givenWithoutPrompt(src: PasswordSources): boolean {
  return !!(src.file || src.command || src.password);
}

/**
 * Reads the password as restic 0.14 does: the command's output or the file's content without
 * surrounding whitespace, else RESTIC_PASSWORD, else a line from the terminal or stdin.
 */
export async function readPassword(src: PasswordSources, prompt: string, confirm = false): Promise<string> {
  if (src.file && src.command) throw new UsageError('password file and command are mutually exclusive options');
  if (src.command) return runPasswordCommand(src.command);
  if (src.file) {
    let text: string;
    try {
      text = readFileSync(src.file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read password file ${src.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return text.trim();
  }
  if (src.password) return src.password;
  const first = await readLine(prompt);
  if (confirm && process.stdin.isTTY) {
    const again = await readLine('enter password again: ');
    if (again !== first) throw new UsageError('passwords do not match');
  }
  if (!first) throw new UsageError('an empty password is not allowed');
  return first;
}

/** Runs the command (split like restic: whitespace, quotes, no shell) with stderr passed through. */
function runPasswordCommand(command: string): string {
  const args = splitShellWords(command);
  const r = spawnSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1024 * 1024 });
  if (r.error) throw new UsageError(`password command ${args[0]}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
  if (r.status !== 0) throw new UsageError(`password command ${args[0]}: exit status ${r.status ?? r.signal}`);
  return r.stdout.trim();
}

/**
 * restic's SplitShellStrings: fields separated by whitespace or backslashes outside quotes; single or
 * double quotes group (a quote after a backslash does not count); no escapes are undone.
 */
export function splitShellWords(text: string): string[] {
  const words: string[] = [];
  let quote = '';
  let last = '';
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    let split: boolean;
    if (last !== '\\' && quote && c === quote) {
      quote = '';
      split = true;
    } else if (last !== '\\' && !quote && (c === '"' || c === "'")) {
      quote = c;
      split = true;
    } else {
      last = c;
      split = !quote && (c === '\\' || /\s/.test(c));
    }
    if (split) {
      if (start >= 0) words.push(text.slice(start, i));
      start = -1;
    } else if (start < 0) start = i;
  }
  if (start >= 0) words.push(text.slice(start));
  if (quote) throw new UsageError(`${quote === "'" ? 'single' : 'double'}-quoted string not terminated`);
  if (words.length === 0) throw new UsageError('password command is empty');
  return words;
}

/** One line from stdin; on a terminal the prompt is shown and the input is not echoed. */
async function readLine(prompt: string): Promise<string> {
  const tty = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: tty ? process.stderr : undefined, terminal: tty });
  if (tty) {
    process.stderr.write(prompt);
    // Hide what is typed: readline echoes through _writeToOutput, which we silence.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
  }
  try {
    const line = await new Promise<string | undefined>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(undefined));
    });
    if (tty) process.stderr.write('\n');
    if (line === undefined) throw new UsageError('no password given: use --password-file, --password-command, RESTIC_PASSWORD_FILE or RESTIC_PASSWORD');
    return line;
  } finally {
    rl.close();
  }
}

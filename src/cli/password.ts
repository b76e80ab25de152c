import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { UsageError } from '../errors.js';

/** Where restic takes the repository password from, in its order of precedence. */
export interface PasswordSources {
  passwordFile?: string;
  env: NodeJS.ProcessEnv;
}

/** Reads the password: --password-file, RESTIC_PASSWORD_FILE, RESTIC_PASSWORD, else the terminal or stdin. */
export async function readPassword(src: PasswordSources, prompt: string, confirm = false): Promise<string> {
  const file = src.passwordFile ?? src.env.RESTIC_PASSWORD_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read password file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // restic strips only the trailing line break(s).
    return text.replace(/[\r\n]+$/, '');
  }
  if (src.env.RESTIC_PASSWORD !== undefined) return src.env.RESTIC_PASSWORD;
  const first = await readLine(prompt);
  if (confirm && process.stdin.isTTY) {
    const again = await readLine('enter password again: ');
    if (again !== first) throw new UsageError('passwords do not match');
  }
  if (!first) throw new UsageError('an empty password is not allowed');
  return first;
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
    if (line === undefined) throw new UsageError('no password given: use --password-file, RESTIC_PASSWORD_FILE or RESTIC_PASSWORD');
    return line;
  } finally {
    rl.close();
  }
}

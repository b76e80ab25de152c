// Output with a live status area, like restic's termstatus: on a terminal the status lines stay at
// the bottom and are redrawn in place, messages scroll above them; elsewhere there is no status area.

export interface TerminalStreams {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  err: NodeJS.WritableStream;
}

const CLEAR_TO_END = '\x1b[J';

export class StatusTerminal {
  private status: string[] = [];
  /** Status lines currently on screen (the cursor sits below them). */
  private drawn = 0;
  /** Whether a status area can be drawn (stdout is a terminal). */
  readonly canUpdateStatus: boolean;

  constructor(private readonly streams: TerminalStreams = { out: process.stdout, err: process.stderr }) {
    this.canUpdateStatus = streams.out.isTTY === true && process.env.TERM !== 'dumb';
  }

  /** Replaces the status lines (ignored when stdout is not a terminal). */
  setStatus(lines: readonly string[]): void {
    if (!this.canUpdateStatus) return;
    this.status = lines.map((l) => this.fit(l));
    this.streams.out.write(this.erase() + this.render());
  }

  /** A message on stdout (a newline is added if missing). */
  print(message: string): void {
    this.write(this.streams.out, message);
  }

  /** A message on stderr. */
  error(message: string): void {
    this.write(this.streams.err, message);
  }

  /** Removes the status area for good. */
  finish(): void {
    if (!this.canUpdateStatus || this.drawn === 0) return;
    this.streams.out.write(this.erase());
    this.status = [];
  }

  private write(stream: NodeJS.WritableStream, message: string): void {
    const text = message.endsWith('\n') ? message : message + '\n';
    if (!this.canUpdateStatus || this.drawn === 0) {
      stream.write(text);
      return;
    }
    // Take the status away, print, draw it again below the message.
    this.streams.out.write(this.erase());
    stream.write(text);
    this.streams.out.write(this.render());
  }

  private erase(): string {
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    this.drawn = 0;
    return `${up}\r${CLEAR_TO_END}`;
  }

  private render(): string {
    const lines = this.status.filter((l, i) => i === 0 || l !== '');
    if (lines.length === 0 || (lines.length === 1 && lines[0] === '')) return '';
    this.drawn = lines.length;
    return lines.join('\n') + '\n';
  }

  /** Cuts a line to the terminal width so that it never wraps (wrapping would break the redraw). */
  private fit(line: string): string {
    const width = this.streams.out.columns || 80;
    const chars = [...line];
    return chars.length < width ? line : chars.slice(0, Math.max(0, width - 1)).join('');
  }
}

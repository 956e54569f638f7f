import type { Notification } from '../monitoring/alerts/state.ts';

/**
 * A one-line live status on stderr: redrawn in place on a terminal, a log line every `everyMs` otherwise
 * (CI logs, pipes), so long runs always show that they are alive and how fast they go.
 */
export class StatusLine {
  private readonly tty = process.stderr.isTTY === true;
  private last = 0;
  private lastText = '';
  private readonly everyMs: number;
  /** Where `print` writes (stdout by default; stderr when stdout is kept for machine-readable output). */
  private readonly out: NodeJS.WritableStream;

  constructor(everyMs = 5_000, out: NodeJS.WritableStream = process.stdout) {
    this.everyMs = everyMs;
    this.out = out;
  }

  update(text: string, force = false): void {
    const now = Date.now();
    this.lastText = text;
    if (this.tty) {
      if (!force && now - this.last < 100) return;
      this.last = now;
      process.stderr.write(`\r\x1b[2K${text}`);
    } else if (force || now - this.last >= this.everyMs) {
      this.last = now;
      process.stderr.write(text + '\n');
    }
  }

  /** Prints a line above the status line (e.g. a closed candle). */
  print(line: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    this.out.write(line + '\n');
    if (this.tty && this.lastText) process.stderr.write(this.lastText);
  }

  /** Writes a line to stderr above the status line (a log line while it is drawn). */
  note(line: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(line + '\n');
    if (this.tty && this.lastText) process.stderr.write(this.lastText);
  }

  /** Removes the status line (before an error is printed in its place). */
  clear(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }

  done(text: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(text + '\n');
  }
}

export const n = (x: number) => x.toLocaleString('en-US');
export const iso = (ts: number) => new Date(ts).toISOString().replace('T', ' ').slice(0, 19);

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warning',
  50: 'error',
  60: 'fatal',
};

/**
 * A JSON log line as one short line for a person at a terminal: level, who, what, and why (the error's message or the
 * reason), e.g. `warning: kraken-ws: reconnecting (getaddrinfo ENOTFOUND ws.kraken.com)`. A line that is not JSON is
 * returned as it is.
 */
export function humanLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.trimEnd();
  }
  const level = LEVELS[o.level as number] ?? String(o.level ?? 'log');
  const who = [o.component, o.service, o.source].find((v) => typeof v === 'string') as string | undefined;
  const err = o.err as { message?: unknown } | string | undefined;
  const why = typeof err === 'string' ? err : typeof err?.message === 'string' ? err.message : o.reason;
  return `${level}: ${who ? `${who}: ` : ''}${String(o.msg ?? '')}${typeof why === 'string' && why ? ` (${why})` : ''}`;
}

/**
 * One line for an alert's transition, at the alert's own time (a replay's event time, not the wall clock's), e.g.
 * `alert firing at 2022-05-09 19:46:00: model-worse-than-persistence (warning) ETH/USDT: …` and `alert resolved at
 * 2022-05-09 21:51:00: model-worse-than-persistence ETH/USDT, firing since 2022-05-09 19:46:00: …`; a reminder says
 * `still firing` and its number.
 */
export function alertLine(a: Notification): string {
  if (a.status === 'resolved')
    return `alert resolved at ${iso(a.at)}: ${a.rule} ${a.key}, firing since ${iso(a.startsAt)}: ${a.message}`;
  const what = a.repeat > 0 ? `still firing (reminder ${a.repeat})` : 'firing';
  return `alert ${what} at ${iso(a.at)}: ${a.rule} (${a.severity}) ${a.key}: ${a.message}`;
}

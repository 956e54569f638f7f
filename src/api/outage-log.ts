import { type Logger, log } from '../core/log.ts';

/** Errors an `OutageLog` has logged or counted: the route that answers them does not log them again. */
const told = new WeakSet<object>();

/** True when an `OutageLog` has logged or counted `err` (see `storeUnavailable`). */
export function toldByOutageLog(err: unknown): boolean {
  return typeof err === 'object' && err !== null && told.has(err);
}

/**
 * The log of one store's outages. A store that fails fails every request that reads it: logging each failure with
 * its stack wrote a stack trace per request (100 a second for a client polling 100 times a second, through the
 * whole outage). Instead: the first failure with its stack; then at most one line per `intervalMs` (60 s) saying how
 * many failed since; and one line when the store answers again. No timer: lines are written by failures and by the
 * first answer, so a store that fails and is then read no more says nothing more until it is read again.
 */
export class OutageLog {
  private readonly what: string;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** The outage under way: when it began, when its last line was written, failures since that line. */
  private outage: { since: number; saidAt: number; unsaid: number } | undefined;

  constructor(o: { what: string; logger?: Logger; intervalMs?: number; now?: () => number }) {
    this.what = o.what;
    this.logger = o.logger ?? log.child({ service: 'api' });
    this.intervalMs = o.intervalMs ?? 60_000;
    this.now = o.now ?? Date.now;
  }

  /** A read of the store failed. */
  failed(err: unknown): void {
    if (typeof err === 'object' && err !== null) told.add(err);
    const now = this.now();
    if (this.outage === undefined) {
      this.outage = { since: now, saidAt: now, unsaid: 0 };
      const every = `${this.intervalMs / 1000} s`;
      this.logger.error(
        { err, store: this.what },
        `${this.what} failed: the next failures are counted, a line every ${every}, until it answers again`,
      );
      return;
    }
    this.outage.unsaid++;
    if (now - this.outage.saidAt < this.intervalMs) return;
    const seconds = Math.round((now - this.outage.saidAt) / 1000);
    this.logger.error(
      { store: this.what, failed: this.outage.unsaid, outageMs: now - this.outage.since },
      `${this.what} still failing: ${this.outage.unsaid} reads failed in the last ${seconds} s`,
    );
    this.outage.saidAt = now;
    this.outage.unsaid = 0;
  }

  /** A read of the store answered: an outage under way is over. */
  answered(): void {
    if (this.outage === undefined) return;
    const now = this.now();
    this.logger.info(
      { store: this.what, failed: this.outage.unsaid, outageMs: now - this.outage.since },
      `${this.what} answering again`,
    );
    this.outage = undefined;
  }
}

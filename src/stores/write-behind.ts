/**
 * Writes to a table in the background, one write at a time, merging whatever comes while a write is in flight — or
 * within `spacingMs` of the last write's start — into the next one: a replay's many small batches become a few writes
 * (each DuckDB write is a transaction costing milliseconds of CPU whatever its size), while live, where batches come a
 * minute apart, each is written as it comes. `flush` does not wait for the spacing.
 *
 * Only for rows that can be lost in a crash because their input is re-read after a restart: the monitor's candles for
 * the dashboard (their offsets are committed a day behind) and its verdicts (a prediction's offset is committed once
 * its verdict is stored, which the writer says by the end of its write). A failed write keeps its rows for
 * the next attempt (the next `add`, or `flush`) and is reported through `onError`, and `takeFailure` hands its error
 * to the caller's next batch, so that a store that refuses writes fails the stage as a direct write would have
 * (its retries, and `run`'s "the store cannot take writes"); nothing is dropped.
 */
export class WriteBehind<T> {
  private readonly table: { write(values: readonly T[]): Promise<void> };
  private readonly onError: (err: unknown) => void;
  private readonly spacingMs: number;
  private readonly now: () => number;
  private pending: T[] = [];
  private running: Promise<boolean> | undefined;
  /** The error of the last write, when it failed and none has succeeded since. */
  private failure: unknown;
  private lastStart = Number.NEGATIVE_INFINITY;
  /** Ends the wait for the spacing (a flush). */
  private wake: (() => void) | undefined;
  private flushing = 0;
  /** Rows of the write in flight. */
  private inFlight = 0;

  constructor(
    table: { write(values: readonly T[]): Promise<void> },
    onError: (err: unknown) => void,
    o: { spacingMs?: number; now?: () => number } = {},
  ) {
    this.table = table;
    this.onError = onError;
    this.spacingMs = o.spacingMs ?? 0;
    this.now = o.now ?? (() => performance.now()); // monotonic: a clock stepped back must not stall writes
  }

  /** Queues rows; a write starts now unless one is in flight (then they go with the next). */
  add(values: readonly T[]): void {
    if (values.length === 0) return;
    for (const v of values) this.pending.push(v);
    this.running ??= this.drain();
  }

  /** Rows queued and not yet written, not counting those of the write in flight. */
  get backlog(): number {
    return this.pending.length;
  }

  /** Rows not written yet: those queued and those of the write in flight (what a stop that gives up leaves). */
  get unwritten(): number {
    return this.pending.length + this.inFlight;
  }

  /** The error of the last write if it failed (once: cleared by the call); undefined otherwise. */
  takeFailure(): unknown {
    const err = this.failure;
    this.failure = undefined;
    return err;
  }

  /** Resolves when everything queued so far is written; rejects with the write's error when one fails. */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      for (;;) {
        this.wake?.();
        if (this.running === undefined) {
          if (this.pending.length === 0) return;
          this.running = this.drain();
        }
        const ok = await this.running;
        if (!ok) throw this.failure;
      }
    } finally {
      this.flushing--;
    }
  }

  /** Until `spacingMs` after the last write's start, unless a flush is waiting (or comes meanwhile). */
  private spaced(): Promise<void> | undefined {
    const wait = this.lastStart + this.spacingMs - this.now();
    if (wait <= 0 || this.flushing > 0) return undefined;
    return new Promise<void>((resolve) => {
      // Not unref'd: rows waiting for their write keep the process up (at most `spacingMs`).
      const timer = setTimeout(() => this.wake?.(), wait);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Writes until nothing is pending; false after a failed write (its rows are pending again). */
  private async drain(): Promise<boolean> {
    try {
      while (this.pending.length > 0) {
        const spacing = this.spaced();
        if (spacing !== undefined) await spacing; // not even a tick when there is none: live writes start at once
        this.lastStart = this.now();
        const batch = this.pending;
        this.pending = [];
        this.inFlight = batch.length;
        try {
          await this.table.write(batch);
          this.failure = undefined;
        } catch (err) {
          this.pending = batch.concat(this.pending);
          this.failure = err;
          this.onError(err);
          return false;
        } finally {
          this.inFlight = 0;
        }
      }
      return true;
    } finally {
      this.running = undefined;
    }
  }
}

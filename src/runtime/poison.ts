/**
 * What a partition does about a record its handler can never take (a "poison" record): without it, a handler that
 * fails the same way on every delivery holds its partition for ever, retrying, while everything behind the record waits.
 * Pure (no I/O): both transports consult it (kafka/subscription.ts, in-process-bus.ts). The steps, in order:
 *
 *  1. A handler failure that waiting cannot mend (`failsTheSameWay`: a TypeError or RangeError thrown by code on a
 *     value, or a value its topic's schema refuses) is counted against the failing span: the records that every such
 *     failure had in hand. Successes before that span (a stage that commits behind re-reads them after each failure)
 *     do not reset the count; a success that gets past its start does. Any other failure (a store or broker away, a
 *     held batch) is retried for ever, as before: no accepted record leaves the partition because a dependency is down.
 *  2. After `narrowAfter` such failures, the span is narrowed down: the partition is re-read from its last commit as
 *     always, in full chunks up to the span, then one record at a time through it.
 *  3. A single record whose handling fails that way `quarantineAfter` times is quarantined: it is no longer handed to
 *     the handler but dead-lettered once (kind `handler-error`, the error as the reason), and the partition goes on.
 *     Its offset is not committed past on its own: a restart re-reads it, quarantines it again and writes a second
 *     dead letter (at-least-once), rather than lose the open state of a stateful handler. The guard forgets it once
 *     the partition has committed past it (`committed`).
 *  4. A record right after a quarantined one (nothing handled in between) that fails with the same message is
 *     quarantined in its turn, up to `stateAfter` records in a row: a burst of bad records (one exchange message's
 *     trades, say) passes. One more in a row means the fault is in the handler's state (a window that a later record
 *     closes), not in the records: nothing more is quarantined in that span, and the partition is held and retried,
 *     as before this guard, with an error logged (`verdict` 'state'). At most `stateAfter` records were dead-lettered
 *     for it; none was committed past (nothing after them went through), so a restart with the fix reads them again,
 *     and their dead letters can be replayed (`cryptocast dlq replay`).
 *  5. Once a chunk has been handled past the span, chunks are full size again.
 */
export class PoisonGuard {
  /** Failures that waiting cannot mend, in a row, on the span [from, until). */
  private failing: { from: bigint; until: bigint; count: number } | undefined;
  private narrowing = false;
  private suspect: { offset: bigint; hits: number } | undefined;
  /** The last record quarantined, and how many in a row (adjacent, the same message) ended with it. */
  private lastQuarantined: { offset: bigint; message: string; run: number } | undefined;
  private stateAtFault = false;
  /** Quarantined offsets: the reason, and whether its dead letter was sent. */
  private readonly quarantine = new Map<bigint, { reason: string; sent: boolean }>();
  private readonly o: { narrowAfter: number; quarantineAfter: number; stateAfter: number };

  constructor(limits = POISON_LIMITS) {
    this.o = limits;
  }

  /** Records to hand over from `position`: full chunks up to a narrowed span, then one at a time through it (step 2). */
  chunkSize(position: bigint, normal: number): number {
    const f = this.failing;
    if (!this.narrowing || f === undefined || position >= f.until) return normal;
    if (position < f.from)
      return Number(f.from - position < BigInt(normal) ? f.from - position : BigInt(normal));
    return 1;
  }

  /**
   * Steps 1–4: `count` records from offset `first` failed with `err` (`end`: the offset after the chunk). Returns what
   * became of it: 'quarantined' (step 3), 'state' (step 4, the first time), or undefined.
   */
  failed(err: unknown, first: bigint, count: number, end: bigint): 'quarantined' | 'state' | undefined {
    if (!failsTheSameWay(err)) {
      this.suspect = undefined;
      if (!this.narrowing) this.failing = undefined;
      return undefined;
    }
    if (this.narrowing && count === 1) return this.failedAlone(err, first);
    const f = this.failing;
    // The same span if the chunks overlap: keep what every failure had in hand.
    if (f !== undefined && first < f.until && end > f.from)
      this.failing = {
        from: first > f.from ? first : f.from,
        until: end < f.until ? end : f.until,
        count: f.count + 1,
      };
    else this.failing = { from: first, until: end, count: 1 };
    if (this.failing.count >= this.o.narrowAfter) this.narrowing = true;
    return undefined;
  }

  private failedAlone(err: unknown, offset: bigint): 'quarantined' | 'state' | undefined {
    if (this.stateAtFault) return undefined;
    const message = describe(err);
    const last = this.lastQuarantined;
    const inARow = last !== undefined && offset > last.offset && message === last.message;
    if (inARow && last.run >= this.o.stateAfter) {
      this.stateAtFault = true;
      return 'state';
    }
    this.suspect =
      this.suspect?.offset === offset ? { offset, hits: this.suspect.hits + 1 } : { offset, hits: 1 };
    if (this.suspect.hits < this.o.quarantineAfter) return undefined;
    this.quarantine.set(offset, {
      reason: `the handler failed ${this.suspect.hits} times on this record alone: ${message}`,
      sent: false,
    });
    this.lastQuarantined = { offset, message, run: inARow ? last.run + 1 : 1 };
    this.suspect = undefined;
    return 'quarantined';
  }

  /** Steps 1, 4 and 5: a chunk ending before `next` was handled. */
  handled(next: bigint): void {
    // The record after the last quarantined one went through: the handler's state is sound, and a later record that
    // fails the same way is a record of its own (step 4 is only about records in a row).
    if (this.lastQuarantined !== undefined && next > this.lastQuarantined.offset + 1n)
      this.lastQuarantined = undefined;
    const f = this.failing;
    if (f === undefined) return;
    if (this.narrowing ? next < f.until : next <= f.from) return;
    this.failing = undefined;
    this.narrowing = false;
    this.suspect = undefined;
    this.stateAtFault = false;
  }

  /** Step 3: is the record at `offset` quarantined? */
  isQuarantined(offset: bigint): boolean {
    return this.quarantine.has(offset);
  }

  /** The reason to dead-letter a quarantined record with, until its dead letter is sent (undefined after). */
  deadLetterReason(offset: bigint): string | undefined {
    const q = this.quarantine.get(offset);
    return q === undefined || q.sent ? undefined : q.reason;
  }

  /**
   * The partition committed `offset`: records before it are never read again by this process (a failure re-reads from
   * the commit), so their quarantine entries go — a service that runs for months does not keep every one it made.
   */
  committed(offset: bigint): void {
    for (const quarantined of this.quarantine.keys())
      if (quarantined < offset) this.quarantine.delete(quarantined);
  }

  /** Quarantined records this process still remembers (kept until the partition commits past them). */
  get remembered(): number {
    return this.quarantine.size;
  }

  /** The quarantined record's dead letter is on `dlq`: not again while this process runs. */
  deadLetterSent(offset: bigint): void {
    const q = this.quarantine.get(offset);
    if (q !== undefined) q.sent = true;
  }
}

/**
 * `stateAfter`: a state fault costs that many dead letters (replayable, and re-read anyway after the fix), while a
 * burst of that many bad records in a row no longer holds a partition. 10 covers one exchange message's worth of bad
 * trades at a cost of about 10 × 3 short back-offs (a few seconds) before the hold.
 */
export const POISON_LIMITS = { narrowAfter: 3, quarantineAfter: 3, stateAfter: 10 };

/**
 * A failure that happens again on the same input however long one waits: an error JavaScript throws on a value
 * (TypeError, RangeError, ReferenceError) or a value refused by a schema (`InvalidValueError`). Not when anything in
 * its cause chain is the network or the system: an error code (ECONNREFUSED, EAI_AGAIN, undici's UND_ERR_SOCKET,
 * Node's ERR_STREAM_…), or undici's "fetch failed" and "terminated" TypeErrors (a body cut off mid-read). Not a
 * SyntaxError either: inside a handler that is mostly a body that is not JSON (a proxy's error page), which passes.
 */
export function failsTheSameWay(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const onAValue =
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof ReferenceError ||
    err instanceof InvalidValueError;
  if (!onAValue || err.message === 'fetch failed' || err.message === 'terminated') return false;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && SYSTEM_CODE.test(code)) return false;
  }
  return true;
}

const SYSTEM_CODE = /^(E[A-Z_]+|UND_ERR_\w+|ERR_(SOCKET|STREAM|HTTP|TLS)\w*)$/;

/** A value its topic's schema refuses, at publish: a bug in the producer, not a passing condition. */
export class InvalidValueError extends Error {
  override readonly name = 'InvalidValueError';
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * What a partition does about a record its handler can never take (a "poison" record): without it, a handler that
 * fails the same way on every delivery holds its partition for ever, retrying, while everything behind the record waits.
 * Pure (no I/O): both transports consult it (kafka/subscription.ts, in-process-bus.ts). The steps, in order:
 *
 *  1. A handler failure that waiting cannot mend (`failsTheSameWay`: a TypeError, RangeError and the like thrown by
 *     code on a value, or a value its topic's schema refuses) is counted; any other failure (a store or broker away,
 *     a held batch) resets the count and is retried for ever, as before: no accepted record leaves the partition
 *     because a dependency is down.
 *  2. After `narrowAfter` such failures in a row, the failing chunk is narrowed down: the partition is re-read from its
 *     last commit as always, but handed over one record at a time up to the end of that chunk.
 *  3. A single record whose handling fails that way `quarantineAfter` times is quarantined: it is no longer handed to
 *     the handler but dead-lettered once (kind `handler-error`, with the error as the reason), and the partition goes
 *     on. Its offset is not committed past on its own: a restart re-reads it, quarantines it again and writes a second
 *     dead letter (at-least-once), rather than lose the open state of a stateful handler.
 *  4. Once the partition has been handled past the narrowed chunk, chunks are full size again.
 */
export class PoisonGuard {
  private inARow = 0;
  private narrowUntil: bigint | undefined;
  private suspect: { offset: bigint; hits: number } | undefined;
  /** Quarantined offsets: the reason, and whether its dead letter was sent. */
  private readonly quarantine = new Map<bigint, { reason: string; sent: boolean }>();

  private readonly o: { narrowAfter: number; quarantineAfter: number };

  constructor(limits = POISON_LIMITS) {
    this.o = limits;
  }

  /** Records to hand over from `position`: one while a failing chunk is narrowed down (step 2). */
  chunkSize(position: bigint, normal: number): number {
    return this.narrowUntil !== undefined && position < this.narrowUntil ? 1 : normal;
  }

  /** Steps 1–3: the chunk [first, end) failed with `err`. */
  failed(err: unknown, first: bigint, end: bigint): void {
    if (!failsTheSameWay(err)) {
      this.inARow = 0;
      this.suspect = undefined;
      return;
    }
    this.inARow++;
    if (end - first === 1n) {
      this.suspect =
        this.suspect?.offset === first
          ? { offset: first, hits: this.suspect.hits + 1 }
          : { offset: first, hits: 1 };
      if (this.suspect.hits >= this.o.quarantineAfter) {
        this.quarantine.set(first, {
          reason: `the handler failed ${this.suspect.hits} times on this record alone: ${describe(err)}`,
          sent: false,
        });
        this.suspect = undefined;
        this.inARow = 0;
      }
      return;
    }
    if (this.inARow >= this.o.narrowAfter && (this.narrowUntil === undefined || end > this.narrowUntil))
      this.narrowUntil = end;
  }

  /** Step 4: a chunk ending before `next` was handled. */
  handled(next: bigint): void {
    this.inARow = 0;
    if (this.narrowUntil !== undefined && next >= this.narrowUntil) this.narrowUntil = undefined;
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

  /** The quarantined record's dead letter is on `dlq`: not again while this process runs. */
  deadLetterSent(offset: bigint): void {
    const q = this.quarantine.get(offset);
    if (q !== undefined) q.sent = true;
  }
}

export const POISON_LIMITS = { narrowAfter: 3, quarantineAfter: 3 };

/**
 * A failure that happens again on the same input however long one waits: an error JavaScript throws on a value
 * (TypeError, RangeError, …) or a value refused by a schema (`InvalidValueError`). Not a failure with a system error
 * code anywhere in its cause chain (ECONNREFUSED…), nor undici's "fetch failed" TypeError: those are the network.
 */
export function failsTheSameWay(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const onAValue =
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof ReferenceError ||
    err instanceof SyntaxError ||
    err instanceof URIError ||
    err instanceof InvalidValueError;
  if (!onAValue || err.message === 'fetch failed') return false;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return false;
  }
  return true;
}

/** A value its topic's schema refuses, at publish: a bug in the producer, not a passing condition. */
export class InvalidValueError extends Error {
  override readonly name = 'InvalidValueError';
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

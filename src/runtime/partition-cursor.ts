import type { Logger } from '../core/log.ts';
import { type Backoff, backoffCap } from '../core/retry.ts';
import { HoldBatch } from './bus.ts';
import { PoisonGuard } from './poison.ts';

/** What became of a pending commit. */
export type CommitOutcome = 'none' | 'committed' | 'failed' | 'dropped';

/**
 * The commit protocol of one assigned partition: where a consumer fetches, what it may commit, and what it does when
 * a handler or a commit fails. No I/O: the transports (kafka/subscription.ts, in-process-bus.ts) fetch, hand records
 * over and send the commit; this class decides. The steps, in order:
 *
 *  1. Fetch from `position`; hand the records to the handler in offset order, a chunk at a time.
 *  2. The handler failed (`handlerFailed`): `position` goes back to `resumeFrom` — the last commit, or where the
 *     partition started — and the partition is not fetched before `retryAt` (capped exponential back-off). Nothing is
 *     skipped: the same records come again.
 *  3. The handler succeeded (`handled`): the commit target is `next` (the offset after the chunk, control batches
 *     included), or the handler's safe offset when that is lower (a window still open, whose records a restart must
 *     read again). A target past the last commit becomes `uncommitted`; `position` moves to `next`.
 *  4. The pending commit is sent while the partition is still owned (`commitPending`). A failed commit (broker away)
 *     stays pending and is retried before the next fetch; a partition the group moved to another member drops it —
 *     its new owner resumes from the previous commit, which must not be overwritten (at-least-once, never a gap).
 *  5. A commit that succeeded is the new `committed` and `resumeFrom`.
 */
export class PartitionCursor {
  /** Next offset to fetch and deliver. */
  position: bigint;
  /** Where a failed chunk is re-read from: the last offset committed, or the start position. */
  resumeFrom: bigint;
  /** The group's committed offset as last known (-1: none). */
  committed: bigint;
  /** A commit not sent yet, or that failed: sent before the next fetch. */
  uncommitted: { offset: bigint; leaderEpoch: number } | undefined;
  /** Handler failures in a row. */
  failures = 0;
  /** After a handler failure, the partition is not fetched before this time (ms). */
  retryAt = 0;
  /** Where the last failed chunk started (undefined once a chunk got past it). */
  failedAt: bigint | undefined;
  /** The handler's safe offset at its last batch when it held its commit behind (undefined: it took everything). */
  lastSafe: bigint | undefined;
  /** Records the handler can never take: narrowed down, quarantined, dead-lettered (poison.ts). */
  readonly poison = new PoisonGuard();
  /** A held batch (HoldBatch) is being redelivered: logged when the hold starts and when it ends. */
  holding = false;
  /**
   * Offsets not committed past yet whose record refused by its schema was dead-lettered: a failing handler gets the
   * same chunk again and again (step 2), and each re-read would put the same dead letter on `dlq` again.
   */
  private readonly deadLettered = new Set<bigint>();

  constructor(start: bigint, committed: bigint) {
    this.position = start;
    this.resumeFrom = start;
    this.committed = committed;
  }

  /** May the partition be fetched at `now`? */
  fetchable(now: number): boolean {
    return this.retryAt <= now;
  }

  /** Step 2. `failedAt`: the first offset of the chunk that failed. Returns the back-off before the next fetch (ms). */
  handlerFailed(now: number, backoff: Backoff, failedAt: bigint): number {
    this.failures++;
    this.failedAt = failedAt;
    const delay = backoffCap(this.failures, backoff);
    this.position = this.resumeFrom;
    this.retryAt = now + delay;
    return delay;
  }

  /**
   * Step 2 with the poison guard's count (poison.ts): the chunk of `count` records [first, end) failed with `err`.
   * Says how long to wait, what the guard made of it, and whether a hold (HoldBatch) starts with it.
   */
  chunkFailed(
    now: number,
    backoff: Backoff,
    err: unknown,
    first: bigint,
    count: number,
    end: bigint,
  ): ChunkFailure {
    const verdict = this.poison.failed(err, first, count, end);
    const delayMs = this.handlerFailed(now, backoff, first);
    const holdStarted = err instanceof HoldBatch && !this.holding;
    if (err instanceof HoldBatch) this.holding = true;
    return { delayMs, verdict, holdStarted };
  }

  /** A chunk ending before `next` went through: the poison guard's step 5; true when a hold ended with it. */
  chunkPassed(next: bigint): boolean {
    this.poison.handled(next);
    const held = this.holding;
    this.holding = false;
    return held;
  }

  /**
   * The chunk in hand was given back (its partition lost to this member, `Batch.signal`): nothing of it is committed,
   * and `position` goes back to `resumeFrom`, as after a failure but without a back-off or a failure counted.
   */
  givenBack(): void {
    this.position = this.resumeFrom;
  }

  /** Step 3. `safe`: the handler's commit plan for this partition (undefined: all it was given). True when a commit is pending. */
  handled(next: bigint, safe: bigint | undefined, leaderEpoch: number): boolean {
    this.progressed(next);
    this.lastSafe = safe !== undefined && safe < next ? safe : undefined;
    const target = this.lastSafe ?? next;
    if (target > this.committed) this.uncommitted = { offset: target, leaderEpoch };
    this.position = next;
    return this.uncommitted !== undefined;
  }

  /**
   * Step 3 for a chunk with nothing to hand over (every record dead-lettered): `position` moves to `next`; the commit
   * does only when `commitPast` (records refused by their schema, which a re-read would dead-letter again) and the
   * handler did not hold its commit behind at its last batch (its open state still needs what comes before). A
   * quarantined record is never committed past on its own (poison.ts, step 3). True when a commit is pending.
   */
  passed(next: bigint, commitPast: boolean, leaderEpoch: number): boolean {
    this.progressed(next);
    this.position = next;
    if (commitPast && this.lastSafe === undefined && next > this.committed)
      this.uncommitted = { offset: next, leaderEpoch };
    return this.uncommitted !== undefined;
  }

  /**
   * A chunk ending before `next` went through. After a failure the partition is re-read from its last commit, and a
   * stage that commits behind gets through a few chunks before the one that failed: those are not progress, and the
   * failure count (and with it the back-off) only starts again from zero once a chunk gets past where it failed.
   */
  private progressed(next: bigint): void {
    if (this.failedAt !== undefined && next <= this.failedAt) return;
    this.failures = 0;
    this.failedAt = undefined;
  }

  /** Has the record at `offset`, refused by its schema, been dead-lettered since the partition was assigned? */
  isDeadLettered(offset: bigint): boolean {
    return this.deadLettered.has(offset);
  }

  /** The record at `offset` is on `dlq`: not again while this cursor re-reads it (forgotten once committed past). */
  deadLetterSent(offset: bigint): void {
    this.deadLettered.add(offset);
  }

  /** Steps 4 and 5: sends the pending commit through `commit` if the partition is still `owned`. */
  async commitPending(
    owned: boolean,
    commit: (offset: bigint, leaderEpoch: number) => Promise<void>,
  ): Promise<CommitOutcome> {
    const c = this.uncommitted;
    if (c === undefined) return 'none';
    if (!owned) {
      this.uncommitted = undefined;
      return 'dropped';
    }
    try {
      await commit(c.offset, c.leaderEpoch);
    } catch {
      return 'failed';
    }
    this.committed = c.offset;
    this.resumeFrom = c.offset;
    this.poison.committed(c.offset);
    // Never read again by this cursor (a failure re-reads from the commit): a long run keeps none of them.
    for (const offset of this.deadLettered) if (offset < c.offset) this.deadLettered.delete(offset);
    // A newer target may have been set while this one was in flight: it stays pending.
    if (this.uncommitted === c) this.uncommitted = undefined;
    return 'committed';
  }

  /** The position left the log (retention, a recreated topic): start again at `offset`. */
  resetTo(offset: bigint): void {
    this.position = offset;
    this.resumeFrom = offset;
    // A recreated topic gives its offsets to other records.
    this.deadLettered.clear();
  }
}

/** What became of a failed chunk (PartitionCursor.chunkFailed). */
export interface ChunkFailure {
  delayMs: number;
  verdict: 'quarantined' | 'state' | undefined;
  holdStarted: boolean;
}

/**
 * Logs a failed chunk as both transports do: one error line with the error's code and message, a hold once when it
 * starts, the guard's verdict. The stack only at debug level: each failure of a stage is one line an operator reads (a
 * full disk under `cryptocast run` wrote a stack per stage, all the same), and a retried failure repeats them. A
 * programming error (TypeError, RangeError, ReferenceError, SyntaxError) keeps its stack on the line.
 */
const isProgrammingError = (err: unknown): boolean =>
  err instanceof TypeError ||
  err instanceof RangeError ||
  err instanceof ReferenceError ||
  err instanceof SyntaxError;

export function logChunkFailure(
  log: Logger,
  where: Record<string, unknown>,
  err: unknown,
  f: ChunkFailure,
): void {
  if (!(err instanceof HoldBatch)) {
    const code = (err as { code?: unknown } | undefined)?.code;
    log.error(
      {
        ...where,
        ...(typeof code === 'string' ? { code } : {}),
        reason: err instanceof Error ? err.message : String(err),
        // A bug in our code (a TypeError, say) keeps its stack on the line: it is what a bug report needs.
        ...(isProgrammingError(err) ? { err } : {}),
      },
      'handler failed; re-reading from the last commit',
    );
    if (!isProgrammingError(err)) log.debug({ ...where, err }, 'handler failed: the stack');
  } else if (f.holdStarted)
    log.warn({ ...where, reason: err.message }, 'batch held; redelivered until it passes');
  if (f.verdict === 'quarantined')
    log.error(where, 'the handler fails on this record alone: quarantined to dlq');
  else if (f.verdict === 'state')
    log.error(
      where,
      'the handler fails the same way on one more record after a run of quarantined ones: the fault is in its state, not the records; holding the partition',
    );
}

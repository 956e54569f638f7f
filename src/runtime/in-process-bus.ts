import { log } from '../core/log.ts';
import { safeParse } from '../schemas/compiled-check.ts';
import { deadLetter } from '../schemas/dlq.ts';
import { topics as knownTopics } from '../schemas/topics.ts';
import {
  type Batch,
  type Bus,
  type CommitPlan,
  checkedPageSize,
  type Delivered,
  PartitionLost,
  partitionFor,
  type ReadPagesOptions,
  type ReadTailOptions,
  type SubscribeOptions,
  type Subscription,
} from './bus.ts';
import { countDeadLetters } from './metered-bus.ts';
import { logChunkFailure, PartitionCursor } from './partition-cursor.ts';
import { InvalidValueError } from './poison.ts';
import type { Topic } from './topic.ts';
import { isValidated } from './validated.ts';

/**
 * The embedded transport: an in-memory partitioned log with consumer groups, committed offsets and the
 * same delivery rules as Kafka (see `Bus`). Records are kept as objects (no serialisation): they were
 * validated on publish, and handlers must not mutate them.
 *
 * Back-pressure: `publish` waits while any subscribed group lags more than `maxLag` records on a partition,
 * so a fast replay cannot outrun its consumers and fill memory. Consumed records are trimmed once every
 * group has committed past them.
 */
export interface InProcessBusOptions {
  /** Largest per-partition lag of a subscribed group before `publish` waits. */
  maxLag?: number;
  /** Largest batch handed to a handler. */
  maxBatch?: number;
  /**
   * Told of every handler failure (before the records are delivered again): a caller for whom some failures never
   * pass with a retry (`cryptocast run` on a full disk) can stop instead of retrying for ever.
   */
  onHandlerFailure?: (err: unknown, where: { service: string; topic: string }) => void;
}

interface LogRecord {
  key: string;
  value: unknown;
  timestamp: number;
  /** Appended by `publishUnvalidated`: must be validated on delivery. */
  unchecked?: boolean;
}

class PartitionLog {
  /** Offset of records[0]. */
  base = 0;
  records: LogRecord[] = [];
  get end(): number {
    return this.base + this.records.length;
  }
}

class TopicLog {
  readonly partitions: PartitionLog[];
  readonly waiters = new Set<() => void>();
  constructor(n: number) {
    this.partitions = Array.from({ length: n }, () => new PartitionLog());
  }
  wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

class Group {
  readonly committed = new Map<number, number>();
  readonly members: Member[] = [];
}

interface Member {
  readonly options: SubscribeOptions<unknown>;
  assigned: number[];
  /** Next offset to deliver, per assigned partition. */
  readonly position: Map<number, number>;
  /** The end of the batch the handler has, per partition (see `Subscription.readToEnd`). */
  readonly inHand: Map<number, number>;
  /** Per partition, the batch being handed over (validation, handler, commit): resolves once it is through. */
  readonly handling: Map<number, Promise<void>>;
  /** Partitions the group took away while their batch was being handed over: revoked once it is through. */
  readonly revokeAfterBatch: Set<number>;
  /** Per partition, the signal of the batch in the handler's hands (`Batch.signal`): aborted on revoke and close. */
  readonly batchSignals: Map<number, AbortController>;
  stopped: boolean;
  busy: number;
  readonly idle: Set<() => void>;
  readonly progress: Set<() => void>;
}

/** Back-off before a partition whose handler failed is re-read from its last commit (no broker: shorter than Kafka's). */
const HANDLER_BACKOFF = { initialMs: 50, maxMs: 5_000 };

export class InProcessBus implements Bus {
  readonly kind = 'in-process' as const;
  private readonly logs = new Map<string, TopicLog>();
  private readonly groups = new Map<string, Group>();
  private readonly maxLag: number;
  private readonly maxBatch: number;
  private readonly onHandlerFailure: InProcessBusOptions['onHandlerFailure'];
  private readonly lagWaiters = new Set<() => void>();
  private closed = false;

  constructor(options: InProcessBusOptions = {}) {
    this.maxLag = options.maxLag ?? 50_000;
    this.maxBatch = options.maxBatch ?? 2_000;
    this.onHandlerFailure = options.onHandlerFailure;
  }

  async ensureTopics(topics: readonly Topic<unknown>[]): Promise<void> {
    for (const t of topics) this.topicLog(t);
  }

  async publish<T>(topic: Topic<T>, values: readonly T[]): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    if (values.length === 0) return;
    const tl = this.topicLog(topic as Topic<unknown>);
    const now = Date.now();
    const n = tl.partitions.length;
    // Every value is checked before any is appended, as KafkaBus does: an invalid one fails the call with nothing of
    // it published (appending as it went left the values before it published, then published again on a retry).
    for (const v of values) {
      if (isValidated(v)) continue;
      const r = safeParse(topic.schema, v);
      if (!r.success)
        throw new InvalidValueError(`publish to ${topic.name}: invalid value: ${summarise(r.error)}`);
    }
    for (const v of values) {
      const key = topic.key(v);
      tl.partitions[partitionFor(key, n)]!.records.push({ key, value: v, timestamp: now });
    }
    tl.wake();
    while (!this.closed && this.maxLagOf(topic.name) > this.maxLag) {
      await new Promise<void>((resolve) => this.lagWaiters.add(resolve));
    }
  }

  async subscribe<T>(options: SubscribeOptions<T>): Promise<Subscription> {
    const tl = this.topicLog(options.topic as Topic<unknown>);
    const groupKey = options.topic.name + '\u0000' + options.group;
    let group = this.groups.get(groupKey);
    if (group === undefined) {
      group = new Group();
      this.groups.set(groupKey, group);
    }
    const member: Member = {
      options: options as SubscribeOptions<unknown>,
      assigned: [],
      position: new Map(),
      inHand: new Map(),
      handling: new Map(),
      revokeAfterBatch: new Set(),
      batchSignals: new Map(),
      stopped: false,
      busy: 0,
      idle: new Set(),
      progress: new Set(),
    };
    group.members.push(member);
    await this.rebalance(group, tl, options.from ?? 'earliest');
    const g = group;
    return {
      stop: async () => {
        member.stopped = true;
        // The batch in hand is not given back, unlike on Kafka: this log ends with the process, so no member would read
        // it again after the stop (`cryptocast run` stopping after a store failure reported less than it had stored,
        // the writes it let go of landing after the count). The stop waits for it, as a stop always did.
        tl.wake();
        while (member.busy > 0) await new Promise<void>((r) => member.idle.add(r));
        g.members.splice(g.members.indexOf(member), 1);
        await member.options.onRevoke?.(member.assigned);
        member.assigned = [];
        await this.rebalance(g, tl, options.from ?? 'earliest');
      },
      lag: () => {
        let n = 0;
        for (const p of member.assigned)
          n += Math.max(0, tl.partitions[p]!.end - (member.position.get(p) ?? 0));
        return n;
      },
      readToEnd: () =>
        !member.stopped &&
        member.assigned.every(
          (p) => (member.inHand.get(p) ?? member.position.get(p) ?? 0) >= tl.partitions[p]!.end,
        ),
      caughtUp: async () => {
        const targets = new Map(member.assigned.map((p) => [p, tl.partitions[p]!.end]));
        for (;;) {
          let done = true;
          for (const [p, end] of targets) {
            const committed = g.committed.get(p) ?? 0;
            const pos = member.position.get(p) ?? committed;
            if (pos < end && !member.stopped) done = false;
          }
          if (done && member.busy === 0) return;
          await new Promise<void>((r) => member.progress.add(r));
        }
      },
    };
  }

  async readTail<T>(
    topic: Topic<T>,
    perPartition: number,
    options?: ReadTailOptions,
  ): Promise<Delivered<T>[]> {
    // Nothing to wait for in process: only a read asked with a signal already aborted gives up (as on Kafka).
    options?.signal?.throwIfAborted();
    const tl = this.topicLog(topic as Topic<unknown>);
    const out: Delivered<T>[] = [];
    tl.partitions.forEach((pl, p) => {
      const from = Math.max(pl.base, pl.end - perPartition);
      for (let o = from; o < pl.end; o++) {
        out.push(deliveredAt(topic, pl, p, o));
      }
    });
    return out;
  }

  async readPages<T>(
    topic: Topic<T>,
    onPage: (page: readonly Delivered<T>[]) => void | Promise<void>,
    options: ReadPagesOptions = {},
  ): Promise<void> {
    const pageSize = checkedPageSize(options.pageSize);
    options.signal?.throwIfAborted();
    const tl = this.topicLog(topic as Topic<unknown>);
    // The ends as of this call: what is appended while the pages are handed is not read.
    const ends = tl.partitions.map((pl) => pl.end);
    for (const [p, pl] of tl.partitions.entries()) {
      // Up to the last record at or before `until` (appended in time order).
      if (options.until !== undefined)
        while (ends[p]! > pl.base && pl.records[ends[p]! - 1 - pl.base]!.timestamp > options.until)
          ends[p]!--;
      let from = pl.base;
      // Appended in time order (one clock): the first record at or after `since`, as Kafka's ListOffsets finds it.
      if (options.since !== undefined)
        while (from < ends[p]! && pl.records[from - pl.base]!.timestamp < options.since) from++;
      // A trim while onPage ran moved `base`: offsets are kept, positions below it are gone.
      for (let o = from; o < ends[p]!; o = Math.max(o, pl.base)) {
        const page: Delivered<T>[] = [];
        for (; o < ends[p]! && page.length < pageSize; o++) {
          page.push(deliveredAt(topic, pl, p, o));
        }
        await onPage(page);
        options.signal?.throwIfAborted();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const g of this.groups.values())
      for (const m of g.members) {
        m.stopped = true;
        giveBack(m, [...m.batchSignals.keys()], 'the bus is closing');
      }
    for (const tl of this.logs.values()) tl.wake();
    for (const w of this.lagWaiters) w();
    this.lagWaiters.clear();
  }

  /** Appends a raw, unvalidated value (tests use it to simulate a misbehaving producer). */
  publishUnvalidated(topicName: string, key: string, value: unknown): void {
    const tl = this.logs.get(topicName);
    if (tl === undefined) throw new Error(`unknown topic ${topicName}`);
    tl.partitions[partitionFor(key, tl.partitions.length)]!.records.push({
      key,
      value,
      timestamp: Date.now(),
      unchecked: true,
    });
    tl.wake();
  }

  private topicLog(topic: Topic<unknown>): TopicLog {
    let tl = this.logs.get(topic.name);
    if (tl === undefined) {
      tl = new TopicLog(topic.partitions);
      this.logs.set(topic.name, tl);
    }
    return tl;
  }

  /** Round-robin assignment of partitions to the group's live members, like Kafka's range of tasks. */
  private async rebalance(group: Group, tl: TopicLog, from: 'earliest' | 'latest'): Promise<void> {
    const members = group.members.filter((m) => !m.stopped);
    if (members.length === 0) return;
    const next = new Map<Member, number[]>(members.map((m) => [m, []]));
    for (let p = 0; p < tl.partitions.length; p++) next.get(members[p % members.length]!)!.push(p);
    for (const m of members) {
      const want = next.get(m)!;
      const revoked = m.assigned.filter((p) => !want.includes(p));
      if (revoked.length > 0) {
        for (const p of revoked) m.position.delete(p);
        // As on Kafka, whose fetch loop applies an assignment between batches: `onRevoke` (the service drops the
        // partition's state) never runs while the handler is still at work on that partition; its loop revokes it
        // once the batch is through (deliverLoop).
        const now = revoked.filter((p) => !m.handling.has(p));
        for (const p of revoked) if (m.handling.has(p)) m.revokeAfterBatch.add(p);
        // Its batch in hand is given back (`Batch.signal`): the new owner reads it again from the last commit.
        giveBack(m, revoked, 'the group gave the partition to another member');
        if (now.length > 0) await m.options.onRevoke?.(now);
      }
      const added = want.filter((p) => !m.assigned.includes(p));
      m.assigned = want;
      if (added.length > 0) {
        for (const p of added) {
          const pl = tl.partitions[p]!;
          const at = m.options.startAt?.get(p);
          const committed =
            group.committed.get(p) ??
            (at !== undefined ? Math.min(Number(at), pl.end) : from === 'latest' ? pl.end : pl.base);
          m.position.set(p, Math.max(committed, pl.base));
        }
        await m.options.onAssign?.(added);
        for (const p of added) void this.deliverLoop(group, tl, m, p);
      }
    }
  }

  private async deliverLoop(group: Group, tl: TopicLog, m: Member, p: number): Promise<void> {
    const opts = m.options;
    const pl = tl.partitions[p]!;
    // The previous owner's batch of this partition is handed over first (and revoked): two members never handle one
    // partition at once, and its state is dropped before the new owner builds its own.
    for (const other of group.members) await other.handling.get(p);
    // The commit protocol of the partition, the one Kafka's subscription follows (partition-cursor.ts).
    const cursor = new PartitionCursor(BigInt(m.position.get(p)!), BigInt(group.committed.get(p) ?? -1));
    const poison = cursor.poison;
    while (!m.stopped && !this.closed && m.assigned.includes(p)) {
      const pos = m.position.get(p)!;
      if (pos >= pl.end) {
        for (const r of m.progress) r();
        m.progress.clear();
        await new Promise<void>((resolve) => tl.waiters.add(resolve));
        continue;
      }
      const upTo = Math.min(pl.end, pos + poison.chunkSize(BigInt(pos), this.maxBatch));
      const records: Delivered<unknown>[] = [];
      const quarantined: { offset: number; key: string; value: unknown; reason: string | undefined }[] = [];
      let unchecked = false;
      for (let o = pos; o < upTo; o++) {
        const r = pl.records[o - pl.base]!;
        if (poison.isQuarantined(BigInt(o))) {
          quarantined.push({
            offset: o,
            key: r.key,
            value: r.value,
            reason: poison.deadLetterReason(BigInt(o)),
          });
          continue;
        }
        if (r.unchecked) unchecked = true;
        records.push(deliveredAt(opts.topic, pl, p, o));
      }
      m.busy++;
      const lost = new AbortController();
      let batchThrough!: () => void;
      m.handling.set(p, new Promise<void>((r) => (batchThrough = r)));
      let retryInMs: number | undefined;
      try {
        for (const q of quarantined)
          if (q.reason !== undefined) {
            await this.deadLetterPoison(opts, p, q.offset, q, q.reason);
            poison.deadLetterSent(BigInt(q.offset));
          }
        const valid = unchecked ? await this.validate(opts, cursor, records) : records;
        // Counted as read from when the handler has it until the position has moved past it (`readToEnd`), and no
        // longer once it failed.
        m.inHand.set(p, upTo);
        m.batchSignals.set(p, lost);
        const plan: CommitPlan =
          valid.length > 0
            ? await opts.handle({ partition: p, records: valid, signal: lost.signal } as Batch<unknown>)
            : undefined;
        // Whatever the handler returned: nothing of a batch given back is committed.
        if (lost.signal.aborted) throw lost.signal.reason;
        const next = BigInt(upTo);
        const pending =
          valid.length > 0
            ? cursor.handled(next, plan?.get(p), -1)
            : cursor.passed(next, quarantined.length === 0, -1);
        if (pending)
          await cursor.commitPending(m.assigned.includes(p), async (offset) => {
            group.committed.set(p, Math.max(group.committed.get(p) ?? 0, Number(offset)));
          });
        if (m.assigned.includes(p)) m.position.set(p, upTo);
        m.inHand.delete(p);
        if (cursor.chunkPassed(next))
          log.info({ service: opts.service, topic: opts.topic.name, partition: p }, 'held batch passed');
      } catch (err) {
        m.inHand.delete(p);
        if (lost.signal.aborted) {
          // Given back: not a failure of the records (no back-off, no poison count); the partition is no longer
          // this member's, or it is stopping, so the loop ends below.
          log.info(
            { service: opts.service, topic: opts.topic.name, partition: p },
            'batch given back uncommitted',
          );
        } else {
          // Not committed: the same records are delivered again after a pause (at-least-once).
          const f = cursor.chunkFailed(
            Date.now(),
            HANDLER_BACKOFF,
            err,
            BigInt(pos),
            upTo - pos,
            BigInt(upTo),
          );
          logChunkFailure(
            log,
            { service: opts.service, topic: opts.topic.name, partition: p, offset: pos },
            err,
            f,
          );
          this.onHandlerFailure?.(err, { service: opts.service, topic: opts.topic.name });
          retryInMs = f.delayMs;
        }
      } finally {
        m.batchSignals.delete(p);
        if (m.revokeAfterBatch.delete(p)) await this.revokeAfterBatch(m, p);
        m.handling.delete(p);
        batchThrough();
        m.busy--;
        if (m.busy === 0) {
          for (const r of m.idle) r();
          m.idle.clear();
        }
      }
      if (retryInMs !== undefined) {
        await new Promise((r) => setTimeout(r, retryInMs));
        m.position.set(p, Number(cursor.position));
      }
      this.trim(tl, opts.topic.name, p);
      for (const r of m.progress) r();
      m.progress.clear();
      if (this.lagWaiters.size > 0 && this.maxLagOf(opts.topic.name) <= this.maxLag) {
        for (const w of this.lagWaiters) w();
        this.lagWaiters.clear();
      }
    }
  }

  /** `onRevoke` of a partition the group took away while its batch was being handed over (rebalance). */
  private async revokeAfterBatch(m: Member, p: number): Promise<void> {
    try {
      await m.options.onRevoke?.([p]);
    } catch (err) {
      log.error({ err, service: m.options.service, partitions: [p] }, 'onRevoke failed');
    }
  }

  /** A record the handler can never take (poison.ts): to `dlq` once, with the reason. */
  private async deadLetterPoison(
    opts: SubscribeOptions<unknown>,
    partition: number,
    offset: number,
    r: { key: string; value: unknown },
    reason: string,
  ): Promise<void> {
    const letter = deadLetter({
      service: opts.service,
      origin: opts.topic.name,
      kind: 'handler-error',
      reason,
      payload: r.value,
      key: r.key,
      partition,
      offset,
    });
    await this.publish(knownTopics.dlq, [letter]);
    countDeadLetters([letter]);
  }

  /**
   * Invalid records (possible only through `publishUnvalidated`) go to the dead-letter topic, once while the cursor
   * re-reads them after handler failures, as on Kafka.
   */
  private async validate(
    opts: SubscribeOptions<unknown>,
    cursor: PartitionCursor,
    records: Delivered<unknown>[],
  ): Promise<Delivered<unknown>[]> {
    const valid: Delivered<unknown>[] = [];
    for (const r of records) {
      const res = safeParse(opts.topic.schema, r.value);
      if (res.success) valid.push(r);
      else if (!cursor.isDeadLettered(r.offset)) {
        const letter = deadLetter({
          service: opts.service,
          origin: r.topic,
          kind: 'invalid',
          reason: summarise(res.error),
          payload: r.value,
          key: r.key,
          partition: r.partition,
          offset: r.offset,
        });
        await this.publish(knownTopics.dlq, [letter]);
        countDeadLetters([letter]);
        cursor.deadLetterSent(r.offset);
      }
    }
    return valid;
  }

  async groupLag(
    topic: Topic<unknown>,
    group: string,
    options?: ReadTailOptions,
  ): Promise<number | undefined> {
    options?.signal?.throwIfAborted(); // as readTail: nothing to wait for in process
    const tl = this.logs.get(topic.name);
    const g = this.groups.get(`${topic.name}\u0000${group}`);
    if (tl === undefined || g === undefined) return undefined;
    // What the live members have been handed, not what they committed: stateful stages commit behind on purpose
    // (a restart re-reads their open state), which is not lag.
    let n = 0;
    tl.partitions.forEach((pl, p) => {
      const owner = g.members.find((m) => !m.stopped && m.assigned.includes(p));
      const at = owner?.position.get(p) ?? g.committed.get(p) ?? pl.base;
      n += Math.max(0, pl.end - at);
    });
    return n;
  }

  private maxLagOf(topicName: string): number {
    const tl = this.logs.get(topicName);
    if (tl === undefined) return 0;
    let max = 0;
    for (const [k, g] of this.groups) {
      if (!k.startsWith(topicName + '\u0000') || g.members.every((m) => m.stopped)) continue;
      tl.partitions.forEach((pl, p) => {
        const lag = pl.end - (g.committed.get(p) ?? pl.base);
        if (lag > max) max = lag;
      });
    }
    return max;
  }

  /** Drops records every group has committed past (a group with no live member keeps nothing back). */
  private trim(tl: TopicLog, topicName: string, p: number): void {
    const pl = tl.partitions[p]!;
    let min = pl.end;
    for (const [k, g] of this.groups) {
      if (!k.startsWith(topicName + '\u0000')) continue;
      const c = g.committed.get(p) ?? pl.base;
      if (c < min) min = c;
    }
    const drop = min - pl.base;
    if (drop >= 10_000) {
      pl.records = pl.records.slice(drop);
      pl.base = min;
    }
  }
}

/** Aborts the signals of `m`'s batches in hand on `partitions` (`Batch.signal`). */
/** The record at offset `o` of partition `p` of `topic` (a position not trimmed yet), as a handler or reader gets it. */
function deliveredAt<T>(topic: Topic<T>, pl: PartitionLog, p: number, o: number): Delivered<T> {
  const r = pl.records[o - pl.base]!;
  return {
    topic: topic.name,
    partition: p,
    offset: BigInt(o),
    key: r.key,
    value: r.value as T,
    timestamp: r.timestamp,
  };
}

function giveBack(m: Member, partitions: readonly number[], why: string): void {
  for (const p of partitions) {
    const batch = m.batchSignals.get(p);
    if (batch !== undefined && !batch.signal.aborted) batch.abort(new PartitionLost(why));
  }
}

export function summarise(error: {
  issues: readonly { path: readonly PropertyKey[]; message: string }[];
}): string {
  return error.issues
    .slice(0, 5)
    .map((i) => (i.path.length > 0 ? i.path.map(String).join('.') + ': ' : '') + i.message)
    .join('; ');
}

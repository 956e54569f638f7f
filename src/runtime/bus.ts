import type { Topic } from './topic.ts';

/**
 * The one transport interface every service uses. Two implementations that services cannot tell apart:
 * `InProcessBus` (embedded default, no broker) and `KafkaBus` (a real Apache Kafka).
 *
 * Semantics shared by both:
 * - a topic is a set of partitions; a record goes to partition hash(key) % partitions, so one pair keeps
 *   its order;
 * - consumers in the same group split the partitions; each partition is delivered in offset order;
 * - records that fail the topic's schema are never handed to a service: they go to the `dlq` topic with
 *   the reason and the original payload, and consumption carries on;
 * - a group's offset for a partition is committed only after the handler's promise resolves (the effect
 *   is durable), and only up to what the handler says is safe (see `CommitPlan`); nothing of a batch whose
 *   partition was lost meanwhile (see `Batch.signal`).
 */
export interface Bus {
  readonly kind: 'in-process' | 'kafka';
  /** Creates the topics if missing (idempotent). */
  ensureTopics(topics: readonly Topic<unknown>[]): Promise<void>;
  /**
   * Appends records; resolves once they are durable (Kafka: acknowledged by all in-sync replicas).
   * Values are validated against the topic schema first: publishing invalid data is a bug and throws.
   */
  publish<T>(topic: Topic<T>, values: readonly T[]): Promise<void>;
  /** Starts consuming; returns at once. `stop()` on the result ends the subscription. */
  subscribe<T>(options: SubscribeOptions<T>): Promise<Subscription>;
  /**
   * Reads the most recent records of every partition (at most `perPartition` each) without joining a group:
   * services use it on start to learn what they already published (idempotent restart). Kafka: while the broker is
   * away it waits for it (a service on start must not give up), unless `options.signal` ends the wait.
   */
  readTail<T>(topic: Topic<T>, perPartition: number, options?: ReadTailOptions): Promise<Delivered<T>[]>;
  /**
   * Reads every record of `topic` up to its end as of this call, without joining a group, and hands them to `onPage`
   * in pages of at most `options.pageSize` records (default {@link READ_PAGE_RECORDS}): each partition's records in
   * offset order (partitions may interleave), each record once, the next page only once `onPage` has resolved. For a
   * service that folds a whole topic into a little state on start (the predictor: the newest published per pair): it
   * holds one page at a time, not the topic, which only its retention bounds. Waits for a broker that is away, and
   * goes on from where it was, as readTail; `options.signal` ends the wait.
   */
  readPages<T>(
    topic: Topic<T>,
    onPage: (page: readonly Delivered<T>[]) => void | Promise<void>,
    options?: ReadPagesOptions,
  ): Promise<void>;
  /**
   * Records of `topic` that consumer group `group` has not consumed yet (summed over partitions); undefined when the
   * group is unknown. Read from outside the group (the monitor watches every stage's lag). On Kafka only committed
   * offsets are visible from outside: a stateful stage that commits behind on purpose (features: its warm-up; the
   * monitor: a day of candles) shows that re-read window too. The services' own `cryptocast_consumer_lag_records`
   * is exact (positions). Kafka: one attempt, but a broker that stops answering without closing the connection (a
   * partition, a host gone) leaves it waiting for good; `options.signal` ends the wait (as for readTail).
   */
  groupLag(topic: Topic<unknown>, group: string, options?: ReadTailOptions): Promise<number | undefined>;
  close(): Promise<void>;
}

/** For readTail and groupLag. */
export interface ReadTailOptions {
  /**
   * Gives up: once aborted, the read rejects at once with the signal's reason and stops waiting for a broker that is
   * away (a view that answers requests cannot wait out an outage: AbortSignal.timeout(ms) gives it a deadline).
   */
  signal?: AbortSignal;
}

/** For readPages. */
export interface ReadPagesOptions extends ReadTailOptions {
  /** The most records `onPage` is handed at once (a positive integer). */
  pageSize?: number;
  /**
   * Epoch ms: each partition is read from its first record appended at or after it (Kafka: the offset ListOffsets
   * finds for that time) instead of its start. For a fold that needs only the recent part of a long topic (the trades
   * stage's resume points: an hour before the log's end).
   */
  since?: number;
  /**
   * Epoch ms: each partition is read up to its last record appended at or before it (Kafka: up to the offset
   * ListOffsets finds for the next millisecond) instead of its end as of the call. With `since`, a stretch of a long
   * topic: the trades stage reads the log just after a resume point it has only on `trades.resume`.
   */
  until?: number;
}

/** readPages' default page: a few hundred kB of parsed records. */
export const READ_PAGE_RECORDS = 1_000;

/** readPages' page size: the default, or the caller's if a positive integer. */
export function checkedPageSize(pageSize: number | undefined): number {
  if (pageSize === undefined) return READ_PAGE_RECORDS;
  if (!Number.isInteger(pageSize) || pageSize < 1)
    throw new RangeError(`readPages: pageSize must be a positive integer, got ${pageSize}`);
  return pageSize;
}

/**
 * Per partition, the offset after the last of `records` (a read's end): the `startAt` of a subscription that follows
 * a topic from where the read ended. A partition with no record read is not in it (the subscription's `from` applies).
 */
export function offsetsAfter(
  records: Iterable<Delivered<unknown>>,
  into = new Map<number, bigint>(),
): Map<number, bigint> {
  for (const r of records)
    if (r.offset >= (into.get(r.partition) ?? 0n)) into.set(r.partition, r.offset + 1n);
  return into;
}

export interface Delivered<T> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly key: string;
  readonly value: T;
  /** Append time, epoch ms. */
  readonly timestamp: number;
}

export interface Batch<T> {
  readonly partition: number;
  readonly records: readonly Delivered<T>[];
  /**
   * Aborted (with a `PartitionLost` reason) once the partition is no longer this member's to handle: the subscription
   * is stopping (Kafka; the in-process log ends with the process, so its stop waits for the batch instead), the bus is
   * closing, the group took the partition away (in-process: a rebalance), or the batch holds the member's rejoin
   * for so long that the group is about to remove it (Kafka: shortly before the rebalance timeout, 30 s; or it was
   * removed). The partition's next owner then reads the batch again from the last commit, so a handler that sees it
   * aborted must throw, or return without publishing anything of the batch; the bus commits nothing of a batch whose
   * signal aborted, whatever the handler returns. A handler that waits (a retry through an outage, a slow model call)
   * passes it on so that the wait ends at once.
   */
  readonly signal: AbortSignal;
}

/** The reason of an aborted `Batch.signal`: the partition is lost to this member (see `Batch.signal`). */
export class PartitionLost extends Error {
  override readonly name = 'PartitionLost';
}

/**
 * What a handler may return for a batch: per partition, the next offset that is safe to commit (everything
 * before it is fully reflected in durable outputs). Default (`undefined`): the whole batch is committed.
 * A stateful service returns an earlier offset so that a restart rebuilds its open state by re-reading.
 */
export type CommitPlan = Map<number, bigint> | undefined;

export interface SubscribeOptions<T> {
  topic: Topic<T>;
  /** Consumer group: members share the partitions; the group's committed offsets survive restarts. */
  group: string;
  /** Where a group with no committed offset starts. */
  from?: 'earliest' | 'latest';
  /**
   * Per partition, the offset a group with no committed offset starts at instead of `from` (clamped to the log). For a
   * view that reads a topic first, then follows it from where the read ended: "latest" is fixed only when the group is
   * assigned the partition (Kafka: possibly after the read, and again at a rebalance), and what came in between was
   * neither read nor consumed.
   */
  startAt?: ReadonlyMap<number, bigint>;
  /** Service name, used in dead letters and logs. */
  service: string;
  /** Called with records of one partition, in order. Must not mutate the values. */
  handle(batch: Batch<T>): Promise<CommitPlan> | CommitPlan;
  /**
   * Called when partitions are taken away (rebalance, stop): drop their in-memory state. Never while the handler is at
   * work on one of them: a partition taken away in the middle of a batch is revoked once that batch is through (both
   * transports; test/support/bus-contract.ts).
   */
  onRevoke?(partitions: readonly number[]): void | Promise<void>;
  /** Called when partitions are assigned, before their first batch. */
  onAssign?(partitions: readonly number[]): void | Promise<void>;
}

export interface Subscription {
  /**
   * Stops fetching, waits for the in-flight batch, commits what is safe. On Kafka the batch's signal is aborted first
   * (its next owner reads it again from the last commit); the in-process bus lets it finish (nothing would read it again).
   */
  stop(): Promise<void>;
  /** Records on the assigned partitions not yet handed to the handler (as of the last fetch on Kafka). */
  lag(): number;
  /** Resolves when every assigned partition has been consumed up to its end as of this call. */
  caughtUp(): Promise<void>;
  /**
   * Whether every assigned partition has been handed to the handler up to its end as last seen (Kafka: the end read
   * at assignment, then the high watermark of each fetch that brought records — a record appended since the last
   * fetch is not known yet; the in-process log's end). A batch in the handler's hands counts as read — right for a
   * handler that asks after going through its batch; a handler that awaits before reading its records would count
   * another partition's unread batch as read (the in-process bus hands partitions concurrently). False while an
   * assignment is pending, while fetches fail (Kafka) and once stopped. A stateful consumer asks it before concluding
   * that a record will not come: the monitor restarted behind a backlog must not give up on a candle it simply has
   * not read yet.
   */
  readToEnd(): boolean;
}

/**
 * Thrown by a handler that holds its input on purpose while a dependency it checked is away (the predictor while the
 * registry does not answer): the bus redelivers the batch after its back-off, as after any failure, but this is a
 * wait, not an error. It is logged once per wait, as a warning without a stack, instead of at every back-off.
 */
export class HoldBatch extends Error {
  override readonly name = 'HoldBatch';
}

/** Partition for a key: murmur2 like Kafka's default partitioner, so both transports place keys alike. */
export function partitionFor(key: string, partitions: number): number {
  // Keys are pairs: a handful of distinct strings, so the hash is memoised.
  let h = hashCache.get(key);
  if (h === undefined) {
    h = murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff;
    if (hashCache.size < 100_000) hashCache.set(key, h);
  }
  return h % partitions;
}
const hashCache = new Map<string, number>();

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = seed ^ length;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k =
      (data[i4]! & 0xff) |
      ((data[i4 + 1]! & 0xff) << 8) |
      ((data[i4 + 2]! & 0xff) << 16) |
      ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  const idx = length & ~3;
  if (rest === 3) h ^= (data[idx + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[idx + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[idx]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

import {
  Admin,
  Consumer,
  FetchIsolationLevels,
  findErrorBy,
  IS_CONTROL,
  ListOffsetTimestamps,
  ProduceAcks,
  Producer,
} from '@platformatic/kafka';
import { setting } from '../config/env.ts';
import { reportDependency, untilAvailable } from '../core/dependency.ts';
import { type Logger, log as rootLog } from '../core/log.ts';
import { backoffCap } from '../core/retry.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import { topics as knownTopics } from '../schemas/topics.ts';
import {
  type Bus,
  type CommitPlan,
  type Delivered,
  partitionFor,
  type SubscribeOptions,
  type Subscription,
} from './bus.ts';
import { summarise } from './in-process-bus.ts';
import type { Topic } from './topic.ts';
import { isValidated } from './validated.ts';

/**
 * The distributed transport: Apache Kafka through `@platformatic/kafka` (a pure TypeScript client).
 *
 * Producing: values are JSON (UTF-8), keys the topic's key; the partition is computed here with Kafka's murmur2
 * (`partitionFor`, as the in-process bus and Java clients do) and passed explicitly. Acks from all in-sync
 * replicas, idempotent producer; one `publish` of thousands of values is a few produce requests (one record
 * batch per partition per request), sent one after the other so that a partition keeps its order.
 *
 * Consuming: each subscription is a member of its consumer group (classic protocol, round-robin assignment)
 * that runs its own fetch loop, so that it controls its positions exactly. The client's `MessagesStream` is
 * not used: it cannot seek (a failed batch must be re-read from the committed offset) and it pre-fetches
 * ahead of what was handled, which makes "caught up" and "committed" hard to tell apart. Per fetched
 * partition the records are parsed and validated; invalid ones go to `dlq`, valid ones to the handler in
 * offset order; the offset is committed only after the handler resolved, up to its `CommitPlan`.
 *
 * `topicPrefix` (or `CRYPTOCAST_TOPIC_PREFIX`) namespaces topics and groups, so that tests and several
 * deployments can share one broker; records, dead letters and logs carry the logical topic name.
 */
export interface KafkaBusOptions {
  brokers: string[];
  clientId?: string;
  logger?: Logger;
  topicPrefix?: string;
  /** Records handed to a handler at once, per partition, at most. */
  maxBatch?: number;
  /** How long the group waits for a silent member before giving its partitions to others (broker min 6 s). */
  sessionTimeoutMs?: number;
  /** Replicas of the topics cryptocast creates (default CRYPTOCAST_KAFKA_REPLICATION_FACTOR, else 1). */
  replicationFactor?: number;
  /**
   * Values of topics with a binary codec (`trades`): `binary` (default) or `json` (readable with any Kafka tool;
   * env CRYPTOCAST_KAFKA_ENCODING). Consumers read both either way.
   */
  encoding?: 'binary' | 'json';
}

/** The broker refuses record batches over `max.message.bytes` (1 MiB by default): stay well under per partition. */
const MAX_PARTITION_BATCH_BYTES = 768 * 1024;
/** Bytes per produce request at most (all partitions together). */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Per-record overhead in a record batch (varint lengths, deltas, attributes), an upper estimate. */
const RECORD_OVERHEAD_BYTES = 24;
/** Larger values are dead-lettered without being parsed (the broker's own limit is about 1 MiB). */
const MAX_VALUE_BYTES = 4 * 1024 * 1024;
/** Long-poll time of a fetch: how long an idle subscription waits for data (and `stop()` at most waits). */
const FETCH_MAX_WAIT_MS = 250;
// Per fetch: every record of a response is decoded into objects at once and lives until its partition's batch is
// handled, so the fetch size bounds the working set (256 KiB is ~4,000 binary trades; 4 MiB per partition kept a
// candle service above 500 MiB RSS) without costing throughput (measured: 256 KiB was as fast as 1 and 2 MiB). The
// broker still returns a whole record batch larger than this (a producer's batch is up to 768 KiB).
const FETCH_MAX_BYTES = 4 * 1024 * 1024;
const FETCH_PARTITION_MAX_BYTES = 256 * 1024;
/** Batch attribute bit: the timestamps are the broker's append time (topic config LogAppendTime). */
const LOG_APPEND_TIME = 0x08;
/** Nothing here uses transactions, but should a producer ever do, consumers must not see aborted records. */
const ISOLATION = FetchIsolationLevels.READ_COMMITTED;
/** Back-off of a subscription whose fetch failed (broker away, leadership moving; the client already retried). */
const FETCH_BACKOFF = { initialMs: 100, maxMs: 5_000 };
/** Back-off before a partition whose handler failed is re-read from its last commit. */
const HANDLER_BACKOFF = { initialMs: 100, maxMs: 10_000 };

type RawConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;
type FetchRequestPartition = Parameters<RawConsumer['fetch']>[0]['topics'][number]['partitions'][number];

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly brokers: string[];
  readonly clientId: string;
  readonly prefix: string;
  readonly maxBatch: number;
  readonly sessionTimeoutMs: number;
  readonly replicationFactor: number;
  readonly encoding: 'binary' | 'json';
  readonly log: Logger;
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private metaClient: RawConsumer | undefined;
  private readonly subscriptions = new Set<KafkaSubscription<unknown>>();
  /** Logical names of the topics known to exist with the right partition count. */
  private readonly ensured = new Set<string>();
  private closed = false;

  constructor(options: KafkaBusOptions) {
    if (options.brokers.length === 0) throw new Error('KafkaBus: no broker given');
    this.brokers = options.brokers;
    this.clientId = options.clientId ?? `cryptocast-${process.pid}`;
    this.prefix = options.topicPrefix ?? setting('CRYPTOCAST_TOPIC_PREFIX') ?? '';
    this.maxBatch = options.maxBatch ?? 5_000;
    this.sessionTimeoutMs =
      options.sessionTimeoutMs ?? setting('CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS') ?? 10_000;
    this.replicationFactor = options.replicationFactor ?? setting('CRYPTOCAST_KAFKA_REPLICATION_FACTOR') ?? 1;
    this.log = options.logger ?? rootLog.child({ component: 'kafka-bus' });
    this.encoding = options.encoding ?? setting('CRYPTOCAST_KAFKA_ENCODING') ?? 'binary';
  }

  /** `kafka://host:port[,host:port]` (port 9092 when left out). */
  static connect(url: string, options: Partial<KafkaBusOptions> = {}): KafkaBus {
    const m = /^kafka:\/\/([^/?#]+)\/?$/.exec(url);
    if (m === null) throw new Error(`not a Kafka URL: ${url} (expected kafka://host:port[,host:port])`);
    const brokers = m[1]!.split(',').map((b) => {
      const hostPort = b.includes(':') ? b : `${b}:9092`;
      if (!/^[^:]+:\d{1,5}$/.test(hostPort)) throw new Error(`not a broker address in ${url}: "${b}"`);
      return hostPort;
    });
    return new KafkaBus({ ...options, brokers });
  }

  /** The topic's name on the broker (with the prefix). */
  name(topic: Topic<unknown> | string): string {
    return this.prefix + (typeof topic === 'string' ? topic : topic.name);
  }

  /** Ended by `close()`: whatever waits for the broker gives up. */
  private readonly closing = new AbortController();

  /** Runs a broker operation until the broker answers (see `untilAvailable`); misconfiguration fails at once. */
  private waitForBroker<T>(attempt: () => Promise<T>): Promise<T> {
    return untilAvailable('kafka', attempt, {
      signal: this.closing.signal,
      log: this.log,
      permanent: (err) => err instanceof PartitionCountError || this.closed,
    });
  }

  ensureTopics(topics: readonly Topic<unknown>[]): Promise<void> {
    return this.waitForBroker(() => this.ensureTopicsOnce(topics));
  }

  private async ensureTopicsOnce(topics: readonly Topic<unknown>[]): Promise<void> {
    const wanted = topics.filter((t) => !this.ensured.has(t.name));
    if (wanted.length === 0) return;
    const admin = this.getAdmin();
    const existing = new Set(await admin.listTopics());
    for (const t of wanted) {
      const name = this.name(t);
      if (existing.has(name)) continue;
      try {
        await admin.createTopics({
          topics: [name],
          partitions: t.partitions,
          replicas: this.replicationFactor,
          configs: t.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
        });
        this.log.info(
          { topic: name, partitions: t.partitions, compacted: t.compacted ?? false },
          'created topic',
        );
      } catch (err) {
        // Services start together and race to create the same topics: someone else winning is fine.
        if (!findErrorBy(err as Error, 'apiId', 'TOPIC_ALREADY_EXISTS')) throw err;
      }
    }
    await this.awaitTopics(wanted);
    for (const t of wanted) this.ensured.add(t.name);
  }

  /**
   * Waits until every partition of the topics has a leader (creation completes asynchronously: a produce
   * right after it could fail), and checks the partition counts: with a different count, keys would not land
   * where `partitionFor` (and so the in-process bus) puts them.
   */
  private async awaitTopics(topics: readonly Topic<unknown>[]): Promise<void> {
    const names = topics.map((t) => this.name(t));
    const deadline = Date.now() + 30_000;
    for (;;) {
      let pending = '';
      try {
        const md = await this.getMetaClient().metadata({ topics: names, forceUpdate: true });
        for (const t of topics) {
          const tm = md.topics.get(this.name(t));
          if (tm === undefined) {
            pending = `${this.name(t)} not in metadata`;
            break;
          }
          if (tm.partitionsCount !== t.partitions)
            throw new PartitionCountError(
              `topic ${this.name(t)} has ${tm.partitionsCount} partitions but cryptocast declares ${t.partitions}: ` +
                'keys would be partitioned differently from the in-process bus; recreate the topic',
            );
          if (tm.partitions.some((p) => p.leader < 0))
            pending = `${this.name(t)} has partitions without leader`;
        }
      } catch (err) {
        if (err instanceof PartitionCountError) throw err;
        pending = (err as Error).message;
      }
      if (pending === '') return;
      if (Date.now() > deadline) throw new Error(`topics not ready after 30 s: ${pending}`);
      await sleep(100);
    }
  }

  /**
   * Resolves once every value is acknowledged by all in-sync replicas. Everything is validated before anything
   * is sent. If a produce request fails (after the client's retries), the earlier requests of this call stay
   * written and the call rejects: a caller that retries may publish some values twice (at-least-once), which
   * the consumers' idempotence absorbs.
   */
  async publish<T>(topic: Topic<T>, values: readonly T[]): Promise<void> {
    if (this.closed) throw new Error('KafkaBus is closed');
    if (values.length === 0) return;
    for (const v of values) {
      // Values a schema produced at the boundary (validate()) are not checked twice.
      if (isValidated(v)) continue;
      const r = topic.schema.safeParse(v);
      if (!r.success) throw new Error(`publish to ${topic.name}: invalid value: ${summarise(r.error)}`);
    }
    if (!this.ensured.has(topic.name)) await this.ensureTopics([topic as Topic<unknown>]);
    const name = this.name(topic as Topic<unknown>);
    const producer = this.getProducer();
    let messages: { topic: string; key: Buffer; value: Buffer; partition: number }[] = [];
    let requestBytes = 0;
    const partitionBytes = new Array<number>(topic.partitions).fill(0);
    const send = async () => {
      try {
        await producer.send({ messages });
        reportDependency('kafka', undefined, this.log);
      } catch (err) {
        this.log.error({ err, topic: name, records: messages.length, bytes: requestBytes }, 'publish failed');
        reportDependency('kafka', err, this.log);
        throw err;
      }
      messages = [];
      requestBytes = 0;
      partitionBytes.fill(0);
    };
    for (const v of values) {
      const k = topic.key(v);
      const partition = partitionFor(k, topic.partitions);
      const key = keyBuffer(k);
      const value =
        topic.codec !== undefined && this.encoding === 'binary'
          ? topic.codec.encode(v)
          : Buffer.from(JSON.stringify(v), 'utf8');
      const size = key.length + value.length + RECORD_OVERHEAD_BYTES;
      // Full request, or this partition's record batch would grow too big: send what we have first.
      if (
        messages.length > 0 &&
        (partitionBytes[partition]! + size > MAX_PARTITION_BATCH_BYTES ||
          requestBytes + size > MAX_REQUEST_BYTES)
      )
        await send();
      messages.push({ topic: name, key, value, partition });
      partitionBytes[partition]! += size;
      requestBytes += size;
    }
    if (messages.length > 0) await send();
  }

  async subscribe<T>(options: SubscribeOptions<T>): Promise<Subscription> {
    if (this.closed) throw new Error('KafkaBus is closed');
    await this.ensureTopics([options.topic as Topic<unknown>, knownTopics.dlq as Topic<unknown>]);
    // Joining the group needs the broker too: a failed join is retried with a fresh member.
    const sub = await this.waitForBroker(async () => {
      const s = new KafkaSubscription<T>(this, options);
      this.subscriptions.add(s as KafkaSubscription<unknown>);
      try {
        await s.start();
        return s;
      } catch (err) {
        this.subscriptions.delete(s as KafkaSubscription<unknown>);
        await s.stop().catch(() => {});
        throw err;
      }
    });
    return {
      stop: async () => {
        await sub.stop();
        this.subscriptions.delete(sub as KafkaSubscription<unknown>);
      },
      caughtUp: () => sub.caughtUp(),
      lag: () => sub.lag(),
    };
  }

  async readTail<T>(topic: Topic<T>, perPartition: number): Promise<Delivered<T>[]> {
    await this.ensureTopics([topic as Topic<unknown>]);
    return this.waitForBroker(() => this.readTailOnce(topic, perPartition));
  }

  private async readTailOnce<T>(topic: Topic<T>, perPartition: number): Promise<Delivered<T>[]> {
    const name = this.name(topic as Topic<unknown>);
    const { earliest, latest } = await this.offsets(name);
    const positions = new Map<number, bigint>();
    latest.forEach((end, p) => {
      const first = earliest[p] ?? 0n;
      const start = end - BigInt(perPartition) > first ? end - BigInt(perPartition) : first;
      if (start < end) positions.set(p, start);
    });
    if (positions.size === 0) return [];
    // Its own client: fetch sessions are per client and connection, and readTail may run while others fetch.
    const client = this.newRawClient('tail');
    const out: Delivered<T>[] = [];
    let invalid = 0;
    try {
      let idleRounds = 0;
      while (positions.size > 0) {
        const fetched = await fetchRecords(client, name, positions, FETCH_MAX_WAIT_MS);
        idleRounds = fetched.size === 0 ? idleRounds + 1 : 0;
        // Below the end but nothing comes back: the rest was removed (compaction, retention). Done.
        if (idleRounds >= 3) break;
        for (const [p, f] of fetched) {
          const end = latest[p]!;
          for (const r of f.records) {
            if (r.offset >= end) break;
            const parsed = parseRecord(topic, p, r);
            if (parsed.ok) out.push(parsed.record);
            else invalid++;
          }
          if (f.next >= end) positions.delete(p);
          else positions.set(p, f.next);
        }
      }
    } finally {
      await client.close().catch(() => {});
    }
    if (invalid > 0) this.log.warn({ topic: name, invalid }, 'readTail skipped invalid records');
    out.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
    return out;
  }

  /**
   * Earliest and end offsets per partition (the end is the last stable offset, which is the high watermark
   * when there are no open transactions).
   */
  async offsets(name: string): Promise<{ earliest: bigint[]; latest: bigint[] }> {
    const client = this.getMetaClient();
    const [e, l] = await Promise.all([
      client.listOffsets({
        topics: [name],
        timestamp: ListOffsetTimestamps.EARLIEST,
        isolationLevel: ISOLATION,
      }),
      client.listOffsets({
        topics: [name],
        timestamp: ListOffsetTimestamps.LATEST,
        isolationLevel: ISOLATION,
      }),
    ]);
    return { earliest: e.get(name) ?? [], latest: l.get(name) ?? [] };
  }

  async groupLag(topic: Topic<unknown>, group: string): Promise<number | undefined> {
    const name = this.name(topic);
    const [groups, { latest }] = await Promise.all([
      this.getAdmin().listConsumerGroupOffsets({ groups: [this.prefix + group] }),
      this.offsets(name),
    ]);
    const t = groups[0]?.topics.find((x) => x.name === name);
    if (t === undefined) return undefined;
    let n = 0n;
    for (const p of t.partitions) {
      const end = latest[p.partitionIndex] ?? 0n;
      if (p.committedOffset >= 0n && end > p.committedOffset) n += end - p.committedOffset;
    }
    return Number(n);
  }

  async close(): Promise<void> {
    this.closing.abort();
    // Subscriptions first: their in-flight batches may still publish (and then commit).
    for (const s of [...this.subscriptions]) await s.stop().catch(() => {});
    this.subscriptions.clear();
    this.closed = true;
    const { producer, admin, metaClient } = this;
    this.producer = undefined;
    this.admin = undefined;
    this.metaClient = undefined;
    await Promise.all([
      producer?.close().catch(() => {}),
      admin?.close().catch(() => {}),
      metaClient?.close().catch(() => {}),
    ]);
  }

  /** A client that never joins a group: for metadata, offsets and fetches of its own. */
  newRawClient(role: string): RawConsumer {
    const client: RawConsumer = new Consumer({
      clientId: `${this.clientId}-${role}`,
      // Required by the client, unused: this consumer never joins a group nor commits.
      groupId: `${this.prefix}cryptocast-${role}`,
      bootstrapBrokers: this.brokers,
      autocommit: false,
      isolationLevel: ISOLATION,
      retries: 5,
      retryDelay: 200,
    });
    client.on('error', (err) => this.log.warn({ err, role }, 'kafka client error'));
    return client;
  }

  private getMetaClient(): RawConsumer {
    this.metaClient ??= this.newRawClient('meta');
    return this.metaClient;
  }

  private getProducer(): Producer {
    if (this.producer === undefined) {
      this.producer = new Producer({
        clientId: this.clientId,
        bootstrapBrokers: this.brokers,
        // Idempotent: the broker drops duplicates of a retried request (sequence numbers per partition).
        idempotent: true,
        acks: ProduceAcks.ALL,
        autocreateTopics: false,
        retries: 10,
        retryDelay: 250,
      });
      this.producer.on('error', (err) => this.log.warn({ err }, 'kafka producer error'));
    }
    return this.producer;
  }

  private getAdmin(): Admin {
    if (this.admin === undefined) {
      this.admin = new Admin({ clientId: `${this.clientId}-admin`, bootstrapBrokers: this.brokers });
      this.admin.on('error', (err) => this.log.warn({ err }, 'kafka admin error'));
    }
    return this.admin;
  }
}

class PartitionCountError extends Error {}

/** Keys are pairs, a handful of strings: their bytes are made once (the client copies them into the batch). */
const keyBuffers = new Map<string, Buffer>();
function keyBuffer(key: string): Buffer {
  let b = keyBuffers.get(key);
  if (b === undefined) {
    b = Buffer.from(key, 'utf8');
    if (keyBuffers.size < 10_000) keyBuffers.set(key, b);
  }
  return b;
}

// --- fetching and parsing ------------------------------------------------------------------------------------

/** A record as fetched, before parsing. */
interface RawRecord {
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  /** Epoch ms (exact: below 2^53). */
  timestamp: number;
  leaderEpoch: number;
}

interface Fetched {
  /** Records at or after the requested offset, in offset order. */
  records: RawRecord[];
  /** The partition's high watermark when it was fetched (for the consumer lag). */
  highWatermark: bigint;
  /** The offset after the last fetched batch (control batches included): where the next fetch starts. */
  next: bigint;
}

/**
 * One Fetch round: the given partitions from their positions, one request per partition leader. Returns the
 * partitions that had data (with incremental fetch sessions the broker leaves the others out).
 */
async function fetchRecords(
  client: RawConsumer,
  topic: string,
  positions: ReadonlyMap<number, bigint>,
  maxWaitTime: number,
): Promise<Map<number, Fetched>> {
  const md = await client.metadata({ topics: [topic] });
  const tm = md.topics.get(topic);
  if (tm === undefined) throw new Error(`topic ${topic} is not in the cluster metadata`);
  const byLeader = new Map<number, FetchRequestPartition[]>();
  for (const [partition, fetchOffset] of positions) {
    const leader = tm.partitions[partition]?.leader ?? -1;
    if (leader < 0) continue; // no leader right now (election): skipped this round
    let list = byLeader.get(leader);
    if (list === undefined) {
      list = [];
      byLeader.set(leader, list);
    }
    list.push({
      partition,
      fetchOffset,
      partitionMaxBytes: FETCH_PARTITION_MAX_BYTES,
      currentLeaderEpoch: -1,
      lastFetchedEpoch: -1,
    });
  }
  const responses = await Promise.all(
    [...byLeader].map(([node, partitions]) =>
      client.fetch({
        node,
        topics: [{ topicId: tm.id, partitions }],
        maxWaitTime,
        minBytes: 1,
        maxBytes: FETCH_MAX_BYTES,
        isolationLevel: ISOLATION,
      }),
    ),
  );
  const out = new Map<number, Fetched>();
  for (const response of responses) {
    for (const tr of response.responses) {
      for (const pr of tr.partitions) {
        const requested = positions.get(pr.partitionIndex);
        // A fetch session can return partitions that were not asked for this time: ignore them.
        if (requested === undefined || !pr.records || pr.records.length === 0) continue;
        const records: RawRecord[] = [];
        let next = requested;
        for (const batch of pr.records) {
          const end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
          if (end <= requested) continue;
          // Control batches (transaction markers) take offsets but carry no data.
          if ((batch.attributes & IS_CONTROL) === 0) {
            const appendTime = (batch.attributes & LOG_APPEND_TIME) !== 0;
            // Numbers, not BigInts, per record: one allocation less each.
            const firstTs = Number(batch.firstTimestamp);
            const maxTs = Number(batch.maxTimestamp);
            for (const r of batch.records) {
              const offset = batch.firstOffset + smallBigInt(r.offsetDelta);
              // A batch is returned whole: skip what precedes the requested offset.
              if (offset < requested) continue;
              records.push({
                offset,
                key: r.key,
                value: r.value,
                timestamp: appendTime ? maxTs : firstTs + Number(r.timestampDelta),
                leaderEpoch: batch.partitionLeaderEpoch,
              });
            }
          }
          if (end > next) next = end;
        }
        if (next > requested)
          out.set(pr.partitionIndex, { records, next, highWatermark: BigInt(pr.highWatermark) });
      }
    }
  }
  return out;
}

/** A record key as text; keys are pairs, so consecutive records mostly repeat the last one: no new string then. */
let lastKeyBytes: Buffer | undefined;
let lastKeyText = '';
function keyText(key: Buffer | null): string {
  if (key === null) return '';
  if (lastKeyBytes === undefined || !key.equals(lastKeyBytes)) {
    lastKeyBytes = Buffer.from(key); // a copy: the fetched bytes are the client's
    lastKeyText = key.toString('utf8');
  }
  return lastKeyText;
}

/** BigInts of small offset deltas, made once: one allocation less per record. */
const SMALL_BIGINTS = Array.from({ length: 1 << 16 }, (_, i) => BigInt(i));
const smallBigInt = (n: number): bigint => SMALL_BIGINTS[n] ?? BigInt(n);

type Parsed<T> = { ok: true; record: Delivered<T> } | { ok: false; reason: string };

function parseRecord<T>(topic: Topic<T>, partition: number, r: RawRecord): Parsed<T> {
  if (r.value === null) return { ok: false, reason: 'no value (null record)' };
  if (r.value.length > MAX_VALUE_BYTES)
    return { ok: false, reason: `value of ${r.value.length} bytes exceeds ${MAX_VALUE_BYTES}` };
  // A binary value (the topic's codec): decoded and checked by the codec, no JSON, no schema walk.
  if (topic.codec?.matches(r.value)) {
    const value = topic.codec.decode(r.value);
    if (typeof value === 'string') return { ok: false, reason: value };
    return {
      ok: true,
      record: {
        topic: topic.name,
        partition,
        offset: r.offset,
        key: keyText(r.key),
        value,
        timestamp: r.timestamp,
      },
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(r.value.toString('utf8'));
  } catch (e) {
    return { ok: false, reason: `not JSON: ${(e as Error).message}` };
  }
  // Plain safeParse: these values are handed to a handler, not re-published in-process, so marking them
  // (validate()) would only cost time.
  const v = topic.schema.safeParse(json);
  if (!v.success) return { ok: false, reason: summarise(v.error) };
  return {
    ok: true,
    record: {
      topic: topic.name,
      partition,
      offset: r.offset,
      key: keyText(r.key),
      value: v.data,
      timestamp: r.timestamp,
    },
  };
}

// --- subscriptions -------------------------------------------------------------------------------------------

interface PartitionState {
  /** Next offset to fetch and deliver. */
  position: bigint;
  /** Where a failed batch is re-read from: the last offset committed, or the start position. */
  resumeFrom: bigint;
  /** The group's committed offset as we last knew it (-1: none). */
  committed: bigint;
  /** A commit that failed (broker away): retried before the next fetch. */
  uncommitted: { offset: bigint; leaderEpoch: number } | undefined;
  failures: number;
  /** After a handler error, the partition is not fetched before this time (back-off). */
  retryAt: number;
}

/**
 * One member of a consumer group. Two clients: `member` joins the group, heartbeats, reads and commits
 * offsets; `fetcher` only fetches, on its own connections, so that a long-polling fetch never delays a
 * heartbeat or a commit (a broker handles one request per connection at a time).
 *
 * Assignment changes arrive as events from the client's background (re)join; they are applied by the fetch
 * loop between batches, so `onRevoke`/`onAssign` never run concurrently with `handle`.
 */
class KafkaSubscription<T> {
  private readonly bus: KafkaBus;
  private readonly opts: SubscribeOptions<T>;
  private readonly topicName: string;
  private readonly log: Logger;
  private readonly member: RawConsumer;
  private readonly fetcher: RawConsumer;
  private readonly partitions = new Map<number, PartitionState>();
  /** The latest assignment from the group, not applied yet. */
  private pending: Set<number> | undefined;
  private joined = false;
  private rejoinNeeded = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Wakes the fetch loop (assignment, stop). */
  private readonly wake = new Signal();
  /** Wakes `caughtUp` waiters (positions moved, assignment applied). */
  private readonly progress = new Signal();

  constructor(bus: KafkaBus, opts: SubscribeOptions<T>) {
    this.bus = bus;
    this.opts = opts;
    this.topicName = bus.name(opts.topic as Topic<unknown>);
    this.log = bus.log.child({ service: opts.service, topic: opts.topic.name, group: opts.group });
    const sessionTimeout = bus.sessionTimeoutMs;
    this.member = new Consumer({
      clientId: `${bus.clientId}-${opts.service}`,
      groupId: bus.prefix + opts.group,
      bootstrapBrokers: bus.brokers,
      autocommit: false,
      sessionTimeout,
      heartbeatInterval: Math.min(1_000, Math.floor(sessionTimeout / 3)),
      rebalanceTimeout: Math.max(sessionTimeout, 30_000),
      isolationLevel: ISOLATION,
      retries: 5,
      retryDelay: 250,
    });
    this.fetcher = bus.newRawClient(`${opts.service}-fetch`);
    // The client emits 'error' when a background rejoin fails for good (broker away too long); it then stops
    // heartbeating, so the loop rejoins. (An 'error' event without a listener would crash the process.)
    this.member.on('error', (err) => {
      this.log.warn({ err }, 'consumer group membership lost; rejoining');
      this.rejoinNeeded = true;
      this.wake.notify();
    });
    this.member.on('consumer:group:join', (payload) => {
      const mine = new Set<number>();
      for (const a of payload.assignments ?? [])
        if (a.topic === this.topicName) for (const p of a.partitions) mine.add(p);
      this.pending = mine;
      this.wake.notify();
    });
    this.member.topics.trackAll(this.topicName);
    this.fetcher.topics.trackAll(this.topicName);
  }

  /** Joins the group and applies the first assignment (start positions, `onAssign`) before resolving. */
  async start(): Promise<void> {
    await this.member.joinGroup({});
    const deadline = Date.now() + 60_000;
    while (this.pending !== undefined && !this.stopped) {
      if (await this.applyAssignment()) break;
      if (Date.now() > deadline)
        throw new Error(`${this.opts.service}: could not start consuming ${this.topicName}`);
      await sleep(250);
    }
    this.joined = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake.notify();
    this.progress.notify();
    await this.loop; // the in-flight fetch (at most FETCH_MAX_WAIT_MS) and batch
    await this.flushCommits();
    const revoked = [...this.partitions.keys()];
    this.partitions.clear();
    if (revoked.length > 0) await this.callback('onRevoke', revoked);
    // Closing the member leaves the group: its partitions go to the other members at once.
    await Promise.all([
      this.member.close().catch((err) => this.log.warn({ err }, 'leaving the group failed')),
      this.fetcher.close().catch(() => {}),
    ]);
  }

  /** High watermark per partition, as of its last fetch with data. */
  private readonly highWatermarks = new Map<number, bigint>();

  lag(): number {
    let n = 0n;
    for (const [p, s] of this.partitions) {
      const hw = this.highWatermarks.get(p);
      if (hw !== undefined && hw > s.position) n += hw - s.position;
    }
    return Number(n);
  }

  async caughtUp(): Promise<void> {
    const { latest } = await this.bus.offsets(this.topicName);
    for (;;) {
      if (this.stopped) return;
      if (this.joined && this.pending === undefined) {
        let done = true;
        for (const [p, s] of this.partitions) if (s.position < (latest[p] ?? 0n)) done = false;
        if (done) return;
      }
      await this.progress.wait(500);
    }
  }

  private async run(): Promise<void> {
    let fetchFailures = 0;
    while (!this.stopped) {
      try {
        if (this.rejoinNeeded) {
          await this.member.joinGroup({});
          this.rejoinNeeded = false;
        }
        if (this.pending !== undefined && !(await this.applyAssignment())) {
          await this.wake.wait(500);
          continue;
        }
        await this.flushCommits();
        const now = Date.now();
        const positions = new Map<number, bigint>();
        let nextRetry = Number.POSITIVE_INFINITY;
        for (const [p, s] of this.partitions) {
          if (s.retryAt <= now) positions.set(p, s.position);
          else nextRetry = Math.min(nextRetry, s.retryAt);
        }
        if (positions.size === 0) {
          await this.wake.wait(Math.min(500, Math.max(10, nextRetry - now)));
          continue;
        }
        let fetched: Map<number, Fetched>;
        try {
          fetched = await fetchRecords(this.fetcher, this.topicName, positions, FETCH_MAX_WAIT_MS);
          if (fetchFailures > 0) reportDependency('kafka', undefined, this.log);
          fetchFailures = 0;
        } catch (err) {
          if (findErrorBy(err as Error, 'apiId', 'OFFSET_OUT_OF_RANGE')) {
            await this.resetOutOfRange([...positions.keys()]);
            continue;
          }
          fetchFailures++;
          reportDependency('kafka', err, this.log);
          // Broker away or leadership moving: the client already retried; back off, and say so now and then.
          if ((fetchFailures & (fetchFailures - 1)) === 0)
            this.log.warn({ err, failures: fetchFailures }, 'fetch failed; retrying');
          await this.wake.wait(backoffCap(fetchFailures, FETCH_BACKOFF));
          continue;
        }
        for (const p of [...fetched.keys()].sort((a, b) => a - b)) {
          // A new assignment is applied before anything else is delivered (partitions may have moved).
          if (this.stopped || this.pending !== undefined) break;
          const state = this.partitions.get(p);
          if (state === undefined || state.position !== positions.get(p)) continue;
          this.highWatermarks.set(p, fetched.get(p)!.highWatermark);
          await this.deliver(p, state, fetched.get(p)!);
        }
      } catch (err) {
        // Not expected (the steps above handle their errors): log, back off, go on.
        this.log.error({ err }, 'subscription loop error');
        await this.wake.wait(1_000);
      }
    }
  }

  /**
   * Hands one partition's fetched records to the handler in chunks of at most `maxBatch`, committing after each.
   * On a handler error the partition is re-read from its last commit, after a back-off.
   */
  private async deliver(partition: number, state: PartitionState, fetched: Fetched): Promise<void> {
    const { records } = fetched;
    const size = this.bus.maxBatch;
    for (let i = 0; i === 0 || i < records.length; i += size) {
      if (this.stopped || this.pending !== undefined) return;
      const chunk = records.slice(i, i + size);
      const last = i + size >= records.length;
      // The last chunk also moves past what follows its last record (control batches).
      const next = last ? fetched.next : chunk[chunk.length - 1]!.offset + 1n;
      const leaderEpoch = chunk[chunk.length - 1]?.leaderEpoch ?? -1;
      const valid: Delivered<T>[] = [];
      const dead: DeadLetter[] = [];
      for (const r of chunk) {
        const parsed = parseRecord(this.opts.topic, partition, r);
        if (parsed.ok) valid.push(parsed.record);
        else dead.push(this.deadLetter(partition, r, parsed.reason));
      }
      let plan: CommitPlan;
      try {
        if (dead.length > 0) {
          this.log.warn({ partition, count: dead.length, reason: dead[0]!.reason }, 'invalid records to dlq');
          await this.bus.publish(knownTopics.dlq, dead);
        }
        if (valid.length > 0) plan = await this.opts.handle({ partition, records: valid });
      } catch (err) {
        state.failures++;
        const backoff = backoffCap(state.failures, HANDLER_BACKOFF);
        this.log.error(
          { err, partition, offset: chunk[0]?.offset, failures: state.failures, retryInMs: backoff },
          'handler failed; re-reading from the last commit',
        );
        state.position = state.resumeFrom;
        state.retryAt = Date.now() + backoff;
        this.progress.notify();
        return;
      }
      state.failures = 0;
      const safe = plan?.get(partition);
      const commitTo = safe !== undefined && safe < next ? safe : next;
      if (commitTo > state.committed) {
        state.uncommitted = { offset: commitTo, leaderEpoch };
        await this.commit(partition, state);
      }
      state.position = next;
      this.progress.notify();
    }
  }

  private deadLetter(partition: number, r: RawRecord, reason: string): DeadLetter {
    return deadLetter({
      service: this.opts.service,
      origin: this.opts.topic.name,
      kind: 'invalid',
      reason,
      // A binary value (the topic's codec) travels as base64 text; anything else as the text it is.
      payload:
        r.value === null
          ? ''
          : this.opts.topic.codec?.matches(r.value)
            ? `base64:${r.value.toString('base64')}`
            : r.value.toString('utf8'),
      key: r.key === null ? undefined : r.key.toString('utf8'),
      partition,
      offset: r.offset,
    });
  }

  /** Commits `state.uncommitted` if this member still owns the partition; keeps it for a retry on failure. */
  private async commit(partition: number, state: PartitionState): Promise<void> {
    const c = state.uncommitted;
    if (c === undefined) return;
    // The group moved the partition away meanwhile: its new owner resumes from the previous commit, which
    // must not be overwritten (the records are re-read there: at-least-once).
    const owned = this.member.assignments?.some(
      (a) => a.topic === this.topicName && a.partitions.includes(partition),
    );
    if (!owned) {
      state.uncommitted = undefined;
      return;
    }
    try {
      await this.member.commit({
        offsets: [{ topic: this.topicName, partition, offset: c.offset, leaderEpoch: c.leaderEpoch }],
      });
      state.committed = c.offset;
      state.resumeFrom = c.offset;
      if (state.uncommitted === c) state.uncommitted = undefined;
    } catch (err) {
      this.log.warn({ err, partition, offset: c.offset }, 'commit failed; will retry');
    }
  }

  private async flushCommits(): Promise<void> {
    for (const [p, s] of this.partitions) if (s.uncommitted !== undefined) await this.commit(p, s);
  }

  /**
   * Applies the pending assignment: revokes, then starts the added partitions at their committed offset (or
   * `from`). A partition kept across a rebalance whose committed offset changed meanwhile was owned by
   * another member in between: it is revoked and assigned again, so that the service rebuilds its state.
   * Returns false if the broker could not be asked (the assignment stays pending).
   */
  private async applyAssignment(): Promise<boolean> {
    let next: Set<number>;
    let revoked: number[];
    let added: number[];
    let starts: Map<number, { position: bigint; committed: bigint }>;
    // Until the assignment we computed for is still the latest one (another rebalance may complete meanwhile).
    do {
      if (this.pending === undefined) return true;
      const wanted = this.pending;
      next = wanted;
      const current = new Set(this.partitions.keys());
      const kept = [...wanted].filter((p) => current.has(p));
      revoked = [...current].filter((p) => !wanted.has(p));
      added = [...wanted].filter((p) => !current.has(p));
      try {
        const committed = await this.committedOffsets([...kept, ...added]);
        for (const p of kept) {
          if ((committed.get(p) ?? -1n) !== this.partitions.get(p)!.committed) {
            revoked.push(p);
            added.push(p);
          }
        }
        starts = await this.startPositions(added, committed);
      } catch (err) {
        this.log.warn({ err }, 'could not read offsets for the new assignment; retrying');
        return false;
      }
    } while (this.pending !== next);
    this.pending = undefined;
    for (const p of revoked) this.partitions.delete(p);
    if (revoked.length > 0)
      await this.callback(
        'onRevoke',
        revoked.sort((a, b) => a - b),
      );
    for (const p of added) {
      const s = starts.get(p)!;
      this.partitions.set(p, {
        position: s.position,
        resumeFrom: s.position,
        committed: s.committed,
        uncommitted: undefined,
        failures: 0,
        retryAt: 0,
      });
    }
    if (added.length > 0)
      await this.callback(
        'onAssign',
        added.sort((a, b) => a - b),
      );
    if (revoked.length > 0 || added.length > 0)
      this.log.info({ revoked, added, assigned: [...this.partitions.keys()] }, 'assignment applied');
    this.progress.notify();
    return true;
  }

  private async committedOffsets(partitions: number[]): Promise<Map<number, bigint>> {
    const out = new Map<number, bigint>();
    if (partitions.length === 0) return out;
    const res = await this.member.listCommittedOffsets({ topics: [{ topic: this.topicName, partitions }] });
    const list = res.get(this.topicName) ?? [];
    for (const p of partitions) out.set(p, list[p] ?? -1n);
    return out;
  }

  private async startPositions(
    partitions: number[],
    committed: Map<number, bigint>,
  ): Promise<Map<number, { position: bigint; committed: bigint }>> {
    const out = new Map<number, { position: bigint; committed: bigint }>();
    if (partitions.length === 0) return out;
    const { earliest, latest } = await this.bus.offsets(this.topicName);
    for (const p of partitions) {
      const c = committed.get(p) ?? -1n;
      const fallback =
        (this.opts.from ?? 'earliest') === 'earliest' ? (earliest[p] ?? 0n) : (latest[p] ?? 0n);
      out.set(p, { position: c >= 0n ? c : fallback, committed: c });
    }
    return out;
  }

  /** A position outside the log (retention deleted it, or the topic was recreated): reset like `from` says. */
  private async resetOutOfRange(partitions: number[]): Promise<void> {
    try {
      const { earliest, latest } = await this.bus.offsets(this.topicName);
      for (const p of partitions) {
        const s = this.partitions.get(p);
        if (s === undefined) continue;
        const first = earliest[p] ?? 0n;
        const end = latest[p] ?? 0n;
        if (s.position >= first && s.position <= end) continue;
        const to = s.position < first || (this.opts.from ?? 'earliest') === 'earliest' ? first : end;
        this.log.warn(
          { partition: p, position: s.position, earliest: first, end, to },
          'offset out of range; reset',
        );
        s.position = to;
        s.resumeFrom = to;
      }
    } catch (err) {
      this.log.warn({ err }, 'could not reset out-of-range offsets');
      await this.wake.wait(1_000);
    }
  }

  private async callback(name: 'onRevoke' | 'onAssign', partitions: number[]): Promise<void> {
    try {
      await this.opts[name]?.(partitions);
    } catch (err) {
      this.log.error({ err, partitions }, `${name} failed`);
    }
  }
}

/** Wakes waiters; `wait` resolves on `notify` or after its timeout, whichever comes first. */
class Signal {
  private readonly waiters = new Set<() => void>();

  wait(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  notify(): void {
    for (const w of [...this.waiters]) w();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

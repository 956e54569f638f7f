import {
  Admin,
  Consumer,
  type Message,
  type MessagesStream,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import { log } from '../core/log.ts';
import { deadLetter } from '../schemas/dlq.ts';
import type { Bus, CommitPlan, Delivered, SubscribeOptions, Subscription } from './bus.ts';
import { partitionFor } from './bus.ts';
import { summarise } from './in-process-bus.ts';
import { topics as knownTopics, type Topic } from './topic.ts';
import { isValidated } from './validated.ts';

/**
 * The distributed transport: Apache Kafka through `@platformatic/kafka` (pure TypeScript client).
 *
 * - values are JSON (UTF-8), keys the topic's key (the pair); the partition is computed here with Kafka's
 *   murmur2 (`partitionFor`), identical to the in-process bus and to Java clients;
 * - producing waits for acks from all in-sync replicas (acks = -1) with the idempotent producer;
 * - consuming: one consumer per subscription in the service's group, manual commits only, after the
 *   handler resolved, up to the handler's `CommitPlan`; records that are not JSON or fail the schema go to
 *   `dlq` with the reason and the original text;
 * - a handler error does not crash the service: after a back-off the subscription rejoins and resumes every
 *   partition from its committed offset (its partitions are revoked and assigned again, so services drop
 *   and rebuild their state, exactly as after a rebalance).
 *
 * `topicPrefix` (or `CRYPTOCAST_TOPIC_PREFIX`) namespaces topics and groups, so tests and several deployments
 * can share one broker.
 */
export interface KafkaBusOptions {
  brokers: string[];
  clientId?: string;
  topicPrefix?: string;
  /** Records handed to a handler at most, per partition. */
  maxBatch?: number;
}

type StrMessage = Message<string, string, string, string>;

/** Bytes of values per produce request at most (the broker's default limit per record batch is 1 MiB). */
const MAX_SEND_BYTES = 512 * 1024;

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly prefix: string;
  readonly brokers: string[];
  readonly clientId: string;
  readonly maxBatch: number;
  private producer: Producer<string, string, string, string> | undefined;
  private admin: Admin | undefined;
  private offsetsClient: Consumer | undefined;
  private readonly subscriptions = new Set<KafkaSubscription<unknown>>();
  private readonly created = new Set<string>();

  constructor(options: KafkaBusOptions) {
    if (options.brokers.length === 0) throw new Error('KafkaBus: no broker given');
    this.brokers = options.brokers;
    this.clientId = options.clientId ?? `cryptocast-${process.pid}`;
    this.prefix = options.topicPrefix ?? process.env.CRYPTOCAST_TOPIC_PREFIX ?? '';
    this.maxBatch = options.maxBatch ?? 5_000;
  }

  /** `kafka://host:port[,host:port]`. */
  static connect(url: string, options: Partial<KafkaBusOptions> = {}): KafkaBus {
    const m = /^kafka:\/\/(.+)$/.exec(url);
    if (m === null) throw new Error(`not a Kafka URL: ${url} (expected kafka://host:port)`);
    const brokers = m[1]!.split(',').map((b) => (b.includes(':') ? b : `${b}:9092`));
    return new KafkaBus({ brokers, ...options });
  }

  name(topic: Topic<unknown> | string): string {
    return this.prefix + (typeof topic === 'string' ? topic : topic.name);
  }

  async ensureTopics(topics: readonly Topic<unknown>[]): Promise<void> {
    const missing = topics.filter((t) => !this.created.has(t.name));
    if (missing.length === 0) return;
    const admin = this.getAdmin();
    const existing = new Set(await admin.listTopics());
    for (const t of missing) {
      const name = this.name(t);
      if (!existing.has(name)) {
        try {
          await admin.createTopics({
            topics: [name],
            partitions: t.partitions,
            replicas: 1,
            configs: t.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
          });
          log.info({ topic: name, partitions: t.partitions }, 'created topic');
        } catch (err) {
          // Another process may have created it meanwhile (services start together): fine if it exists now.
          const now = new Set(await admin.listTopics());
          if (!now.has(name)) throw err;
        }
      }
      this.created.add(t.name);
    }
  }

  async publish<T>(topic: Topic<T>, values: readonly T[]): Promise<void> {
    if (values.length === 0) return;
    if (!this.created.has(topic.name)) await this.ensureTopics([topic as Topic<unknown>]);
    const name = this.name(topic as Topic<unknown>);
    // Produce requests are capped in size (the broker refuses record batches over ~1 MiB): send in chunks,
    // one after the other so that a partition's records keep their order.
    let messages: { topic: string; key: string; value: string; partition: number }[] = [];
    let bytes = 0;
    const send = async () => {
      try {
        await this.getProducer().send({ messages });
      } catch (err) {
        log.error({ topic: name, records: messages.length, bytes }, 'publish failed');
        throw err;
      }
      messages = [];
      bytes = 0;
    };
    for (const v of values) {
      // Values a schema produced at the boundary (validate()) are not checked twice.
      if (!isValidated(v)) {
        const r = topic.schema.safeParse(v);
        if (!r.success) throw new Error(`publish to ${topic.name}: invalid value: ${summarise(r.error)}`);
      }
      const key = topic.key(v);
      const value = JSON.stringify(v);
      messages.push({ topic: name, key, value, partition: partitionFor(key, topic.partitions) });
      bytes += value.length + key.length + 32;
      if (bytes >= MAX_SEND_BYTES) await send();
    }
    if (messages.length > 0) await send();
  }

  /** Sends raw text, unvalidated (tests use it to play a misbehaving producer). */
  async publishRaw(topic: string, key: string, value: string, partition = 0): Promise<void> {
    await this.getProducer().send({ messages: [{ topic: this.name(topic), key, value, partition }] });
  }

  async subscribe<T>(options: SubscribeOptions<T>): Promise<Subscription> {
    await this.ensureTopics([options.topic as Topic<unknown>, knownTopics.dlq as Topic<unknown>]);
    const sub = new KafkaSubscription<T>(this, options);
    this.subscriptions.add(sub as KafkaSubscription<unknown>);
    await sub.start();
    return {
      stop: async () => {
        await sub.stop();
        this.subscriptions.delete(sub as KafkaSubscription<unknown>);
      },
      caughtUp: () => sub.caughtUp(),
    };
  }

  async readTail<T>(topic: Topic<T>, perPartition: number): Promise<Delivered<T>[]> {
    await this.ensureTopics([topic as Topic<unknown>]);
    const name = this.name(topic as Topic<unknown>);
    const { earliest, latest } = await this.offsets(name);
    const wanted: { topic: string; partition: number; offset: bigint }[] = [];
    latest.forEach((end, p) => {
      const start =
        end - BigInt(perPartition) > (earliest[p] ?? 0n) ? end - BigInt(perPartition) : (earliest[p] ?? 0n);
      if (start < end) wanted.push({ topic: name, partition: p, offset: start });
    });
    if (wanted.length === 0) return [];
    const consumer = new Consumer<string, string, string, string>({
      clientId: this.clientId + '-tail',
      groupId: `${this.prefix}cryptocast-tail-${process.pid}-${Date.now()}`,
      bootstrapBrokers: this.brokers,
      deserializers: stringDeserializers,
      autocommit: false,
    });
    const out: Delivered<T>[] = [];
    try {
      const stream = await consumer.consume({
        topics: [name],
        mode: 'manual',
        offsets: wanted,
        autocommit: false,
        maxWaitTime: 100,
      });
      const remaining = new Map(wanted.map((w) => [w.partition, latest[w.partition]!]));
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (m: StrMessage) => {
          const r = parseRecord(topic, m);
          if (r.ok) out.push({ ...r.record, topic: topic.name });
          if (m.offset + 1n >= (remaining.get(m.partition) ?? 0n)) remaining.delete(m.partition);
          if (remaining.size === 0) resolve();
        });
        stream.on('error', reject);
      });
      await stream.close();
    } finally {
      await consumer.close(true).catch(() => {});
    }
    out.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : 1));
    return out;
  }

  /** Earliest and latest (high watermark) offsets per partition. */
  async offsets(name: string): Promise<{ earliest: bigint[]; latest: bigint[] }> {
    // A consumer client used only for ListOffsets requests: it never joins its group.
    this.offsetsClient ??= new Consumer({
      clientId: this.clientId + '-offsets',
      groupId: this.prefix + 'cryptocast-offsets',
      bootstrapBrokers: this.brokers,
    });
    const [e, l] = await Promise.all([
      this.offsetsClient.listOffsets({ topics: [name], timestamp: -2n }),
      this.offsetsClient.listOffsets({ topics: [name], timestamp: -1n }),
    ]);
    return { earliest: e.get(name) ?? [], latest: l.get(name) ?? [] };
  }

  async close(): Promise<void> {
    for (const s of this.subscriptions) await s.stop().catch(() => {});
    this.subscriptions.clear();
    await this.producer?.close().catch(() => {});
    await this.admin?.close().catch(() => {});
    await this.offsetsClient?.close(true).catch(() => {});
    this.offsetsClient = undefined;
    this.producer = undefined;
    this.admin = undefined;
  }

  private getProducer(): Producer<string, string, string, string> {
    this.producer ??= new Producer({
      clientId: this.clientId,
      bootstrapBrokers: this.brokers,
      serializers: stringSerializers,
      acks: -1,
      idempotent: true,
      autocreateTopics: false,
      retries: 10,
      retryDelay: 250,
    });
    return this.producer;
  }

  getAdmin(): Admin {
    this.admin ??= new Admin({ clientId: this.clientId + '-admin', bootstrapBrokers: this.brokers });
    return this.admin;
  }
}

type Parsed<T> = { ok: true; record: Delivered<T> } | { ok: false; reason: string };

function parseRecord<T>(topic: Topic<T>, m: StrMessage): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(m.value ?? '');
  } catch (e) {
    return { ok: false, reason: `not JSON: ${(e as Error).message}` };
  }
  // Plain safeParse: these values are consumed, not re-published in-process, so marking them (validate())
  // would only cost time.
  const r = topic.schema.safeParse(json);
  if (!r.success) return { ok: false, reason: summarise(r.error) };
  return {
    ok: true,
    record: {
      topic: topic.name,
      partition: m.partition,
      offset: m.offset,
      key: m.key ?? '',
      value: r.data,
      timestamp: Number(m.timestamp),
    },
  };
}

/** One group member: fetches, hands batches per partition to the handler in order, commits after. */
class KafkaSubscription<T> {
  private readonly bus: KafkaBus;
  private readonly opts: SubscribeOptions<T>;
  private consumer: Consumer<string, string, string, string> | undefined;
  private stream: MessagesStream<string, string, string, string> | undefined;
  private readonly queues = new Map<number, StrMessage[]>();
  private queued = 0;
  private assigned = new Set<number>();
  /** Next offset to deliver per partition (what has been handed to the handler, or skipped as invalid). */
  private readonly position = new Map<number, bigint>();
  private stopped = false;
  private wake: (() => void) | undefined;
  private pump: Promise<void> | undefined;
  private readonly progress = new Set<() => void>();
  private failures = 0;
  private generation = 0;

  constructor(bus: KafkaBus, opts: SubscribeOptions<T>) {
    this.bus = bus;
    this.opts = opts;
  }

  async start(): Promise<void> {
    await this.connect();
    this.pump = this.run();
  }

  private async connect(): Promise<void> {
    const gen = ++this.generation;
    const consumer = new Consumer<string, string, string, string>({
      clientId: `${this.bus.clientId}-${this.opts.service}`,
      groupId: this.bus.prefix + this.opts.group,
      bootstrapBrokers: this.bus.brokers,
      deserializers: stringDeserializers,
      autocommit: false,
      // How fast a killed member's partitions move to a live one (the broker's minimum is 6 s).
      sessionTimeout: Number(process.env.CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS ?? 10_000),
      heartbeatInterval: 1_000,
      rebalanceTimeout: 30_000,
      maxWaitTime: 50,
      retries: 10,
      retryDelay: 250,
    });
    consumer.on('consumer:group:join', (payload) => {
      if (gen !== this.generation) return;
      const mine = new Set<number>();
      for (const a of payload.assignments ?? [])
        if (a.topic === this.bus.name(this.opts.topic as Topic<unknown>))
          for (const p of a.partitions) mine.add(p);
      void this.reassign(mine);
    });
    this.consumer = consumer;
    const stream = await consumer.consume({
      topics: [this.bus.name(this.opts.topic as Topic<unknown>)],
      mode: 'committed',
      fallbackMode: this.opts.from ?? 'earliest',
      autocommit: false,
      maxWaitTime: 50,
      maxBytes: 32 * 1024 * 1024,
      maxBytesPerPartition: 8 * 1024 * 1024,
      highWaterMark: 16_384,
    });
    this.stream = stream;
    stream.on('data', (m: StrMessage) => {
      if (gen !== this.generation || !this.assigned.has(m.partition)) return;
      let q = this.queues.get(m.partition);
      if (q === undefined) {
        q = [];
        this.queues.set(m.partition, q);
      }
      q.push(m);
      this.queued++;
      if (this.queued >= this.bus.maxBatch * 4) stream.pause();
      this.wake?.();
    });
    stream.on('error', (err) => log.error({ err, service: this.opts.service }, 'kafka stream error'));
    // The join event may have fired before the listener saw it: read the assignment directly.
    const a = consumer.assignments;
    if (a !== null) {
      const mine = new Set<number>();
      for (const x of a)
        if (x.topic === this.bus.name(this.opts.topic as Topic<unknown>))
          for (const p of x.partitions) mine.add(p);
      await this.reassign(mine);
    }
  }

  private async reassign(mine: Set<number>): Promise<void> {
    const revoked = [...this.assigned].filter((p) => !mine.has(p));
    const added = [...mine].filter((p) => !this.assigned.has(p));
    if (revoked.length === 0 && added.length === 0) return;
    for (const p of revoked) {
      this.queued -= this.queues.get(p)?.length ?? 0;
      this.queues.delete(p);
      this.position.delete(p);
    }
    this.assigned = new Set(mine);
    if (revoked.length > 0) await this.opts.onRevoke?.(revoked);
    if (added.length > 0) {
      await this.initPositions(added);
      await this.opts.onAssign?.(added);
    }
    this.wake?.();
  }

  /** Where a newly assigned partition starts: its committed offset, or the log start / end. */
  private async initPositions(partitions: number[]): Promise<void> {
    const name = this.bus.name(this.opts.topic as Topic<unknown>);
    try {
      const committed = await this.consumer!.listCommittedOffsets({ topics: [{ topic: name, partitions }] });
      const { earliest, latest } = await this.bus.offsets(name);
      const c = committed.get(name) ?? [];
      for (const p of partitions) {
        const off = c[p];
        const fallback =
          (this.opts.from ?? 'earliest') === 'earliest' ? (earliest[p] ?? 0n) : (latest[p] ?? 0n);
        this.position.set(p, off !== undefined && off >= 0n ? off : fallback);
      }
    } catch (err) {
      log.warn({ err, service: this.opts.service }, 'could not read committed offsets');
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const p = this.nextPartition();
      if (p === undefined) {
        if (this.stream?.isPaused()) this.stream.resume();
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, 200);
        });
        this.wake = undefined;
        continue;
      }
      const q = this.queues.get(p)!;
      const msgs = q.splice(0, this.bus.maxBatch);
      this.queued -= msgs.length;
      try {
        await this.handle(p, msgs);
        this.failures = 0;
      } catch (err) {
        this.failures++;
        log.error(
          { err, service: this.opts.service, partition: p },
          'handler failed; resuming from committed offsets',
        );
        await this.rewind();
      }
      if (this.queued < this.bus.maxBatch && this.stream?.isPaused()) this.stream.resume();
      for (const r of this.progress) r();
    }
  }

  private nextPartition(): number | undefined {
    let best: number | undefined;
    let bestLen = 0;
    for (const [p, q] of this.queues) if (q.length > bestLen) [best, bestLen] = [p, q.length];
    return best;
  }

  private async handle(partition: number, msgs: StrMessage[]): Promise<void> {
    const valid: Delivered<T>[] = [];
    const dead = [];
    for (const m of msgs) {
      const r = parseRecord(this.opts.topic, m);
      if (r.ok) valid.push(r.record);
      else
        dead.push(
          deadLetter({
            service: this.opts.service,
            origin: this.opts.topic.name,
            kind: 'invalid',
            reason: r.reason,
            payload: m.value ?? '',
            key: m.key ?? undefined,
            partition: m.partition,
            offset: m.offset,
          }),
        );
    }
    if (dead.length > 0) {
      log.warn(
        { service: this.opts.service, count: dead.length, reason: dead[0]!.reason },
        'invalid records to dlq',
      );
      await this.bus.publish(knownTopics.dlq, dead);
    }
    let plan: CommitPlan;
    if (valid.length > 0) plan = await this.opts.handle({ partition, records: valid });
    const last = msgs[msgs.length - 1]!;
    const next = last.offset + 1n;
    const safe = plan?.get(partition);
    const commitTo = safe !== undefined && safe < next ? safe : next;
    this.position.set(partition, next);
    if (!this.assigned.has(partition)) return;
    try {
      await this.consumer!.commit({
        offsets: [{ topic: last.topic, partition, offset: commitTo, leaderEpoch: last.leaderEpoch }],
      });
    } catch (err) {
      // A rebalance can invalidate the generation: the new owner resumes from the previous commit.
      log.warn({ err, service: this.opts.service, partition }, 'commit failed');
    }
  }

  /** After a handler error: revoke everything, reconnect, resume from committed offsets. */
  private async rewind(): Promise<void> {
    await new Promise((r) => setTimeout(r, Math.min(10_000, 100 * 2 ** this.failures)));
    const all = [...this.assigned];
    this.queues.clear();
    this.queued = 0;
    this.assigned.clear();
    this.position.clear();
    if (all.length > 0) await this.opts.onRevoke?.(all);
    await this.disconnect();
    if (!this.stopped) await this.connect();
  }

  private async disconnect(): Promise<void> {
    this.generation++;
    const { stream, consumer } = this;
    this.stream = undefined;
    this.consumer = undefined;
    await stream?.close().catch(() => {});
    await consumer?.close(true).catch(() => {});
  }

  async caughtUp(): Promise<void> {
    const name = this.bus.name(this.opts.topic as Topic<unknown>);
    const { latest } = await this.bus.offsets(name);
    for (let round = 0; ; round++) {
      if (this.stopped) return;
      if (round % 10 === 9) await this.resync(name);
      let done = this.assigned.size > 0;
      for (const p of this.assigned) {
        const pos = this.position.get(p);
        if (pos === undefined || pos < (latest[p] ?? 0n)) done = false;
      }
      if (done) return;
      await new Promise<void>((r) => {
        this.progress.add(r);
        setTimeout(r, 100);
      });
      this.progress.clear();
    }
  }

  /**
   * Belt and braces for long waits: re-reads the group assignment from the client (in case a rebalance event was
   * missed) and retries the start position of assigned partitions that have none yet.
   */
  private async resync(name: string): Promise<void> {
    const a = this.consumer?.assignments;
    if (a) {
      const mine = new Set<number>();
      for (const x of a) if (x.topic === name) for (const p of x.partitions) mine.add(p);
      await this.reassign(mine);
    }
    const missing = [...this.assigned].filter((p) => !this.position.has(p));
    if (missing.length > 0) await this.initPositions(missing);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    await this.pump;
    const revoked = [...this.assigned];
    this.assigned.clear();
    await this.disconnect();
    if (revoked.length > 0) await this.opts.onRevoke?.(revoked);
  }
}

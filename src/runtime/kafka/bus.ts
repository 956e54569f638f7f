import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import {
  Admin,
  ConfigResourceTypes,
  Consumer,
  findErrorBy,
  IncrementalAlterConfigOperationTypes,
  ListOffsetTimestamps,
  ProduceAcks,
  Producer,
} from '@platformatic/kafka';
import { setting } from '../../config/env.ts';
import { describeKafkaSecurity, type KafkaSecurity, kafkaSecurity } from '../../config/kafka-security.ts';
import { reportDependency, untilAvailable } from '../../core/dependency.ts';
import { CryptocastError, ERR } from '../../core/errors.ts';
import { type Logger, log as rootLog } from '../../core/log.ts';
import { orAbort } from '../../core/or-abort.ts';
import { safeParse } from '../../schemas/compiled-check.ts';
import { topics as knownTopics } from '../../schemas/topics.ts';
import {
  type Bus,
  checkedPageSize,
  type Delivered,
  partitionFor,
  type ReadPagesOptions,
  type ReadTailOptions,
  type SubscribeOptions,
  type Subscription,
} from '../bus.ts';
import { kafkaBrokers } from '../bus-url.ts';
import { summarise } from '../in-process-bus.ts';
import { InvalidValueError } from '../poison.ts';
import type { Topic } from '../topic.ts';
import { isValidated } from '../validated.ts';
import {
  FETCH_MAX_WAIT_MS,
  ISOLATION,
  MAX_PARTITION_BATCH_BYTES,
  MAX_REQUEST_BYTES,
  type RawConsumer,
  RECORD_OVERHEAD_BYTES,
} from './limits.ts';
import { type Fetched, fetchRecords, keyBuffer, parseRecord } from './records.ts';
import { RefusalGrace } from './refusal-grace.ts';
import { saslWanted, securityRefusal } from './refusals.ts';
import { KafkaSubscription, sleep } from './subscription.ts';

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
   * `retention.ms` of every topic with time retention it creates (`topics create --retention`), in place of the
   * topic's own (`Topic.retentionMs`) or the broker's default.
   */
  retentionMs?: number;
  /**
   * Values of topics with a binary codec (`trades`): `binary` (default) or `json` (readable with any Kafka tool;
   * env CRYPTOCAST_KAFKA_ENCODING). Consumers read both either way.
   */
  encoding?: 'binary' | 'json';
  /** TLS and SASL of every client (default: from the environment, `kafkaSecurity()`: CRYPTOCAST_KAFKA_TLS, …). */
  security?: KafkaSecurity;
  /** Called once when a running client is refused for good (see `KafkaBus.refused`). */
  onRefused?: (err: CryptocastError) => void;
  /**
   * How long a path of a running client may be refused with no success between before the refusal is for good
   * (`RefusalGrace`; default CRYPTOCAST_KAFKA_REFUSED_FOR_MS, else 60 s).
   */
  refusedForMs?: number;
  /** The clock of `refusedForMs` (tests). */
  now?: () => number;
}

/** How long a running client may be refused with no success between before the process ends (`KafkaBus.refused`). */
export const REFUSED_FOR_MS = 60_000;

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly brokers: string[];
  readonly clientId: string;
  readonly prefix: string;
  readonly maxBatch: number;
  readonly sessionTimeoutMs: number;
  readonly replicationFactor: number;
  readonly retentionMs: number | undefined;
  readonly encoding: 'binary' | 'json';
  readonly log: Logger;
  readonly security: KafkaSecurity;
  private readonly onRefused: ((err: CryptocastError) => void) | undefined;
  /** The refusals of this bus's running clients, per path (`refused`). */
  private readonly grace: RefusalGrace;
  /**
   * Something of this bus was served once: from then on a refusal is a running client's (`refused`: a grace), before
   * it a setting to fix (thrown at once: a wrong password ends a service as it starts).
   */
  private served = false;
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
    this.retentionMs = options.retentionMs;
    this.log = options.logger ?? rootLog.child({ component: 'kafka-bus' });
    this.encoding = options.encoding ?? setting('CRYPTOCAST_KAFKA_ENCODING') ?? 'binary';
    this.security = options.security ?? kafkaSecurity();
    this.onRefused = options.onRefused;
    this.grace = new RefusalGrace(
      options.refusedForMs ?? setting('CRYPTOCAST_KAFKA_REFUSED_FOR_MS') ?? REFUSED_FOR_MS,
      options.now,
    );
    if (this.security.sasl?.mechanism === 'PLAIN' && this.security.tls === undefined)
      this.log.warn(
        { brokers: this.brokers },
        'Kafka SASL PLAIN without TLS: the password crosses the network in clear (set CRYPTOCAST_KAFKA_TLS=true, or use SCRAM)',
      );
    else if (this.security.tls !== undefined || this.security.sasl !== undefined)
      this.log.info(
        { brokers: this.brokers, security: describeKafkaSecurity(this.security) },
        'kafka security',
      );
  }

  /**
   * The connection options every client of this bus is built with (producer, admin, group members, raw fetchers): TLS
   * with the server name sent (SNI, which Confluent Cloud and other shared endpoints route by) and SASL.
   */
  connectionOptions(): { tls?: TlsConnectionOptions; tlsServerName?: boolean; sasl?: KafkaSecurity['sasl'] } {
    const { tls, sasl } = this.security;
    return {
      ...(tls === undefined ? {} : { tls: { ...tls }, tlsServerName: true }),
      ...(sasl === undefined ? {} : { sasl: { ...sasl } }),
    };
  }

  /** `kafka://host:port[,host:port]` (port 9092 when left out). */
  static connect(url: string, options: Partial<KafkaBusOptions> = {}): KafkaBus {
    return new KafkaBus({ ...options, brokers: kafkaBrokers(url) });
  }

  /** The topic's name on the broker (with the prefix). */
  name(topic: Topic<unknown> | string): string {
    return this.prefix + (typeof topic === 'string' ? topic : topic.name);
  }

  /** Ended by `close()`: whatever waits for the broker gives up. */
  private readonly closing = new AbortController();

  /**
   * Runs a broker operation until the broker answers (see `untilAvailable`); misconfiguration fails at once, refused
   * credentials and a TLS mismatch as the catalogue's CC_ERR_BUS_AUTH and CC_ERR_BUS_TLS (`securityRefusal`) — at once
   * before anything of the bus was served (a setting to fix), else after the grace of `refused` (waited for meanwhile,
   * /ready saying it).
   */
  private async waitForBroker<T>(attempt: () => Promise<T>, signal = this.closing.signal): Promise<T> {
    const asked = async () => {
      try {
        return await attempt();
      } catch (err) {
        // Not the broker's answer to this client (readPages' onPage failed, a topic's partition count): as it is.
        if (err instanceof PermanentKafkaError || err instanceof PartitionCountError) throw err;
        // A connection closed by a broker that answers may be a SASL listener reached without SASL (`saslWanted`).
        const refusal = (await saslWanted(err, this.brokers, this.security)) ?? this.refusal(err);
        if (refusal === undefined) throw err;
        if (this.served) this.refused('broker', refusal);
        throw refusal;
      }
    };
    const v = await untilAvailable('kafka', asked, {
      signal,
      log: this.log,
      permanent: (err) =>
        err instanceof PartitionCountError ||
        err instanceof PermanentKafkaError ||
        this.closed ||
        refusedForGood(err) ||
        (isSecurityRefusal(err) && (!this.served || this.grace.forGood() !== undefined)),
    });
    this.accepted('broker');
    return v;
  }

  /** `err` as the security setting or permission it shows wrong (see `securityRefusal`), or undefined. */
  refusal(err: unknown): CryptocastError | undefined {
    if (isSecurityRefusal(err)) return err;
    return securityRefusal(err, this.brokers, this.security);
  }

  /**
   * The one place where a running client of this bus (`path`: its publishes, its broker waits, a subscription's loop)
   * hands a refusal: the credentials rotated or revoked on the broker, a permission taken away, its certificate
   * replaced — or a broker of a rolling restart, a certificate swapped broker by broker, which clear by themselves.
   * Said on /ready at once and once in the log; the path retries. If it is refused again once
   * CRYPTOCAST_KAFKA_REFUSED_FOR_MS (60 s) have passed since its first refusal with no success of it between
   * (`accepted`), the refusal is for good: said once in the log, and `onRefused` is called once (the binary: the
   * process ends with it, exit 2, so that Kubernetes restarts the pod with the Secret as it is now); broker waits then
   * give up with it. Returns whether it is for good. Ending at the first refusal restarted every pod at once.
   */
  refused(path: string, err: CryptocastError): boolean {
    reportDependency('kafka', err, this.log);
    const judged = this.grace.refused(path, err);
    if (judged === 'first')
      this.log.error(
        { code: err.code, reason: err.message, path, endsAfterMs: this.grace.graceMs },
        'Kafka refused this client: retrying; the process ends if it is still refused then',
      );
    if (judged !== 'for-good') return false;
    if (this.refusedWith === undefined) {
      this.refusedWith = err;
      this.log.error(
        { code: err.code, reason: err.message, path },
        'Kafka refused this client for good: waiting does not mend it',
      );
      this.onRefused?.(err);
    }
    return true;
  }

  /** The refusal that was for good (`refused`), once said. */
  private refusedWith: CryptocastError | undefined;

  /** `path` of a running client was served (a publish, a fetch, a broker wait): a refusal of it has cleared. */
  accepted(path: string): void {
    this.served = true;
    const cleared = this.grace.accepted(path);
    if (cleared) this.log.info({ path }, 'Kafka accepts this client again');
    // /ready and the log: up, unless another path is still refused (then it stays down, said once). The one place a
    // served path reports: a publish reporting up before this said "available again" and "unavailable" on every
    // publish while a subscription was refused (h128's review).
    reportDependency('kafka', this.grace.refusal(), this.log);
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
          configs: topicConfigs(t, this.replicationFactor, this.retentionMs),
        });
        this.log.info(
          { topic: name, partitions: t.partitions, compacted: t.compacted ?? false },
          'created topic',
        );
      } catch (err) {
        // Services start together and race to create the same topics: someone else winning is fine.
        if (findErrorBy(err as Error, 'apiId', 'TOPIC_ALREADY_EXISTS')) continue;
        if (findErrorBy(err as Error, 'apiId', 'INVALID_REPLICATION_FACTOR')) await this.tooFewBrokers(err);
        throw err;
      }
    }
    await this.awaitTopics(wanted);
    for (const t of wanted) this.ensured.add(t.name);
  }

  /**
   * Raises `retention.ms` of each of `topics` (existing ones) that keeps less than `minimumMs` — its own setting or the
   * broker's default — to `toMs`; returns the ones raised with what they kept. `topics create` runs it on every install
   * and upgrade: a topic created before cryptocast gave it its retention keeps the broker's default (a week) for good.
   */
  raiseRetention(
    topics: readonly Topic<unknown>[],
    minimumMs: number,
    toMs: number,
  ): Promise<{ topic: string; fromMs: number }[]> {
    return this.waitForBroker(async () => {
      const admin = this.getAdmin();
      const described = await admin.describeConfigs({
        resources: topics.map((t) => ({
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: this.name(t),
          configurationKeys: ['retention.ms'],
        })),
      });
      const raised: { topic: string; fromMs: number }[] = [];
      for (const d of described) {
        const value = d.configs.find((c) => c.name === 'retention.ms')?.value;
        // -1 is "no time limit".
        const keptMs = value === undefined || value === null ? Number.NaN : Number(value);
        if (keptMs === -1 || keptMs >= minimumMs) continue;
        raised.push({ topic: d.resourceName, fromMs: keptMs });
      }
      if (raised.length === 0) return raised;
      await admin.incrementalAlterConfigs({
        resources: raised.map((r) => ({
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: r.topic,
          configs: [
            {
              name: 'retention.ms',
              value: String(toMs),
              configOperation: IncrementalAlterConfigOperationTypes.SET,
            },
          ],
        })),
      });
      return raised;
    });
  }

  /**
   * A replication factor refused by the broker: permanent when the cluster has brokers, but fewer than the factor (an
   * operator must change a setting); a broker shutting down or starting also refuses it, with 0 brokers registered,
   * and that passes (the caller waits and retries).
   */
  private async tooFewBrokers(err: unknown): Promise<void> {
    const brokers = await this.getMetaClient()
      .metadata({ topics: [], forceUpdate: true })
      .then((md) => md.brokers.size)
      .catch(() => 0);
    if (brokers > 0 && brokers < this.replicationFactor)
      throw new PermanentKafkaError(
        `replication factor ${this.replicationFactor} is above the ${brokers} broker(s) of the cluster`,
        { cause: err },
      );
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
        // A refusal is the broker wait's to judge (`waitForBroker`), not a topic still being made.
        if (err instanceof PartitionCountError || this.refusal(err) !== undefined) throw err;
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
   * written and the call rejects: a caller that retries may publish some values twice (at-least-once; the producer's
   * idempotence dedupes only the client's resends of one request), a key's earlier records then after its later
   * ones, which the consumers' idempotence absorbs (docs/architecture.md: why no stage is harmed).
   */
  async publish<T>(topic: Topic<T>, values: readonly T[]): Promise<void> {
    if (this.closed) throw new Error('KafkaBus is closed');
    if (values.length === 0) return;
    for (const v of values) {
      // Values a schema produced at the boundary (validate()) are not checked twice.
      if (isValidated(v)) continue;
      const r = safeParse(topic.schema, v);
      if (!r.success)
        throw new InvalidValueError(`publish to ${topic.name}: invalid value: ${summarise(r.error)}`);
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
        this.accepted('publish');
      } catch (err) {
        const refusal = this.refusal(err);
        if (refusal !== undefined) {
          // Thrown as any failed publish is (its callers retry: a handler's chunk is read again, publishDurably waits),
          // and for good only after the grace (`refused`).
          if (this.served) this.refused('publish', refusal);
          throw refusal;
        }
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
      readToEnd: () => sub.readToEnd(),
      lag: () => sub.lag(),
    };
  }

  /** A read creates nothing: a topic that does not exist yet has an empty tail (`dlq list` where nothing was ever dead-lettered). */
  async readTail<T>(
    topic: Topic<T>,
    perPartition: number,
    options: ReadTailOptions = {},
  ): Promise<Delivered<T>[]> {
    const { signal } = options;
    if (signal === undefined)
      return this.waitForBroker(() => this.readTailOnce(topic, perPartition, this.closing.signal));
    signal.throwIfAborted();
    // The signal also ends the waiting between attempts.
    const gaveUp = AbortSignal.any([this.closing.signal, signal]);
    return orAbort(
      this.waitForBroker(() => this.readTailOnce(topic, perPartition, gaveUp), gaveUp),
      signal,
    );
  }

  /** `gaveUp` ends the wait for a partition's leader (see `readRounds`). */
  private async readTailOnce<T>(
    topic: Topic<T>,
    perPartition: number,
    gaveUp: AbortSignal,
  ): Promise<Delivered<T>[]> {
    const name = this.name(topic as Topic<unknown>);
    if (!this.ensured.has(topic.name) && !(await this.getAdmin().listTopics()).includes(name)) return [];
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
      for await (const fetched of readRounds(client, name, positions, gaveUp)) {
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

  async readPages<T>(
    topic: Topic<T>,
    onPage: (page: readonly Delivered<T>[]) => void | Promise<void>,
    options: ReadPagesOptions = {},
  ): Promise<void> {
    const pageSize = checkedPageSize(options.pageSize);
    const { signal } = options;
    signal?.throwIfAborted();
    // Where the read is, kept across attempts: after a broker outage it goes on from there (no page handed twice).
    const read: PagedRead = {};
    const gaveUp =
      signal === undefined ? this.closing.signal : AbortSignal.any([this.closing.signal, signal]);
    const attempt = () =>
      this.readPagesOnce(topic, onPage, pageSize, read, signal, gaveUp, options.since, options.until);
    try {
      if (signal === undefined) return await this.waitForBroker(attempt);
      return await orAbort(this.waitForBroker(attempt, gaveUp), signal);
    } catch (err) {
      // The caller's own failure is not the broker's: not retried, and rethrown as it was.
      throw err instanceof OnPageFailed ? err.cause : err;
    }
  }

  private async readPagesOnce<T>(
    topic: Topic<T>,
    onPage: (page: readonly Delivered<T>[]) => void | Promise<void>,
    pageSize: number,
    read: PagedRead,
    signal: AbortSignal | undefined,
    gaveUp: AbortSignal,
    since: number | undefined,
    until: number | undefined,
  ): Promise<void> {
    const name = this.name(topic as Topic<unknown>);
    if (read.positions === undefined) {
      if (!this.ensured.has(topic.name) && !(await this.getAdmin().listTopics()).includes(name)) return;
      const { earliest, latest } = await this.offsets(name);
      const atSince = since === undefined ? undefined : await this.offsetsAt(name, since);
      // The first record after `until` ends the partition's read (-1: none after it, read to its end).
      const afterUntil = until === undefined ? undefined : await this.offsetsAt(name, until + 1);
      const ends = latest.map((end, p) => {
        const at = afterUntil?.[p] ?? -1n;
        return at >= 0n && at < end ? at : end;
      });
      const positions = new Map<number, bigint>();
      ends.forEach((end, p) => {
        let first = earliest[p] ?? 0n;
        if (atSince !== undefined) {
          // No record at or after `since` (-1): nothing of the partition is read.
          const at = atSince[p] ?? -1n;
          first = at < 0n ? end : at > first ? at : first;
        }
        if (first < end) positions.set(p, first);
      });
      // The ends as of this call: what is appended while the pages are handed is not read.
      read.ends = ends;
      read.positions = positions;
    }
    const { positions, ends } = read as Required<PagedRead>;
    if (positions.size === 0) return;
    const hand = async (page: Delivered<T>[]) => {
      try {
        await onPage(page);
      } catch (err) {
        throw new OnPageFailed(err);
      }
      signal?.throwIfAborted();
    };
    // Its own client, as readTail's.
    const client = this.newRawClient('pages');
    let invalid = 0;
    try {
      for await (const fetched of readRounds(client, name, positions, gaveUp)) {
        for (const [p, f] of fetched) {
          const end = ends[p]!;
          let page: Delivered<T>[] = [];
          for (const r of f.records) {
            if (r.offset >= end) break;
            const parsed = parseRecord(topic, p, r);
            if (parsed.ok) page.push(parsed.record);
            else invalid++;
            if (page.length === pageSize) {
              await hand(page);
              page = [];
              positions.set(p, r.offset + 1n);
            }
          }
          if (page.length > 0) await hand(page);
          if (f.next >= end) positions.delete(p);
          else positions.set(p, f.next);
        }
      }
    } finally {
      await client.close().catch(() => {});
    }
    if (invalid > 0) this.log.warn({ topic: name, invalid }, 'readPages skipped invalid records');
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

  /** Per partition, the first offset whose record's timestamp is at or after `epochMs` (-1 where none is). */
  private async offsetsAt(name: string, epochMs: number): Promise<bigint[]> {
    const at = await this.getMetaClient().listOffsets({
      topics: [name],
      timestamp: BigInt(Math.floor(epochMs)),
      isolationLevel: ISOLATION,
    });
    return at.get(name) ?? [];
  }

  async groupLag(
    topic: Topic<unknown>,
    group: string,
    options: ReadTailOptions = {},
  ): Promise<number | undefined> {
    const { signal } = options;
    if (signal === undefined) return this.groupLagOnce(topic, group);
    signal.throwIfAborted();
    // A broker that stops answering without closing the connection leaves the client's request waiting for good
    // (measured: still waiting after 120 s behind a silent proxy): the signal is the caller's only bound.
    return orAbort(this.groupLagOnce(topic, group), signal);
  }

  private async groupLagOnce(topic: Topic<unknown>, group: string): Promise<number | undefined> {
    const name = this.name(topic);
    let groups: Awaited<ReturnType<Admin['listConsumerGroupOffsets']>>;
    let latest: bigint[];
    try {
      [groups, { latest }] = await Promise.all([
        this.getAdmin().listConsumerGroupOffsets({ groups: [this.prefix + group] }),
        this.offsets(name),
      ]);
    } catch (err) {
      // Asked again by its callers (the monitor's and the API's lag, each time): a path of its own for the grace.
      const refusal = this.refusal(err);
      if (refusal === undefined) throw err;
      if (this.served) this.refused('lag', refusal);
      throw refusal;
    }
    this.accepted('lag');
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
      ...this.connectionOptions(),
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
        ...this.connectionOptions(),
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
      this.admin = new Admin({
        ...this.connectionOptions(),
        clientId: `${this.clientId}-admin`,
        bootstrapBrokers: this.brokers,
      });
      this.admin.on('error', (err) => this.log.warn({ err }, 'kafka admin error'));
    }
    return this.admin;
  }
}

class PartitionCountError extends Error {}

/** CC_ERR_BUS_AUTH or CC_ERR_BUS_TLS, as `securityRefusal` or `saslWanted` named it. */
function isSecurityRefusal(err: unknown): err is CryptocastError {
  return err instanceof CryptocastError && (err.code === ERR.BUS_AUTH.code || err.code === ERR.BUS_TLS.code);
}

/** A broker refusal that waiting does not mend (see `tooFewBrokers`). */
class PermanentKafkaError extends Error {}

/** readPages' `onPage` threw: the caller's failure, not retried as the broker's (its `cause` is rethrown). */
class OnPageFailed extends PermanentKafkaError {
  constructor(cause: unknown) {
    super('readPages: onPage failed', { cause });
  }
}

/**
 * The Fetch rounds of a read up to fixed ends: each yields what came back; the caller takes it and moves `positions`
 * on (deleting a partition read to its end). Ends once `positions` is empty, or after 3 rounds in a row that fetched
 * every partition left and brought nothing: below the end but nothing comes back, the rest was removed (compaction,
 * retention). A round that skipped a partition without a leader (an election, its broker away) does not count towards
 * that: the records are still there, and the read waits for the leader (a round without a request takes the fetch's
 * long-poll time) until `gaveUp` aborts — the bus closing or the caller's signal, the bounds of a wait for the broker.
 */
async function* readRounds(
  client: RawConsumer,
  name: string,
  positions: Map<number, bigint>,
  gaveUp: AbortSignal,
): AsyncGenerator<Map<number, Fetched>> {
  let idleRounds = 0;
  while (positions.size > 0) {
    gaveUp.throwIfAborted();
    const { fetched, leaderless } = await fetchRecords(client, name, positions, FETCH_MAX_WAIT_MS);
    idleRounds = fetched.size === 0 && leaderless.length === 0 ? idleRounds + 1 : 0;
    if (idleRounds >= 3) return;
    yield fetched;
  }
}

/** Where a readPages is: the end of each partition as of the call, and the next offset to read of those not done. */
interface PagedRead {
  ends?: bigint[];
  positions?: Map<number, bigint>;
}

/**
 * Broker answers that waiting does not mend: a partition count or a topic config the cluster's policy refuses (a
 * replication factor above the broker count: `tooFewBrokers`, since a broker going down refuses it too). The caller
 * fails at once with the broker's reason (an operator must change a setting), instead of a service that stays not-ready
 * for ever. Refused credentials, permissions and TLS mismatches are `securityRefusal`'s (found nested in a connection
 * failure too), and a running client's are given a grace (`KafkaBus.refused`).
 */
const REFUSED_FOR_GOOD = ['INVALID_PARTITIONS', 'POLICY_VIOLATION'] as const;

function refusedForGood(err: unknown): boolean {
  return err instanceof Error && REFUSED_FOR_GOOD.some((code) => findErrorBy(err, 'apiId', code) !== null);
}

/**
 * The configs a topic is created with: compaction where the topic asks for it (and its `segment.ms`), else the retention
 * given (`topics create --retention`) or the topic's own (the topics a restarted predictor reads back keep more than a broker's week), and with replicas, the in-sync replicas
 * a write needs (one less than the factor): `acks=all` waits only for the replicas in sync, and the broker's default
 * of 1 lets that be the leader alone, so a record acknowledged just before the leader fails could be lost.
 */
export function topicConfigs(
  t: Pick<Topic<unknown>, 'compacted' | 'retentionMs' | 'segmentMs'>,
  replicationFactor: number,
  retentionMs?: number,
): { name: string; value: string }[] {
  const configs: { name: string; value: string }[] = [];
  if (t.compacted) configs.push({ name: 'cleanup.policy', value: 'compact' });
  // Compaction keeps the latest per key, not a time: no retention.ms there.
  else if ((retentionMs ?? t.retentionMs) !== undefined)
    configs.push({ name: 'retention.ms', value: String(retentionMs ?? t.retentionMs) });
  if (t.segmentMs !== undefined) configs.push({ name: 'segment.ms', value: String(t.segmentMs) });
  if (replicationFactor > 1)
    configs.push({ name: 'min.insync.replicas', value: String(replicationFactor - 1) });
  return configs;
}

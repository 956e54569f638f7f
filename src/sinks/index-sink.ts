import { CryptocastError } from '../core/errors.ts';
import { faultPoint } from '../core/faults.ts';
import { type Logger, log as rootLog } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { dependency } from '../core/readiness.ts';
import type { Batch, Bus, Subscription } from '../runtime/bus.ts';
import type { Topic } from '../runtime/topic.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import type { Prediction } from '../schemas/prediction.ts';
import type { PredictionError } from '../schemas/prediction-error.ts';
import { topics } from '../schemas/topics.ts';
import { type DocumentIndex, type IndexOp, retryableRefusal } from './opensearch.ts';
import {
  DEFAULT_RETENTION_DAYS,
  errorDocId,
  errorDocVersion,
  errorsIndex,
  errorsIndexTemplate,
  errorsIsmPolicy,
  predictionDocId,
  predictionsIndex,
  predictionsIndexTemplate,
  predictionsIsmPolicy,
} from './predictions-index.ts';

/** One topic indexed: where each record goes (index by month, id by identity), and its template and policy. */
export interface IndexedStream<T> {
  name: 'predictions' | 'errors';
  topic: Topic<T>;
  index(prefix: string, value: T): string;
  id(value: T): string;
  /** The record's rank among the records of its id (`IndexOp.version`); absent: the last one read wins. */
  version?(value: T): number;
  template(prefix: string): object;
  policy(prefix: string, retentionDays: number): object;
}

export const PREDICTIONS_STREAM: IndexedStream<Prediction> = {
  name: 'predictions',
  topic: topics.predictions,
  index: predictionsIndex,
  id: predictionDocId,
  template: predictionsIndexTemplate,
  policy: predictionsIsmPolicy,
};

export const ERRORS_STREAM: IndexedStream<PredictionError> = {
  name: 'errors',
  topic: topics.predictionErrors,
  index: errorsIndex,
  id: errorDocId,
  version: errorDocVersion,
  template: errorsIndexTemplate,
  policy: errorsIsmPolicy,
};

export interface IndexSinkOptions {
  /** Index and template name prefix (default `cryptocast-`). */
  prefix?: string;
  /** Consumer group prefix (default `index-sink`): `<group>.predictions` and `<group>.predictions.errors`. */
  group?: string;
  /** What is indexed (default: predictions and their error records). */
  streams?: readonly IndexedStream<never>[];
  retentionDays?: number;
  /** Back-off between attempts: from `initialMs`, doubling, at most `maxMs` (defaults 200 ms, 30 s). */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * How long one batch is retried inside the handler before it is handed back to the bus (which re-reads it from
   * the last commit after its own back-off, and lets a rebalance through meanwhile). Default 60 s. The retries end
   * sooner when the partition is lost (`Batch.signal`: a rebalance that would otherwise time out, a stop).
   */
  maxHoldMs?: number;
  /** Waits (injectable for tests); resolves early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  logger?: Logger;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * `predictions` and `predictions.errors` → OpenSearch, for dashboards (`cryptocast service index-sink`).
 *
 * Each batch of a partition becomes one bulk request of `index` operations whose ids are the records' own identity
 * (a prediction: pair, windowEnd, model name and version; an error record: the monitor's key, which adds the
 * exchange) in the index of the prediction's month. An error record's document is versioned by its rank
 * (`errorDocVersion`, external versioning): a time-out read after its prediction's score leaves the score indexed —
 * across batches, retries and sinks, where the last write would otherwise win. The batch's offsets
 * are committed only once every document of it is durable in OpenSearch: a crash re-reads the uncommitted batch and
 * writes the same documents again onto themselves — nothing lost, nothing doubled.
 *
 * While OpenSearch is down or overloaded (connection errors, 429, 5xx, per request or per document) the batch is
 * retried with exponential back-off and nothing is committed; the partition reads no further meanwhile
 * (back-pressure: the backlog waits in Kafka, not in memory); so is a document refused by a block on its index or the
 * cluster (a write block, read-only: a 403 `cluster_block_exception`, lifted later). A document OpenSearch refuses for
 * itself (another 4xx: a mapping conflict) would be refused forever: it goes to `dlq` with the reason, and the rest of
 * the batch carries on.
 */
export class IndexSink {
  readonly stats = {
    received: 0,
    indexed: 0,
    deadLettered: 0,
    /** Bulk attempts that failed as a whole or left documents to retry. */
    retries: 0,
    bulkRequests: 0,
    /** Records not written: the index holds a higher-ranked record of their id (a time-out after its score). */
    outranked: 0,
  };
  private readonly bus: Bus;
  private readonly index: DocumentIndex;
  private readonly prefix: string;
  private readonly group: string;
  private readonly retentionDays: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly maxHoldMs: number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly log: Logger;
  private readonly streams: readonly IndexedStream<never>[];
  private readonly stopping = new AbortController();
  private readonly subscriptions: Subscription[] = [];
  private lastWarnAt = 0;

  constructor(bus: Bus, index: DocumentIndex, opts: IndexSinkOptions = {}) {
    this.bus = bus;
    this.index = index;
    this.prefix = opts.prefix ?? 'cryptocast-';
    this.group = opts.group ?? 'index-sink';
    this.retentionDays = opts.retentionDays ?? DEFAULT_RETENTION_DAYS;
    this.backoff = opts.backoff ?? { initialMs: 200, maxMs: 30_000 };
    this.maxHoldMs = opts.maxHoldMs ?? 60_000;
    this.sleep = opts.sleep ?? defaultSleep;
    this.streams = opts.streams ?? [
      PREDICTIONS_STREAM as IndexedStream<never>,
      ERRORS_STREAM as IndexedStream<never>,
    ];
    this.log = (opts.logger ?? rootLog).child({ service: 'index-sink' });
    // Only the service awaits `failed`: elsewhere its rejection must not count as unhandled.
    this.failed.catch(() => {});
  }

  /** Installs the templates and the policies (retrying while OpenSearch is unreachable), then consumes. */
  async start(): Promise<void> {
    for (const stream of this.streams)
      await this.retry(`setup of ${stream.name}`, () =>
        this.index.setup({
          templateName: `${this.prefix}${stream.name}`,
          template: stream.template(this.prefix),
          policyName: `${this.prefix}${stream.name}-retention`,
          policy: stream.policy(this.prefix, this.retentionDays),
        }),
      );
    await this.bus.ensureTopics([...this.streams.map((s) => s.topic as Topic<unknown>), topics.dlq]);
    for (const stream of this.streams)
      this.subscriptions.push(
        await this.bus.subscribe<unknown>({
          topic: stream.topic as Topic<unknown>,
          // A group per topic (as the monitor's): the members of one Kafka group agree on one subscription.
          group: `${this.group}.${stream.topic.name}`,
          service: 'index-sink',
          from: 'earliest',
          handle: (batch) => this.handle(stream as IndexedStream<unknown>, batch),
        }),
      );
  }

  private readonly failure = Promise.withResolvers<never>();
  /** Rejects when the sink cannot go on (OpenSearch refused its credentials): the service ends with the reason. */
  readonly failed: Promise<never> = this.failure.promise;

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const s of this.subscriptions) await s.stop();
  }

  async caughtUp(): Promise<void> {
    for (const s of this.subscriptions) await s.caughtUp();
  }

  private async handle<T>(stream: IndexedStream<T>, batch: Batch<T>): Promise<undefined> {
    this.stats.received += batch.records.length;
    // One document per id, the batch's last record winning unless an earlier one outranks it (a score over a time-out
    // read after it, as the index itself would keep): a verdict and its revision (scored after it timed out) in one
    // batch are not left to a retry of only one of them to put in the wrong order.
    const byId = new Map<string, { op: IndexOp; key: string; offset: bigint; value: T }>();
    for (const r of batch.records) {
      const op: IndexOp = {
        index: stream.index(this.prefix, r.value),
        id: stream.id(r.value),
        // The record as published, field for field (the template's mappings name every field).
        doc: { ...(r.value as Record<string, unknown>) },
        ...(stream.version === undefined ? {} : { version: stream.version(r.value) }),
      };
      const id = `${op.index}\u0000${op.id}`;
      const earlier = byId.get(id)?.op.version;
      // Outranked within the batch: not written, counted as the index's own refusal of it would be.
      if (earlier !== undefined && op.version !== undefined && earlier > op.version) {
        this.stats.outranked++;
        continue;
      }
      byId.set(id, { op, key: r.key, offset: r.offset, value: r.value });
    }
    let pending = [...byId.values()];
    const since = Date.now();
    // The wait between attempts ends when the sink stops, or when the partition is lost to this member (`Batch.signal`:
    // its next owner writes the batch; going on would write it from two members at once).
    const giveUp = AbortSignal.any([this.stopping.signal, batch.signal]);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) {
        this.stats.retries++;
        if (Date.now() - since > this.maxHoldMs)
          throw new Error(
            `OpenSearch did not take ${stream.topic.name} partition ${batch.partition}'s batch for ${Math.round((Date.now() - since) / 1000)} s: handed back uncommitted`,
          );
        await this.sleep(this.delay(attempt), giveUp);
      }
      // Stopping mid-retry: the batch stays uncommitted and is read again by the next owner of the partition.
      if (this.stopping.signal.aborted) throw new Error('stopping: batch left uncommitted');
      if (batch.signal.aborted) throw batch.signal.reason;
      let results: Awaited<ReturnType<DocumentIndex['bulk']>>;
      const timer = metrics.indexBulkDuration.startTimer();
      try {
        this.stats.bulkRequests++;
        results = await this.index.bulk(pending.map((p) => p.op));
        timer();
        this.available(undefined);
      } catch (err) {
        timer();
        if (err instanceof CryptocastError) {
          // Refused credentials: the batch stays uncommitted, and the sink fails (`failed`) so the service ends.
          this.failure.reject(err); // a second rejection of a settled promise is a no-op
          throw err;
        }
        this.available((err as Error).message);
        metrics.indexRetries.inc({ stream: stream.name });
        this.warn({
          err: (err as Error).message,
          partition: batch.partition,
          attempt,
          documents: pending.length,
        });
        continue;
      }
      const again: typeof pending = [];
      const dead: DeadLetter[] = [];
      results.forEach((r, i) => {
        const p = pending[i]!;
        if (r.ok && r.outranked) this.stats.outranked++;
        else if (r.ok) {
          this.stats.indexed++;
          metrics.indexedDocuments.inc({ stream: stream.name });
        } else if (retryableRefusal(r)) again.push(p);
        else
          dead.push(
            deadLetter({
              service: 'index-sink',
              origin: stream.topic.name,
              kind: 'index-refused',
              reason: `OpenSearch ${r.status}: ${r.reason}`,
              payload: p.value,
              key: p.key,
              partition: batch.partition,
              offset: p.offset,
            }),
          );
      });
      if (dead.length > 0) {
        // Its next owner dead-letters them: not twice.
        if (batch.signal.aborted) throw batch.signal.reason;
        this.log.warn(
          { count: dead.length, reason: dead[0]!.reason },
          'documents refused by OpenSearch: to dlq',
        );
        await this.bus.publish(topics.dlq, dead);
        this.stats.deadLettered += dead.length;
      }
      if (again.length > 0) metrics.indexRetries.inc({ stream: stream.name });
      if (again.length > 0)
        this.warn({
          topic: stream.topic.name,
          partition: batch.partition,
          attempt,
          documents: again.length,
          status: 'retryable',
        });
      pending = again;
    }
    // Per topic: the sink indexes two streams, and a crash test must know which one's batch was left uncommitted.
    faultPoint(`index-sink:indexed:${stream.topic.name}`);
    return undefined; // the whole batch is durable: commit it
  }

  /** OpenSearch answering or not: the `/ready` probe and `cryptocast_dependency_up{dependency="opensearch"}`. */
  private available(reason: string | undefined): void {
    dependency('opensearch', reason === undefined ? undefined : `unavailable (${reason})`);
    metrics.dependencyUp.set({ dependency: 'opensearch' }, reason === undefined ? 1 : 0);
  }

  /** Retries `fn` until it succeeds or the sink stops. */
  private async retry(what: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopping.signal.aborted) throw new Error(`stopped before ${what} succeeded`);
      try {
        await fn();
        this.available(undefined);
        return;
      } catch (err) {
        if (err instanceof CryptocastError) throw err; // a setting to fix (refused credentials): not retried
        this.available((err as Error).message);
        this.warn({ what, err: (err as Error).message, attempt });
        await this.sleep(this.delay(attempt + 1), this.stopping.signal);
      }
    }
  }

  private delay(attempt: number): number {
    return Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(attempt - 1, 20));
  }

  /** At most one warning every 10 s while OpenSearch keeps failing. */
  private warn(fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.lastWarnAt < 10_000) return;
    this.lastWarnAt = now;
    this.log.warn(
      { ...fields, retries: this.stats.retries },
      'OpenSearch unavailable: retrying, nothing committed',
    );
  }
}

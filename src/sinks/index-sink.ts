import { faultPoint } from '../core/faults.ts';
import { type Logger, log as rootLog } from '../core/log.ts';
import type { Batch, Bus, Subscription } from '../runtime/bus.ts';
import { topics } from '../runtime/topic.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import type { Prediction } from '../schemas/prediction.ts';
import { type DocumentIndex, type IndexOp, retryableStatus } from './opensearch.ts';
import {
  DEFAULT_RETENTION_DAYS,
  predictionDocId,
  predictionDocument,
  predictionsIndex,
  predictionsIndexTemplate,
  predictionsIsmPolicy,
} from './predictions-index.ts';

export interface IndexSinkOptions {
  /** Index and template name prefix (default `cryptocast-`). */
  prefix?: string;
  /** Consumer group (default `index-sink`). */
  group?: string;
  retentionDays?: number;
  /** Back-off between attempts: from `initialMs`, doubling, at most `maxMs` (defaults 200 ms, 30 s). */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * How long one batch is retried inside the handler before it is handed back to the bus (which re-reads it from
   * the last commit after its own back-off, and lets a rebalance through meanwhile). Default 60 s.
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
 * `predictions` → OpenSearch, for dashboards (`cryptocast service index-sink`).
 *
 * Each batch of a partition becomes one bulk request of `index` operations whose ids are the predictions' own
 * identity (pair, windowEnd, model name and version) in the index of the prediction's month. The batch's offsets
 * are committed only once every document of it is durable in OpenSearch: a crash re-reads the uncommitted batch and
 * writes the same documents again onto themselves — nothing lost, nothing doubled.
 *
 * While OpenSearch is down or overloaded (connection errors, 429, 5xx, per request or per document) the batch is
 * retried with exponential back-off and nothing is committed; the partition reads no further meanwhile
 * (back-pressure: the backlog waits in Kafka, not in memory). A document OpenSearch refuses for itself (a 4xx
 * other than 429: a mapping conflict) would be refused forever: it goes to `dlq` with the reason, and the rest of
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
  private readonly stopping = new AbortController();
  private subscription: Subscription | undefined;
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
    this.log = (opts.logger ?? rootLog).child({ service: 'index-sink' });
  }

  /** Installs the template and the policy (retrying while OpenSearch is unreachable), then consumes. */
  async start(): Promise<void> {
    await this.retry('setup', () =>
      this.index.setup({
        templateName: `${this.prefix}predictions`,
        template: predictionsIndexTemplate(this.prefix),
        policyName: `${this.prefix}predictions-retention`,
        policy: predictionsIsmPolicy(this.prefix, this.retentionDays),
      }),
    );
    await this.bus.ensureTopics([topics.predictions, topics.dlq]);
    this.subscription = await this.bus.subscribe<Prediction>({
      topic: topics.predictions,
      group: this.group,
      service: 'index-sink',
      from: 'earliest',
      handle: (batch) => this.handle(batch),
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.subscription?.stop();
  }

  caughtUp(): Promise<void> {
    return this.subscription?.caughtUp() ?? Promise.resolve();
  }

  private async handle(batch: Batch<Prediction>): Promise<undefined> {
    this.stats.received += batch.records.length;
    let pending: { op: IndexOp; key: string; offset: bigint; value: Prediction }[] = batch.records.map(
      (r) => ({
        op: {
          index: predictionsIndex(this.prefix, r.value),
          id: predictionDocId(r.value),
          doc: predictionDocument(r.value),
        },
        key: r.key,
        offset: r.offset,
        value: r.value,
      }),
    );
    const since = Date.now();
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) {
        this.stats.retries++;
        if (Date.now() - since > this.maxHoldMs)
          throw new Error(
            `OpenSearch did not take partition ${batch.partition}'s batch for ${Math.round((Date.now() - since) / 1000)} s: handed back uncommitted`,
          );
        await this.sleep(this.delay(attempt), this.stopping.signal);
      }
      // Stopping mid-retry: the batch stays uncommitted and is read again by the next owner of the partition.
      if (this.stopping.signal.aborted) throw new Error('stopping: batch left uncommitted');
      let results: Awaited<ReturnType<DocumentIndex['bulk']>>;
      try {
        this.stats.bulkRequests++;
        results = await this.index.bulk(pending.map((p) => p.op));
      } catch (err) {
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
        if (r.ok) this.stats.indexed++;
        else if (retryableStatus(r.status)) again.push(p);
        else
          dead.push(
            deadLetter({
              service: 'index-sink',
              origin: topics.predictions.name,
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
        this.log.warn(
          { count: dead.length, reason: dead[0]!.reason },
          'documents refused by OpenSearch: to dlq',
        );
        await this.bus.publish(topics.dlq, dead);
        this.stats.deadLettered += dead.length;
      }
      if (again.length > 0)
        this.warn({ partition: batch.partition, attempt, documents: again.length, status: 'retryable' });
      pending = again;
    }
    faultPoint('index-sink:indexed');
    return undefined; // the whole batch is durable: commit it
  }

  /** Retries `fn` until it succeeds or the sink stops. */
  private async retry(what: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopping.signal.aborted) throw new Error(`stopped before ${what} succeeded`);
      try {
        await fn();
        return;
      } catch (err) {
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

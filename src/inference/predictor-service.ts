import { faultPoint } from '../core/faults.ts';
import { type Logger, log as rootLog } from '../core/log.ts';
import { metrics, onScrape } from '../core/metrics.ts';
import { orAbort } from '../core/or-abort.ts';
import { redactSecrets } from '../core/secrets.ts';
import { FEATURE_SET } from '../features/technical.ts';
import { type Batch, type Bus, HoldBatch, type Subscription } from '../runtime/bus.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import type { Prediction } from '../schemas/prediction.ts';
import type { AciState } from '../schemas/predictor-state.ts';
import { topics } from '../schemas/topics.ts';
import { type AciOptions, WARM_UP_MARGIN_MS } from './adaptive-conformal.ts';
import type { ModelSource } from './model-holder.ts';
import { modelBandBps, OnlineAdjustments } from './online-adjustments.ts';
import type { PredictionsStore } from './predictions-store.ts';
import {
  type Clock,
  DEFAULT_MAX_STALENESS_MS,
  eventClock,
  predict,
  SKIP_REASONS,
  type SkipReason,
  wallClock,
} from './predictor.ts';
import type { ShrinkageOptions } from './shrinkage.ts';

export interface PredictorServiceOptions {
  /** Consumer group (default `predictor`). */
  group?: string;
  /** Vectors older than this (by the clock) are not predicted. Default 2 minutes. */
  maxStalenessMs?: number;
  /** `wall` (default, live) or `event` (replays: the largest windowEnd seen per pair), or a clock of one's own. */
  clock?: 'wall' | 'event' | Clock;
  /** At most one warning per kind (stale, no champion) this often, carrying the count since the last. Default 10 s. */
  warnEveryMs?: number;
  /**
   * Publish the p10–p90 band through online adaptive conformal inference (src/inference/online-adjustments.ts): true for
   * the defaults, or its options. Off when not given (the CLI turns it on by default): the model's own band.
   */
  adaptiveConformal?: boolean | Partial<AciOptions>;
  /**
   * Shrink the point forecast toward persistence by its recent matured errors (src/inference/shrinkage.ts): true for
   * the defaults, or its options. Off when not given; λ is exported per pair (cryptocast_predictor_shrinkage_lambda).
   */
  shrinkage?: boolean | Partial<ShrinkageOptions>;
  /**
   * The feature store's vectors of `pair` with fromTs ≤ windowEnd < toTs, oldest first: the online adjustments'
   * state is rebuilt from them before a pair's first vector (after a start or a restart). Without it, it starts empty.
   */
  history?: (pair: string, fromTs: number, toTs: number) => Promise<FeatureVectorRecord[]>;
  logger?: Logger;
}

/**
 * `features` → the champion model → `predictions` (topic) + the predictions store.
 *
 * Each batch of vectors is predicted, written to the store (an upsert on pair, windowEnd, modelVersion), then
 * published; the batch's offsets are committed only after both are durable. A crash anywhere re-reads at most the
 * uncommitted batch: the store's upsert absorbs the re-write, and vectors whose windowEnd was already published (read
 * back from the whole predictions topic on start) are not published again — the store is written before the
 * topic, so whatever the topic has, the store has too.
 *
 * Vectors with no prediction are counted by reason. Stale ones (the predictor fell behind, or a replay is run on the
 * wall clock) also raise a rate-limited warning with their count; vectors that break the technical set's contract
 * go to `dlq`.
 */
export class PredictorService {
  readonly stats: {
    vectors: number;
    predicted: number;
    /** Predictions of a re-read batch (after a crash) that were stored again but not published twice. */
    alreadyPublished: number;
    skipped: Record<SkipReason, number>;
  } = {
    vectors: 0,
    predicted: 0,
    alreadyPublished: 0,
    skipped: Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>,
  };
  private readonly bus: Bus;
  private readonly models: ModelSource;
  private readonly store: PredictionsStore;
  private readonly group: string;
  readonly maxStalenessMs: number;
  readonly clock: Clock;
  private readonly warnEveryMs: number;
  private readonly log: Logger;
  private subscription: Subscription | undefined;
  /** The online adjustments (band, shrinkage), when on. */
  readonly adjustments: OnlineAdjustments | undefined;
  private readonly history: PredictorServiceOptions['history'];
  /** exchange|pair whose adjustments' state has been rebuilt from the store (or found nothing to rebuild from). */
  private readonly warmed = new Set<string>();
  /** The features partition each exchange|pair was last read from: whose state to forget when it is assigned again. */
  private readonly partitionOf = new Map<string, number>();
  /** Per exchange|pair, the newest windowEnd already in the predictions topic (read back on (re)assignment). */
  private published: Map<string, number> | undefined;
  /**
   * Per exchange|pair and windowEnd, the α_t the band of a published prediction was made with (the tail of
   * `predictor.aci`, read with `published`): the warm-up puts it back, as a window of history cannot rebuild it.
   */
  private publishedAlpha: Map<string, Map<number, AciState>> | undefined;
  private readonly warnings = new Map<
    SkipReason,
    { at: number; count: number; msg: string; fields: Record<string, unknown> }
  >();
  /** Called with each batch's predictions once they are durable (tests, the embedded runtime). */
  onPredictions?: (ps: readonly Prediction[]) => void;

  constructor(bus: Bus, models: ModelSource, store: PredictionsStore, opts: PredictorServiceOptions = {}) {
    this.bus = bus;
    this.models = models;
    this.store = store;
    this.group = opts.group ?? 'predictor';
    this.maxStalenessMs = opts.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS;
    const c = opts.clock ?? 'wall';
    this.clock = c === 'wall' ? wallClock() : c === 'event' ? eventClock() : c;
    this.warnEveryMs = opts.warnEveryMs ?? 10_000;
    this.log = (opts.logger ?? rootLog).child({ service: 'predictor' });
    const aci = opts.adaptiveConformal;
    const shrink = opts.shrinkage;
    this.adjustments =
      aci || shrink
        ? new OnlineAdjustments({
            band: aci ? (aci === true ? {} : aci) : false,
            shrinkage: shrink ? (shrink === true ? {} : shrink) : false,
          })
        : undefined;
    this.history = opts.history;
  }

  /**
   * Before the first vector of a pair: the adjustments learn from the stored vectors of the window before it,
   * predicted with the current model (published nowhere), so a restarted predictor publishes the forecasts it would
   * have published had it never stopped (given the same model and what the store holds).
   */
  private async warmUp(v: FeatureVectorRecord, signal: AbortSignal): Promise<void> {
    const key = `${v.exchange}|${v.pair}`;
    const model = this.models.current();
    if (
      this.adjustments === undefined ||
      this.history === undefined ||
      v.featureSet !== FEATURE_SET.name ||
      this.warmed.has(key) ||
      model === undefined
    )
      return;
    const from = v.windowEnd - this.adjustments.windowMinutes * 60_000 - WARM_UP_MARGIN_MS;
    let stored: FeatureVectorRecord[];
    try {
      stored = await orAbort(this.history(v.pair, from, v.windowEnd), signal);
    } catch (err) {
      // Given back: the batch is not handled, and the pair is warmed up again by whoever handles it.
      if (signal.aborted) throw signal.reason;
      // Predictions must not wait on the history (a feature table not created yet, say): the band starts empty.
      this.warmed.add(key);
      this.log.warn(
        { pair: v.pair, exchange: v.exchange, err: redactSecrets((err as Error).message) },
        'the feature store did not give the history: the online adjustments start empty',
      );
      return;
    }
    const earlier = stored.filter((h) => h.exchange === v.exchange && h.featureSet === v.featureSet);
    const before = this.adjustments.stats.learnt;
    const alphas = this.publishedAlpha?.get(key);
    this.adjustments.warmUp(
      earlier,
      (h) => {
        const r = predict(h, model, { now: h.windowEnd, maxStalenessMs: this.maxStalenessMs });
        return r.ok ? r.prediction : undefined;
      },
      (p) => alphas?.get(p.windowEnd),
    );
    this.warmed.add(key);
    if (earlier.length > 0)
      this.log.info(
        {
          pair: v.pair,
          exchange: v.exchange,
          vectors: earlier.length,
          learnt: this.adjustments.stats.learnt - before,
        },
        'online adjustments rebuilt from the feature store',
      );
  }

  async start(): Promise<void> {
    onScrape(() => {
      const c = this.models.current()?.card;
      if (c === undefined) return;
      metrics.championVersion.set({ model: c.name }, c.version);
      metrics.championAge.set({ model: c.name }, Math.max(0, Date.now() - c.createdAt) / 1000);
    });
    await this.store.migrate();
    await this.bus.ensureTopics([topics.features, topics.predictions, topics.predictorAci, topics.dlq]);
    this.subscription = await this.bus.subscribe<FeatureVectorRecord>({
      topic: topics.features,
      group: this.group,
      service: 'predictor',
      from: 'earliest',
      onAssign: (partitions) => {
        this.published = undefined;
        // A partition assigned to us now was another predictor's since we last read it (or never ours): the online
        // adjustments of its pairs missed the outcomes it matured, so they are dropped and warmed up again from the
        // store before the pair's next vector, as after a restart.
        for (const [key, partition] of this.partitionOf)
          if (partitions.includes(partition)) {
            this.partitionOf.delete(key);
            this.warmed.delete(key);
            this.adjustments?.forget(key);
          }
      },
      handle: async (batch) => {
        const restoreClock = this.clock.mark?.();
        // The online adjustments learn and remember as the batch is read, before its predictions are stored: a batch
        // that fails comes again and must meet them as they were (and a warm-up it made is made again).
        const keys = new Set(batch.records.map((r) => `${r.value.exchange}|${r.value.pair}`));
        const unwarmed = [...keys].filter((k) => !this.warmed.has(k));
        const restoreAdjustments = this.adjustments?.mark(keys);
        try {
          return await this.handle(batch);
        } catch (err) {
          restoreClock?.();
          restoreAdjustments?.();
          for (const k of unwarmed) this.warmed.delete(k);
          throw err;
        }
      },
    });
  }

  /** One batch of feature vectors: predicted, stored, published; what is not predicted counted or dead-lettered. */
  private async handle(batch: Batch<FeatureVectorRecord>): Promise<undefined> {
    // Nothing is served yet but a champion is expected (the registry is away, or the champion's files failed to
    // download): hold the features (the bus redelivers this batch after a back-off) instead of skipping them as
    // "no champion" — nothing is lost while it recovers.
    if (this.models.waitingForChampion?.())
      throw new HoldBatch('the champion is not loaded yet (registry away or download failed): features held');
    // The waits below end once the batch is given back (`Batch.signal`): a broker or a store away must not hold a
    // rebalance past its timeout.
    if (this.published === undefined) {
      this.publishedAlpha = await this.readPublishedAlpha(batch.signal);
      this.published = await this.readPublished(batch.signal);
    }
    if (this.adjustments !== undefined && this.history !== undefined)
      for (const r of batch.records)
        if (!this.warmed.has(`${r.value.exchange}|${r.value.pair}`)) await this.warmUp(r.value, batch.signal);
    const out: Prediction[] = [];
    /** The α_t each adjusted band of `out` was made with (the state a restart restores). */
    const alphas: AciState[] = [];
    const dead: DeadLetter[] = [];
    // Counted once the batch is through (stored, published, dead letters sent): a batch that fails comes again.
    const skipped: SkipReason[] = [];
    for (const r of batch.records) {
      const v = r.value;
      this.partitionOf.set(`${v.exchange}|${v.pair}`, r.partition);
      // Outcomes first: this vector's close matures the predictions made one horizon ago.
      this.adjustments?.observe(v);
      const result = predict(v, this.models.current(), {
        now: this.clock.now(v),
        maxStalenessMs: this.maxStalenessMs,
      });
      if (!result.ok) {
        skipped.push(result.reason);
        // Not published, but learnt from as the warm-up does (it predicts every stored vector at its own windowEnd,
        // where none is stale): a restart then rebuilds the state this predictor had, and one back from an outage
        // (its backlog stale on the wall clock) has learnt from the outcomes of the outage.
        if (result.reason === 'stale' && this.adjustments !== undefined) {
          const late = predict(v, this.models.current(), {
            now: v.windowEnd,
            maxStalenessMs: this.maxStalenessMs,
          });
          if (late.ok) this.adjustments.learnFrom(late.prediction);
        }
        if (result.reason === 'stale')
          this.warn('stale', 'stale feature vectors: no prediction made', {
            pair: v.pair,
            ageMs: result.ageMs,
            maxStalenessMs: this.maxStalenessMs,
            clock: this.clock.kind,
          });
        else if (result.reason === 'no_champion')
          this.warn('no_champion', 'no champion model: ready vectors are not predicted', {});
        else if (result.reason === 'invalid' || result.reason === 'model_error')
          dead.push(
            deadLetter({
              service: 'predictor',
              origin: topics.features.name,
              kind: result.reason,
              reason: result.detail,
              payload: v,
              key: r.key,
              partition: r.partition,
              offset: r.offset,
            }),
          );
        continue;
      }
      if (this.adjustments === undefined) {
        out.push(result.prediction);
        continue;
      }
      out.push(this.adjustments.adjust(result.prediction));
      const alpha = this.adjustments.alpha(`${v.exchange}|${v.pair}`);
      if (alpha !== undefined) {
        // With the champion's own quantiles: a restart after a promotion rebuilds the scores from them.
        const made = modelBandBps(result.prediction);
        alphas.push({
          v: 1,
          exchange: v.exchange,
          pair: v.pair,
          windowEnd: v.windowEnd,
          ...alpha,
          p10Bps: made.p10,
          p90Bps: made.p90,
        });
      }
    }
    // The partition given back meanwhile (`Batch.signal`: its next owner reads the batch again, the warm-up or a
    // read-back above may have waited through the rebalance): nothing stored or published.
    if (out.length > 0) {
      batch.signal.throwIfAborted();
      await orAbort(this.store.write(out), batch.signal);
      faultPoint('predictor:stored');
      // Only what the topic does not have yet (a re-read batch after a crash was published already).
      const toPublish = out.filter(
        (p) => p.windowEnd > (this.published!.get(`${p.exchange}|${p.pair}`) ?? Number.NEGATIVE_INFINITY),
      );
      this.stats.alreadyPublished += out.length - toPublish.length;
      // The bands' state before the predictions: whatever prediction the topic has, a restart finds its α_t.
      const alphasToPublish = alphas.filter(
        (a) => a.windowEnd > (this.published!.get(`${a.exchange}|${a.pair}`) ?? Number.NEGATIVE_INFINITY),
      );
      batch.signal.throwIfAborted();
      if (alphasToPublish.length > 0) await this.bus.publish(topics.predictorAci, alphasToPublish);
      batch.signal.throwIfAborted();
      if (toPublish.length > 0) await this.bus.publish(topics.predictions, toPublish);
      for (const p of toPublish) {
        const key = `${p.exchange}|${p.pair}`;
        if (p.windowEnd > (this.published.get(key) ?? Number.NEGATIVE_INFINITY))
          this.published.set(key, p.windowEnd);
      }
      faultPoint('predictor:published');
    }
    if (dead.length > 0) {
      this.log.warn({ count: dead.length, reason: dead[0]!.reason }, 'feature vectors rejected');
      batch.signal.throwIfAborted();
      await this.bus.publish(topics.dlq, dead);
    }
    this.stats.vectors += batch.records.length;
    for (const reason of skipped) {
      this.stats.skipped[reason]++;
      metrics.predictionsSkipped.inc({ reason });
    }
    this.flushWarnings(false);
    if (out.length > 0) {
      this.stats.predicted += out.length;
      for (const p of out) {
        metrics.predictions.inc({ pair: p.pair });
        metrics.predictionLatency.observe(p.latencyMs / 1000);
      }
      const newest = out[out.length - 1]!;
      metrics.predictedClose.set({ pair: newest.pair, quantile: '0.1' }, newest.p10);
      metrics.predictedClose.set({ pair: newest.pair, quantile: '0.5' }, newest.predictedClose);
      metrics.predictedClose.set({ pair: newest.pair, quantile: '0.9' }, newest.p90);
      if (this.adjustments?.gate !== undefined)
        for (const key of new Set(out.map((p) => `${p.exchange}|${p.pair}`)))
          metrics.shrinkageLambda.set({ pair: key.split('|')[1]! }, this.adjustments.lambda(key));
      this.onPredictions?.(out);
    }
    return undefined;
  }

  /** Counts an occurrence of a warning kind; the latest one's fields go into the next warning of that kind. */
  private warn(kind: SkipReason, msg: string, fields: Record<string, unknown>): void {
    let w = this.warnings.get(kind);
    if (w === undefined) {
      w = { at: Number.NEGATIVE_INFINITY, count: 0, msg, fields };
      this.warnings.set(kind, w);
    }
    w.count++;
    w.msg = msg;
    w.fields = fields;
  }

  /**
   * Logs the pending warnings (after each batch, and on stop): at most one per kind per `warnEveryMs` (wall time),
   * with how many occurred since the previous one (`count`) and in all (`total`).
   */
  private flushWarnings(force: boolean): void {
    const now = Date.now();
    for (const [kind, w] of this.warnings) {
      if (w.count === 0 || (!force && now - w.at < this.warnEveryMs)) continue;
      this.log.warn({ ...w.fields, count: w.count, total: this.stats.skipped[kind] }, w.msg);
      w.at = now;
      w.count = 0;
    }
  }

  /**
   * The newest windowEnd per exchange|pair already in the predictions topic. The whole topic is read (its retention
   * bounds it), as for `predictor.aci`: a tail of N records per partition would miss a pair quiet on a partition that
   * a busy pair (or many pairs) shares, and a batch read again after a crash between publish and commit would then
   * be published twice. It is read a page at a time and folded as it comes: only the newest windowEnd of each pair is
   * held, not the topic.
   */
  private async readPublished(signal?: AbortSignal): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await this.bus.readPages<Prediction>(
      topics.predictions,
      (page) => {
        for (const { value: p } of page) {
          const key = `${p.exchange}|${p.pair}`;
          if (p.windowEnd > (out.get(key) ?? Number.NEGATIVE_INFINITY)) out.set(key, p.windowEnd);
        }
      },
      { signal },
    );
    return out;
  }

  /**
   * Per exchange|pair and windowEnd, the α_t of the bands in `predictor.aci` (none without the band). The whole topic
   * is read (its retention bounds it): a tail of N records per partition would miss a pair quiet on a partition that a
   * busy pair (or many pairs) shares, and that pair would restart with α_t rebuilt from α. It is read a page at a time
   * and folded as it comes: per exchange|pair only the states within a warm-up's reach of its newest so far are held
   * (what a warm-up can use; a state out of reach of the newest so far is out of reach of the newest at the end).
   */
  private async readPublishedAlpha(signal?: AbortSignal): Promise<Map<string, Map<number, AciState>>> {
    const out = new Map<string, Map<number, AciState>>();
    if (this.adjustments?.aci === undefined) return out;
    const reach = this.adjustments.windowMinutes * 60_000 + WARM_UP_MARGIN_MS;
    const newest = new Map<string, number>();
    await this.bus.readPages<AciState>(
      topics.predictorAci,
      (page) => {
        const touched = new Set<string>();
        for (const { value: a } of page) {
          const key = `${a.exchange}|${a.pair}`;
          if (a.windowEnd > (newest.get(key) ?? Number.NEGATIVE_INFINITY)) newest.set(key, a.windowEnd);
          if (a.windowEnd < newest.get(key)! - reach) continue;
          let byWindowEnd = out.get(key);
          if (byWindowEnd === undefined) {
            byWindowEnd = new Map();
            out.set(key, byWindowEnd);
          }
          byWindowEnd.set(a.windowEnd, a);
          touched.add(key);
        }
        // What the page's newer states put out of reach goes now: a pair holds a reach and a page at most.
        for (const key of touched) {
          const from = newest.get(key)! - reach;
          for (const windowEnd of out.get(key)!.keys()) if (windowEnd < from) out.get(key)!.delete(windowEnd);
        }
      },
      { signal },
    );
    return out;
  }

  async caughtUp(): Promise<void> {
    await this.subscription?.caughtUp();
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.flushWarnings(true);
  }
}

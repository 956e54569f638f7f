import { setTimeout as sleep } from 'node:timers/promises';
import type { LatePolicy } from '../candles/aggregator.ts';
import { type CandlesTable, candleCopies } from '../candles/store/candles-table.ts';
import { faultPoint } from '../core/faults.ts';
import { type Logger, log as rootLog } from '../core/log.ts';
import { metrics, onScrape } from '../core/metrics.ts';
import { orAbort } from '../core/or-abort.ts';
import { backoffCap } from '../core/retry.ts';
import { type Batch, type Bus, type CommitPlan, HoldBatch, type Subscription } from '../runtime/bus.ts';
import { summarise } from '../runtime/in-process-bus.ts';
import { publishDurably } from '../runtime/publish-durably.ts';
import { validate } from '../runtime/validated.ts';
import type { AlertNotification } from '../schemas/alert.ts';
import type { Candle } from '../schemas/candle.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import type { Prediction } from '../schemas/prediction.ts';
import { errorKey, type PredictionError } from '../schemas/prediction-error.ts';
import { PIPELINE_GROUPS, topics } from '../schemas/topics.ts';
import { WriteBehind } from '../stores/write-behind.ts';
import type { AlertEngine } from './alerts/engine.ts';
import { LatePolicyCheck } from './late-policy-check.ts';
import { MaturityJoin } from './maturity.ts';
import { figures, MINUTE, RollingQuality } from './rolling-quality.ts';
import type { ErrorsStore } from './store/errors-store.ts';

export interface MonitorServiceOptions {
  /** Consumer group (default `monitor`). */
  group?: string;
  /** `wall` (live: the wall clock drives timeouts and scoredAt) or `event` (replays: the newest candle). */
  clock?: 'wall' | 'event';
  /** See MaturityOptions. */
  timeoutMs?: number;
  retentionMs?: number;
  /** Rolling windows (name → ms). */
  windows?: Record<string, number>;
  logger?: Logger;
  now?: () => number;
  /** Every candle read is kept here too (the dashboard's `/v1/candles`). */
  candles?: CandlesTable;
  /**
   * With `candles`: each minute's first emission kept here as well (`cryptocast run --late-policy revise`, whose
   * restart seeds the feature stage with them: `CANDLE_FIRST_EMISSIONS_SPEC`).
   */
  candleFirstEmissions?: CandlesTable;
  /**
   * The late policy this monitor was given (`--late-policy`, the candle service's): checked against the one the
   * candles show (`LatePolicyCheck`); unchecked when absent.
   */
  latePolicy?: LatePolicy;
  /** Alerting: the engine, how often it runs (default 15 s of the clock), and when the champion was trained. */
  alerts?: { engine: AlertEngine; everyMs?: number; championCreatedAt?: () => number | undefined };
  /**
   * Told of every failed background write that `caughtUp` retries (a caller for whom some failures never pass, like
   * `cryptocast run` on a full disk, can stop instead of waiting), as the bus tells of a failed handler.
   */
  onWriteFailure?: (err: unknown) => void;
  /**
   * How long `stop` waits for the store to take what is still queued (verdicts, the dashboard's candles), a batch in
   * hand waiting on the store included; default DEFAULT_STOP_TIMEOUT_MS (`CRYPTOCAST_MONITOR_STOP_TIMEOUT_MS`). What is
   * left then is not written by this process: see `stop`.
   */
  stopTimeoutMs?: number;
}

/**
 * How long a stop waits for the store by default: well inside the 45 s the chart and compose give a stopping pod
 * before SIGKILL, with room for the subscriptions' stop and the bus's close around it.
 */
export const DEFAULT_STOP_TIMEOUT_MS = 15_000;

/** How long the lag reads of one alert evaluation may take (it runs every 5 s). */
const LAG_READ_TIMEOUT_MS = 4_000;

/** The dashboard's candles are written at most once a second (`WriteBehind`): the chart loses nothing by it. */
const CANDLE_COPY_SPACING_MS = 1_000;
/**
 * Verdicts are published and stored at most once a second: a DuckDB write costs milliseconds of CPU whatever its size,
 * and a replay's batches come a tenth of a second apart (live, a minute apart: each is written at once).
 */
const VERDICT_WRITE_SPACING_MS = 1_000;
/** Verdicts judged and not yet stored that a predictions batch may not take the count past: it waits for the write. */
const MAX_UNSTORED_VERDICTS = 10_000;
/** Back-off of `caughtUp`'s retries of a failed background write (the in-process bus's, for a failed handler). */
const FLUSH_BACKOFF = { initialMs: 50, maxMs: 5_000 };

/**
 * `candles` + `predictions` → one error record per prediction when its target minute closes (`MaturityJoin`) →
 * `predictions.errors` (topic) and the errors store, and the rolling quality (`RollingQuality`) kept up to date.
 *
 * Commit protocol (what survives a crash; both inputs are re-read where needed, and re-reading is harmless):
 *   1. on start, the rolling quality is rebuilt from the store's records of the longest window, and their keys are
 *      remembered so that a re-read prediction already judged is not judged again;
 *   2. verdicts are published to `predictions.errors`, then written to the store, in the background and at most
 *      once a second, what the batches gave meanwhile together (a crash between the two re-scores the prediction
 *      after the restart: the topic may carry a record twice — its consumers upsert — but the store never misses
 *      one); a failed write keeps its verdicts for the next and fails the next batch, before the join sees it;
 *   3. `predictions` offsets are committed up to the oldest prediction still waiting — for its candle, or for its
 *      verdict to be stored — so a restart re-reads every prediction without a stored verdict;
 *   4. `candles` offsets are committed `retentionMs` behind each partition's newest candle, so a restart re-reads
 *      the closes a late or waiting prediction may still need — and the candles kept for the dashboard (`candles`
 *      option), which are written in the background (`WriteBehind`, at most once a second): what a crash loses there
 *      is written again from the re-read. A restart therefore begins behind a backlog of candles, and predictions are
 *      read meanwhile: none times out (`target_not_closed_in_time`) until the candles are read to the end.
 */
export class MonitorService {
  readonly join: MaturityJoin;
  readonly quality: RollingQuality;
  /**
   * Records published and stored; `revised`: of those, the ones superseding an earlier record of the same prediction
   * (a time-out scored late: one row in the store for both), so `stored − revised` predictions have a record.
   * `candlesHeldForStore`: how many times a candle waited for the store to take the verdicts before it (the bound,
   * MAX_UNSTORED_VERDICTS, reached by the verdicts of the candles before it).
   */
  readonly stats = { published: 0, stored: 0, revised: 0, rebuilt: 0, candlesHeldForStore: 0 };
  private readonly bus: Bus;
  private readonly store: ErrorsStore;
  private readonly group: string;
  private readonly retentionMs: number;
  private readonly log: Logger;
  private readonly subscriptions: Subscription[] = [];
  /** Per predictions partition: offsets of the predictions still waiting, by key. */
  private readonly waiting = new Map<number, Map<string, bigint>>();
  /**
   * Per candles partition: (windowEnd, offset) of the candles within the retention, oldest first, and the newest
   * windowEnd read (the retention is counted back from it).
   */
  private readonly kept = new Map<
    number,
    { candles: { windowEnd: number; offset: bigint }[]; newest: number }
  >();
  /** The candles subscription: whether it has read to the end decides whether a waiting prediction may time out. */
  private candlesRead: Subscription | undefined;
  /** The predictions subscription: until it has read to the end, the join keeps closes for the predictions re-read. */
  private predictionsRead: Subscription | undefined;
  private expiry: NodeJS.Timeout | undefined;
  /** The lag refresh and alert evaluation under way, if any: a tick while it runs starts no other. */
  private evaluating: Promise<void> | undefined;
  private readonly alerts: MonitorServiceOptions['alerts'];
  /** Signals for the alert rules, kept as the streams go by. */
  private readonly lastCandle = new Map<string, number>();
  private readonly lastTradeCandle = new Map<string, number>();
  private readonly lastFeature = new Map<string, number>();
  /** When the features subscription began (from the topic's end): see `AlertSignals.featuresWatchedSince`. */
  private featuresWatchedSince: number | undefined;
  /**
   * Whether the candles have been read to the end since the start (see `AlertSignals.candlesCaughtUp`): once, not at
   * each evaluation — within a live batch the subscription has not read it yet, and a rule's `for` would restart there.
   */
  private candlesCaughtUp = false;
  private readonly consumerLag = new Map<string, number>();
  /** Wall-clock arrival times of recent dead letters (the last minute is counted). */
  private deadLetterTimes: number[] = [];
  private lastEvaluation = Number.NEGATIVE_INFINITY;
  /**
   * The earliest minute of the verdicts added to the rolling quality since the rules were last evaluated (Infinity:
   * none): one at or before that evaluation changed the windows after it at once (`catchUpTimes`).
   */
  private changedSinceEvaluation = Number.POSITIVE_INFINITY;
  /** The newest verdict's target time per pair (the event clock of alerts, see `alertClock`). */
  private readonly verdictClock = new Map<string, number>();
  /** The first verdict's target time (the event clock's start: where the first catch-up evaluation starts). */
  private firstEventTime = Number.POSITIVE_INFINITY;
  private readonly clockKind: 'wall' | 'event';
  private readonly candleCopies: WriteBehind<Candle> | undefined;
  /** Where `candleCopies` writes: read back for closes the join no longer holds (`forgottenCloses`). */
  private readonly candleTable: CandlesTable | undefined;
  /** Where `candleCopies` keeps first emissions, if it does: read back in preference to `candleTable`'s revisions. */
  private readonly candleFirstEmissionsTable: CandlesTable | undefined;
  /** Predictions batches waiting for closes read back from `candleTable` (see `predictionsReadToEnd`). */
  private closesReadBack = 0;
  /** Candles batches halfway through, waiting for the store to take their verdicts (see `candlesReadToEnd`). */
  private candlesHeld = 0;
  /** The verdicts to publish and store, in the background (see the commit protocol). */
  private readonly verdictWrites: WriteBehind<PredictionError>;
  /** Keys of the verdicts judged and not stored yet. */
  private readonly unstored = new Set<string>();
  /** Keys of the verdicts the topic refuses whose dead letter is not published yet (`publishable`). */
  private readonly lettersInFlight = new Set<string>();
  private readonly wallNow: () => number;
  /** The monitor's late policy against the candle service's, when it was given (`MonitorServiceOptions.latePolicy`). */
  readonly latePolicyCheck: LatePolicyCheck | undefined;
  /** The alert notifications published to the `alerts` topic so far, in order (see the constructor). */
  private alertsAnnounced: Promise<void> = Promise.resolve();
  /** Called with each batch of verdicts once they are durable (the API's live feed, alerts, tests). */
  onErrors?: (records: readonly PredictionError[]) => void;
  private readonly onWriteFailure: ((err: unknown) => void) | undefined;
  private readonly stopTimeoutMs: number;
  /**
   * Aborted `stopTimeoutMs` after `stop` began (with a `HoldBatch`: the batch is not committed, the next start reads it
   * again): ends every wait on the store that the stop would otherwise wait for.
   */
  private readonly pastStopDeadline = new AbortController();

  constructor(bus: Bus, store: ErrorsStore, o: MonitorServiceOptions = {}) {
    this.bus = bus;
    this.store = store;
    this.group = o.group ?? 'monitor';
    this.retentionMs = o.retentionMs ?? 86_400_000;
    this.join = new MaturityJoin({
      timeoutMs: o.timeoutMs,
      retentionMs: this.retentionMs,
      now: (o.clock ?? 'wall') === 'wall' ? (o.now ?? Date.now) : undefined,
    });
    this.quality = new RollingQuality(o.windows);
    this.log = (o.logger ?? rootLog).child({ service: 'monitor' });
    this.alerts = o.alerts;
    this.candleTable = o.candles;
    this.candleFirstEmissionsTable = o.candles && o.candleFirstEmissions;
    this.candleCopies =
      o.candles &&
      new WriteBehind(
        candleCopies(o.candles, o.candleFirstEmissions),
        (err) =>
          this.log.warn({ err }, 'candles for the dashboard not written yet; retried with the next ones'),
        // A replay's batches, a tenth of a second apart, go in a few writes; live, a minute apart, each at once.
        { spacingMs: CANDLE_COPY_SPACING_MS },
      );
    this.verdictWrites = new WriteBehind(
      { write: (records) => this.publishAndStore(records) },
      (err) => this.log.warn({ err }, 'verdicts not stored yet; retried'),
      { spacingMs: VERDICT_WRITE_SPACING_MS },
    );
    if (o.alerts)
      o.alerts.engine.onNotification = (n) => {
        // One after another, each retried until the broker takes it (or the stop): the API knows the active alerts
        // only from this topic, and a firing or a resolved lost to a broker away for a moment was lost to it for good.
        this.alertsAnnounced = this.alertsAnnounced.then(() =>
          publishDurably('monitor:alerts', this.stopping.signal, () =>
            this.bus.publish(topics.alerts, [n]),
          ).catch((err) => this.log.warn({ err }, 'alert not published')),
        );
      };
    this.clockKind = o.clock ?? 'wall';
    this.wallNow = o.now ?? Date.now;
    // Live, the candles that end after the start (the topic holds a day of those of a policy changed since); a replay's,
    // all of them.
    this.latePolicyCheck =
      o.latePolicy &&
      new LatePolicyCheck(
        o.latePolicy,
        this.log,
        this.clockKind === 'wall' ? this.wallNow() : Number.NEGATIVE_INFINITY,
      );
    this.onWriteFailure = o.onWriteFailure;
    this.stopTimeoutMs = o.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  }

  /** The verdicts of `pair` have reached `targetTs` (the event clock of alerts). */
  private reached(pair: string, targetTs: number): void {
    if (targetTs < this.firstEventTime) this.firstEventTime = targetTs;
    if (targetTs > (this.verdictClock.get(pair) ?? Number.NEGATIVE_INFINITY))
      this.verdictClock.set(pair, targetTs);
  }

  /**
   * A re-read prediction whose verdict was remembered from the store: its pair's verdicts have reached its target once
   * its candle is read (as a verdict judged now would). Before, the alerts' clock stopped at the first of them and no
   * rule was evaluated past it for the rest of the replay.
   */
  private reread(p: Prediction): void {
    const candle = this.lastCandle.get(p.pair);
    if (candle !== undefined) this.reached(p.pair, Math.min(p.targetTs, candle));
  }

  /** The newest verdict's target time of this stream (judged, or re-read: `reread`); -Infinity before the first. */
  private streamClock(): number {
    return Math.max(Number.NEGATIVE_INFINITY, ...this.verdictClock.values());
  }

  /**
   * The clock alerts are evaluated on: the wall clock live; on a replay, the verdicts' target time (of the pair
   * that is furthest behind). Not the newest candle: an unpaced replay's candles run hours ahead of the predictions,
   * whose verdicts then come after the candle clock has passed their minutes, and every evaluation saw an empty
   * window (a day the model lost to persistence raised nothing).
   */
  private alertClock(): number {
    if (this.clockKind === 'wall') return this.wallNow();
    // The oldest of the pairs' newest verdicts, over every pair that has candles: one pair's predictions are read
    // ahead of another's (a whole day of BTC's partition before the first of ETH's), and must not carry the clock past
    // minutes whose verdicts of the other pair have not come yet.
    // Not a pair that stopped, though: its verdicts have reached its newest candle (the last predictions timed out)
    // and none waits — no verdict can come for it before another candle. It held the clock, and every other pair's
    // alerts, where its recording ended, for the rest of the replay.
    const waiting = new Set([...this.join.oldestPending().keys()].map((series) => series.split('|')[1]));
    let clock = Number.POSITIVE_INFINITY;
    for (const [pair, lastCandle] of this.lastCandle) {
      const verdicts = this.verdictClock.get(pair) ?? Number.NEGATIVE_INFINITY;
      if (verdicts >= lastCandle && !waiting.has(pair)) continue;
      clock = Math.min(clock, verdicts);
    }
    return clock;
  }

  /**
   * Evaluates the alert rules (at most every `everyMs` of the clock, unless forced). On the event clock one batch can
   * span hours (an unpaced replay takes a day in a few batches): evaluated only at each batch's end, a rule's `for`
   * (15 minutes) was never seen to hold and nothing fired on a day the model lost to persistence. So the times in
   * between are caught up on as a live monitor evaluating every `everyMs` would have (the rolling quality answers for
   * any past minute): thinned to 240 a batch, a replay's batches of 67 hours were evaluated every 16 min 40 s, and `for`
   * and `resolveAfter` were measured between evaluations that missed what came between them — ETH's 24 h skill back
   * below −2 % for five minutes on 2022-05-09 fell between two, and the alert resolved 27 minutes after the condition
   * last held, not an hour.
   *
   * Of those times, only the ones where an evaluation can change something are evaluated (`catchUpTimes`): every
   * other one would see what the one before it saw, and do nothing. Every minute of a year-long jump in event time was
   * 525,600 evaluations, about 25 s of CPU on the event loop.
   */
  evaluateAlerts(force = false): void {
    const a = this.alerts;
    if (a === undefined) return;
    const now = this.alertClock();
    const every = a.everyMs ?? 15_000;
    if (!Number.isFinite(now) || (!force && now - this.lastEvaluation < every)) return;
    if (this.clockKind === 'event') {
      const from = Number.isFinite(this.lastEvaluation) ? this.lastEvaluation : this.firstEventTime;
      if (Number.isFinite(from))
        for (const t of this.catchUpTimes(a.engine, from, now, every)) this.evaluateAlertsAt(a, t);
    }
    this.evaluateAlertsAt(a, now);
  }

  /**
   * The times after `from` and before `to`, on a live monitor's cadence (`from` + k × `every`), at which an evaluation
   * can change what the rules say, each yielded before the next is worked out (it depends on the evaluation): the first
   * at or after a change of the rolling quality's windows the rules read (`RollingQuality.nextChange`), and the first at
   * or after a `for`, `resolveAfter` or `repeatEvery` that runs out (`AlertEngine.nextDeadline`: a reminder the wall
   * clock held back and lets go now, at once); and, when verdicts came since the last evaluation for a minute at or
   * before it that a window still holds, the first time after it (`changedSinceEvaluation`). Nothing else the
   * rules read moves on the event clock (the staleness and champion rules are not evaluated there; the wall-measured
   * ones stand still while a batch is caught up on), so at every other time an evaluation sees the same observations as
   * the one before and changes nothing: the notifications are those of an evaluation at every `every`.
   */
  private *catchUpTimes(engine: AlertEngine, from: number, to: number, every: number): Generator<number> {
    const windows = engine.windowsRead(this.quality);
    const longest = Math.max(0, ...windows);
    for (let t = from; ; ) {
      // A verdict of a minute at or before the last evaluation (another partition read late, a time-out scored after
      // all) changed, at once, the windows that hold that minute after it — not where `nextChange` looks (a minute
      // coming in after `t`, or leaving): with no newer minute, a stretch where a rule held was skipped (the alert
      // fired late, or never). Reset by each evaluation: the first one after `t` sees it.
      const behind = this.changedSinceEvaluation;
      const seenLate = behind <= t && behind + longest > t ? t : Number.POSITIVE_INFINITY;
      const due = Math.min(seenLate, this.quality.nextChange(t, windows), engine.nextDeadline(t, false));
      if (!(due < to)) return;
      // The first time on the cadence after `t` and at or after `due` (which may be `t` itself: see above).
      const next =
        from + Math.max(Math.floor((t - from) / every) + 1, Math.ceil((due - from) / every)) * every;
      if (next >= to) return;
      yield next;
      t = next;
    }
  }

  private evaluateAlertsAt(a: NonNullable<MonitorServiceOptions['alerts']>, now: number): void {
    this.lastEvaluation = now;
    this.changedSinceEvaluation = Number.POSITIVE_INFINITY;
    this.candlesCaughtUp ||= this.candlesReadToEnd();
    this.forgetOldDeadLetters();
    a.engine.evaluate({
      now,
      live: this.clockKind === 'wall',
      quality: this.quality,
      lastCandle: this.lastCandle,
      lastTradeCandle: this.lastTradeCandle,
      lastFeature: this.lastFeature,
      featuresWatchedSince: this.featuresWatchedSince,
      candlesCaughtUp: this.candlesCaughtUp,
      consumerLag: this.consumerLag,
      championCreatedAt: a.championCreatedAt?.(),
      deadLettersLastMinute: this.deadLetterTimes.length,
    });
  }

  /**
   * Drops the rolling quality's minutes older than its longest window. On the event clock, a week behind the newest
   * verdict of this stream, not behind the newest record in the rolling quality: rebuilt from a store that already held
   * a later month (or the rest of this one, a replay run again), that was weeks ahead of the replay, and every verdict it
   * judged was dropped as it was added — no alert fired. And not past where the alert rules are still to be evaluated
   * (`lastEvaluation`, or the first verdict before any): a batch spanning more than the week lost its oldest minutes
   * before the catch-up (`evaluateAlerts`) evaluated them, and the rules saw empty windows there.
   */
  private pruneQuality(): void {
    if (this.clockKind === 'wall') {
      this.quality.prune();
      return;
    }
    const evaluatedTo = Number.isFinite(this.lastEvaluation) ? this.lastEvaluation : this.firstEventTime;
    this.quality.prune(this.alerts ? Math.min(this.streamClock(), evaluatedTo) : this.streamClock());
  }

  /** Keeps the dead letters of the last wall minute (what the `dead_letters` rule counts). */
  private forgetOldDeadLetters(): void {
    const since = this.wallNow() - 60_000;
    if (this.deadLetterTimes.some((t) => t <= since))
      this.deadLetterTimes = this.deadLetterTimes.filter((t) => t > since);
  }

  /**
   * Reads each stage's lag, giving up after LAG_READ_TIMEOUT_MS: a broker that goes silent without closing the
   * connection left Kafka's groupLag waiting for good, and the alert evaluation chained after it never ran (a stage's
   * last known lag is kept meanwhile).
   */
  private async refreshLag(): Promise<void> {
    const signal = AbortSignal.timeout(LAG_READ_TIMEOUT_MS);
    for (const { topic, group } of PIPELINE_GROUPS) {
      const lag = await this.bus.groupLag(topic, group, { signal }).catch(() => undefined);
      if (lag !== undefined) this.consumerLag.set(`${topic.name}/${group}`, lag);
    }
  }

  /** Sets the rolling-quality gauges (every pair, every window, all model versions together) at scrape time. */
  private exportQuality(): void {
    metrics.predictionsWaiting.set(this.join.pendingCount());
    if (this.latePolicyCheck) metrics.latePolicyMismatch.set(this.latePolicyCheck.mismatch ? 1 : 0);
    // Live, now; on a replay, the newest verdict's target time, as the API's windows — not the newest candle, which an
    // unpaced replay reads hours ahead of the predictions (the gauges showed empty windows).
    const end = this.clockKind === 'wall' ? this.join.clock() : this.streamClock();
    const pairs = new Set(this.quality.series().map((s) => s.pair));
    for (const pair of pairs)
      for (const [window, ms] of Object.entries(this.quality.windows)) {
        const f = figures(this.quality.sums(pair, ms, Number.isFinite(end) ? end : this.quality.clock));
        const l = { pair, window };
        metrics.qualityCount.set(l, f.count);
        const set = (g: { set(l: { pair: string; window: string }, v: number): void }, v: number | null) =>
          g.set(l, v ?? Number.NaN);
        set(metrics.qualityMae, f.mae);
        set(metrics.qualityRmse, f.rmse);
        set(metrics.qualityBias, f.bias);
        set(metrics.qualityPersistenceMae, f.persistenceMae);
        set(metrics.qualitySkill, f.skill);
        set(metrics.qualityDirection, f.directionalAccuracy);
        set(metrics.qualityCoverage, f.coverage);
      }
  }

  /**
   * The newest notification of each alert series on `alerts` (what `AlertEngine.restore` takes). The whole topic is
   * read (its retention bounds it), a page at a time, keeping one notification per series: a tail of 1,000 records
   * missed a series firing behind 1,000 notifications of others (an alert storm over many pairs), which was then never
   * resolved once its condition cleared.
   */
  private async readAnnounced(): Promise<AlertNotification[]> {
    const newest = new Map<string, AlertNotification>();
    await this.bus.readPages<AlertNotification>(topics.alerts, (page) => {
      for (const { value: n } of page) {
        const series = `${n.rule}|${n.key}`;
        if (n.at >= (newest.get(series)?.at ?? Number.NEGATIVE_INFINITY)) newest.set(series, n);
      }
    });
    return [...newest.values()];
  }

  async start(): Promise<void> {
    this.unscrape = onScrape(() => this.exportQuality());
    await this.bus.ensureTopics([
      topics.candles,
      topics.predictions,
      topics.predictionErrors,
      topics.alerts,
      topics.dlq,
    ]);
    await this.rebuild();
    // The alerts announced firing before a restart are still firing here: resolved once their condition is clear.
    // Live only: a replay's event clock has nothing to do with the times of alerts another run announced.
    if (this.alerts && this.clockKind === 'wall')
      this.alerts.engine.restore(await this.readAnnounced(), this.wallNow());
    // Before the candles subscription: its first batch evaluates the rules, the features not subscribed to yet.
    if (this.alerts && this.clockKind === 'wall') this.featuresWatchedSince = this.wallNow();
    this.candlesRead = await this.bus.subscribe<Candle>({
      topic: topics.candles,
      // One consumer group per input topic: members of one group that subscribe to different topics may be left
      // without partitions by the group's assignor.
      group: `${this.group}.candles`,
      service: 'monitor',
      from: 'earliest',
      onRevoke: (ps) => {
        for (const p of ps) this.kept.delete(p);
      },
      handle: (batch) => this.handleCandles(batch),
    });
    this.subscriptions.push(this.candlesRead);
    this.predictionsRead = await this.bus.subscribe<Prediction>({
      topic: topics.predictions,
      group: `${this.group}.predictions`,
      service: 'monitor',
      from: 'earliest',
      onRevoke: (ps) => {
        for (const p of ps) this.waiting.delete(p);
      },
      handle: async (batch) => {
        this.throwBackgroundFailure();
        // The waits on the store below end when the batch is given back, and at the stop's deadline: on the in-process
        // bus a stop waits for the batch in hand, and a store that never answers held it for ever.
        const letGo = AbortSignal.any([batch.signal, this.pastStopDeadline.signal]);
        // A prediction is committed only once its verdict is stored, and offsets move only when a batch is read: so
        // many verdicts unstored would hold the group behind the in-process bus's lag limit (50,000, five times this
        // bound: the publisher still brings the next batch), and the publisher of the predictions, held by it, would
        // never bring the batch that moves them. A batch whose verdicts (one at most per prediction) would take the
        // unwritten ones — queued and in flight — past a bound waits for the write: before the join sees it, and raced
        // against its signal: the write waits on a store bounded only by its query timeout (PostgreSQL: 2 minutes),
        // which would hold a rebalance past its timeout; given back, nothing of the batch is judged, so no verdict of it
        // is queued for this member to publish. (Checked on the queued rows alone, once past the bound, the batch that
        // crossed it was judged and the write in flight not counted: 14,000 unstored under a slow store.)
        if (this.verdictWrites.unwritten + batch.records.length > MAX_UNSTORED_VERDICTS)
          await orAbort(this.verdictWrites.flush(), letGo).catch((err: unknown) => {
            // A failed write is thrown here: the next batch is not failed for it as well. Given back (or past the
            // stop's deadline), the write goes on, and its failure, if any, fails the next batch.
            if (!letGo.aborted) this.verdictWrites.takeFailure();
            throw err;
          });
        let waiting = this.waiting.get(batch.partition);
        if (waiting === undefined) {
          waiting = new Map();
          this.waiting.set(batch.partition, waiting);
        }
        // Put back with no await before the join reads them: an `expire` meanwhile would drop them again.
        this.closesReadBack++;
        // Raced against the batch's signal: the read-back (and the flush of the candle copies before it) waits on a
        // store bounded only by its query timeout (PostgreSQL: 2 minutes), which would hold a rebalance past its
        // timeout and have the batch handled by two members. Given back, nothing of the batch is judged here.
        const restored = await orAbort(
          this.forgottenCloses(batch.records.map((r) => r.value)),
          letGo,
        ).finally(() => {
          this.closesReadBack--;
        });
        for (const c of restored) this.join.restoreClose(c);
        const out: PredictionError[] = [];
        for (const r of batch.records) {
          // On the event clock a prediction whose verdict the store had (an earlier run of this replay) moves the
          // alerts' clock as its verdict would have: it is in the rolling quality already, and is not judged again.
          if (this.clockKind === 'event' && this.join.remembers(r.value)) this.reread(r.value);
          const verdicts = this.publishable(this.join.onPrediction(r.value));
          // Waiting for its candle, for its verdict to be stored, or for its dead letter to be published: its offset is
          // not committed yet. The verdict may be older than this read: given before the partition was revoked and
          // assigned back (Kafka), when `onRevoke` forgot what was waiting, and the join does not give it again.
          const key = errorKey(r.value);
          if (
            verdicts.length > 0 ||
            this.join.isWaiting(r.value) ||
            this.unstored.has(key) ||
            this.lettersInFlight.has(key)
          )
            waiting.set(key, r.offset);
          out.push(...verdicts);
        }
        this.judged(out);
        this.evaluateAlerts();
        return this.predictionsCommit(batch.partition, batch.records.at(-1)!.offset + 1n);
      },
    });
    this.subscriptions.push(this.predictionsRead);
    // Where the features are matters only live (the staleness rules are not evaluated on the event clock, where a
    // recording that ends is no outage): a replay does not read every feature vector for nothing.
    if (this.alerts && this.clockKind === 'wall')
      this.subscriptions.push(
        await this.bus.subscribe<FeatureVectorRecord>({
          topic: topics.features,
          group: `${this.group}.features`,
          service: 'monitor',
          from: 'latest',
          handle: (batch) => {
            for (const r of batch.records)
              if (r.value.windowEnd > (this.lastFeature.get(r.value.pair) ?? 0))
                this.lastFeature.set(r.value.pair, r.value.windowEnd);
            return undefined;
          },
        }),
      );
    if (this.alerts) {
      // How many dead letters came lately (only the newest are read).
      this.subscriptions.push(
        await this.bus.subscribe<DeadLetter>({
          topic: topics.dlq,
          group: `${this.group}.dlq`,
          service: 'monitor',
          from: 'latest',
          handle: (batch) => {
            for (const r of batch.records)
              this.deadLetterTimes.push(this.clockKind === 'wall' ? r.timestamp : r.value.ts);
            // Here too, not only when the rules are evaluated: on the event clock none is before the first verdict
            // (or once the predictions stop), and every dead letter read meanwhile was kept.
            this.forgetOldDeadLetters();
            return undefined;
          },
        }),
      );
    }
    // Timeouts also on a quiet stream (live: the pair stopped, no candle will come to trigger them); alerts too.
    this.expiry = setInterval(() => {
      this.judged(this.publishable(this.join.expire(this.candlesReadToEnd(), this.predictionsReadToEnd())));
      // Also retries verdicts a failed write left unstored, should no batch come to carry them.
      if (this.verdictWrites.backlog > 0)
        void this.verdictWrites.flush().catch((err) => this.log.error({ err }, 'verdicts not stored yet'));
      if (this.alerts && this.evaluating === undefined)
        this.evaluating = this.refreshLag()
          .then(() => this.evaluateAlerts())
          .catch((err) => this.log.error({ err }, 'alert evaluation failed'))
          .finally(() => {
            this.evaluating = undefined;
          });
    }, 5_000);
    this.expiry.unref();
  }

  /**
   * A candles batch: each candle's close into the join, which scores the predictions that waited for it. The verdicts
   * are bounded as a predictions batch's are (MAX_UNSTORED_VERDICTS, queued and in flight): a candle is not taken
   * while they are at the bound, the write is waited for first. Before, this path had no bound: a burst of late
   * candles after an outage (the candle stage down, a trades refill) matured up to the day of predictions the join
   * holds, and a slow store left all their verdicts in memory at once. One candle's verdicts too (the predictions of its
   * minute, or of a gap it proves: a candle closing a long gap decides every prediction waiting before it) are taken
   * from the join at most as many as the bound leaves room for, the write waited for between (`MaturityJoin.settle`).
   */
  private async handleCandles(batch: Batch<Candle>): Promise<CommitPlan> {
    // A background write that failed fails this batch, as a direct write did; first of all, before the join has
    // seen the batch (a verdict it gave would not come again on the re-delivery).
    this.throwBackgroundFailure();
    // The wait on the store below ends when the batch is given back, and at the stop's deadline (as for predictions).
    const letGo = AbortSignal.any([batch.signal, this.pastStopDeadline.signal]);
    let out: PredictionError[] = [];
    const kept = this.kept.get(batch.partition) ?? { candles: [], newest: Number.NEGATIVE_INFINITY };
    this.kept.set(batch.partition, kept);
    /** How many more verdicts the bound leaves room for (queued, in flight and this batch's not queued yet). */
    const room = () => MAX_UNSTORED_VERDICTS - this.verdictWrites.unwritten - out.length;
    /** Waits, while there is no room, for the store to take the verdicts given so far. */
    const makeRoom = async () => {
      while (room() <= 0) {
        // Judged (and queued) before the wait: the join gave them and will not give them again.
        this.judged(out);
        out = [];
        this.stats.candlesHeldForStore++;
        this.candlesHeld++;
        try {
          await orAbort(this.verdictWrites.flush(), letGo).catch((err: unknown) => {
            // A failed write is thrown here (the batch is read again: the candles taken already change nothing in
            // the join); given back, or past the stop's deadline, the write goes on and a failure fails the next batch.
            if (!letGo.aborted) this.verdictWrites.takeFailure();
            throw err;
          });
        } finally {
          this.candlesHeld--;
        }
        // Given back as the write ended (Kafka: `onRevoke` dropped what this member kept of the partition): no further.
        letGo.throwIfAborted();
      }
    };
    /** The verdicts the candles taken decided and the join has not given yet (the bound held them back), all of them. */
    const settle = async () => {
      while (this.join.settling) {
        if (room() <= 0) await makeRoom();
        out.push(...this.publishable(this.join.settle(room())));
      }
    };
    for (const r of batch.records) {
      // A candle is taken only once the candles before it have given every verdict (a batch given back halfway left
      // some to this one), and with room for at least one. Awaited only then: a candles batch is judged without a
      // break, as before, unless it waits for the store (the predictions handler would run in between).
      if (this.join.settling || room() <= 0) {
        await settle();
        await makeRoom();
      }
      const c = r.value;
      this.latePolicyCheck?.onCandle(c);
      out.push(...this.publishable(this.join.onCandle(c, room())));
      // Once per offset: a batch that failed halfway is read again from its start.
      const last = kept.candles.at(-1);
      if (last === undefined || r.offset > last.offset)
        kept.candles.push({ windowEnd: c.windowEnd, offset: r.offset });
      if (c.windowEnd > kept.newest) kept.newest = c.windowEnd;
      if (c.windowEnd > (this.lastCandle.get(c.pair) ?? 0)) this.lastCandle.set(c.pair, c.windowEnd);
      if (!c.filled && c.windowEnd > (this.lastTradeCandle.get(c.pair) ?? 0))
        this.lastTradeCandle.set(c.pair, c.windowEnd);
    }
    if (this.join.settling) await settle();
    out.push(...this.publishable(this.join.expire(this.candlesReadToEnd(), this.predictionsReadToEnd())));
    this.candleCopies?.add(batch.records.map((r) => r.value));
    this.judged(out);
    this.evaluateAlerts();
    // A day behind this partition's newest candle (the join keeps each pair's closes a day behind the pair's own):
    // not behind the clock, which the wall or another partition read ahead may carry past candles a waiting
    // prediction still needs. Pairs sharing a partition share its horizon: one far behind another there (a
    // backfill) may lose, across a restart, closes the join kept.
    const horizon = kept.newest - this.retentionMs;
    const { candles } = kept;
    let drop = 0;
    while (drop < candles.length - 1 && candles[drop]!.windowEnd < horizon) drop++;
    candles.splice(0, drop);
    return new Map([[batch.partition, candles[0]?.offset ?? batch.records.at(-1)!.offset + 1n]]);
  }

  /**
   * Whether every candle in the topic has been read — false before the subscription exists (its first batch may come
   * while it is being made): a prediction times out only then (`MaturityJoin.expire`).
   */
  private candlesReadToEnd(): boolean {
    // Not while a batch waits for the store halfway through (`handleCandles`): the batch in the handler's hands counts
    // as read, and a prediction waiting for one of its candles not taken yet would time out.
    return this.candlesHeld === 0 && (this.candlesRead?.readToEnd() ?? false);
  }

  /**
   * Reads back, from the candles this monitor stores (`candles` option), for the join, the closes of predictions read
   * more than a day of their pair's candles after them (`MaturityJoin.forgotten`): a replay whose candles are all read
   * before its predictions (`run --replay 2022-05 --no-news` read its 89,280 candles before the first prediction), a
   * predictor catching up on a backlog. The join keeps a day of closes in memory; these were written off
   * `target_before_retention`, every one of them, though their candles had come. One range read per pair and batch.
   * Each minute as first emitted where `candleFirstEmissions` keeps it (under revise): the candles table's latest
   * revision would score the prediction against another close than a join that had held it.
   */
  private async forgottenCloses(predictions: readonly Prediction[]): Promise<Candle[]> {
    if (this.candleTable === undefined || this.candleCopies === undefined) return [];
    const wanted = new Map<string, { from: number; to: number }>();
    for (const p of predictions) {
      if (!this.join.forgotten(p)) continue;
      const r = wanted.get(p.pair);
      if (r === undefined) wanted.set(p.pair, { from: p.targetTs, to: p.targetTs });
      else {
        r.from = Math.min(r.from, p.targetTs);
        r.to = Math.max(r.to, p.targetTs);
      }
    }
    if (wanted.size === 0) return [];
    // The candles read a moment ago may not be written yet (a replay reads a day of them in a tenth of a second).
    await this.candleCopies.flush().catch((err: unknown) => {
      this.candleCopies?.takeFailure(); // thrown here: the next batch is not failed for it as well
      throw err;
    });
    const out: Candle[] = [];
    for (const [pair, { from, to }] of wanted) {
      const stored = await this.candleTable.range(pair, from, to + 1);
      if (this.candleFirstEmissionsTable === undefined) {
        out.push(...stored);
        continue;
      }
      // The candles table holds each minute's latest revision; the join judges by the first emission (as it does a
      // close it still holds), so a revised minute's first emission is taken where it is kept (under revise).
      const first = new Map<string, Candle>();
      for (const c of await this.candleFirstEmissionsTable.range(pair, from, to + 1))
        first.set(`${c.exchange}|${c.windowEnd}`, c);
      for (const c of stored) out.push(first.get(`${c.exchange}|${c.windowEnd}`) ?? c);
    }
    return out;
  }

  /**
   * Whether every prediction in the topic has been read — false before the subscription exists: until then the join
   * keeps each pair's closes for the predictions a restart re-reads (`MaturityJoin.expire`).
   */
  private predictionsReadToEnd(): boolean {
    // Not while a batch waits for closes read back (`forgottenCloses`): the batch in the handler's hands counts as
    // read, and the candles read meanwhile dropped the closes of its predictions that the join still held.
    return this.closesReadBack === 0 && (this.predictionsRead?.readToEnd() ?? false);
  }

  private predictionsCommit(partition: number, end: bigint): CommitPlan {
    const waiting = this.waiting.get(partition);
    let oldest = end;
    if (waiting) for (const o of waiting.values()) if (o < oldest) oldest = o;
    return new Map([[partition, oldest]]);
  }

  /** The rolling quality of the longest window and the keys already judged, from the store. */
  private async rebuild(): Promise<void> {
    const latest = await this.store.maxTargetTs();
    if (latest === undefined) return;
    const longest = Math.max(...Object.values(this.quality.windows));
    const records = await this.store.byTargetTime(latest - longest, latest + 1);
    for (const e of records) this.quality.add(e);
    this.join.remember(records);
    this.stats.rebuilt = records.length;
    this.log.info({ records: records.length, upTo: latest }, 'rolling quality rebuilt from the store');
  }

  /**
   * The verdicts `predictions.errors` takes. One it refuses — of inputs their own schemas took, an absurd candle (a
   * close of 1e-308 makes the percent error infinite) — is dead-lettered and its prediction no longer waits: queued,
   * it failed every write of the verdicts merged with it, for ever, and with them every batch read after.
   */
  private publishable(verdicts: PredictionError[]): PredictionError[] {
    if (verdicts.length === 0) return verdicts;
    return verdicts.filter((e) => {
      const r = validate(topics.predictionErrors.schema, e);
      if (r.success) return true;
      const reason = `publish to ${topics.predictionErrors.name}: invalid value: ${summarise(r.error)}`;
      this.log.error({ key: errorKey(e), reason }, 'a verdict its topic refuses: dead-lettered');
      const letter = deadLetter({
        service: 'monitor',
        origin: topics.predictionErrors.name,
        kind: 'invalid',
        reason,
        payload: e,
        key: e.pair,
      });
      // Retried until the broker takes it, its prediction kept uncommitted meanwhile (a crash re-reads and letters it
      // again): published once, a dead letter lost to a broker away for a moment left the prediction with no record
      // anywhere, neither in the store nor in the dead-letter topic.
      const key = errorKey(e);
      this.lettersInFlight.add(key);
      void publishDurably('monitor:dlq', this.stopping.signal, () => this.bus.publish(topics.dlq, [letter]))
        .then(() => {
          this.lettersInFlight.delete(key);
          for (const w of this.waiting.values()) w.delete(key);
        })
        .catch((err) =>
          this.log.error({ err, key }, 'dead letter not published; dead-lettered again on restart'),
        );
      return false;
    });
  }

  /**
   * A batch's verdicts, judged: into the rolling quality at once (the alert rules read it after each batch), and
   * queued to be published and stored (`verdictWrites`).
   */
  private judged(fresh: readonly PredictionError[]): void {
    if (fresh.length === 0) return;
    for (const e of fresh) {
      if (this.quality.add(e) && e.targetTs < this.changedSinceEvaluation)
        this.changedSinceEvaluation = Math.floor(e.targetTs / MINUTE) * MINUTE;
      this.reached(e.pair, e.targetTs);
    }
    this.pruneQuality();
    for (const e of fresh) this.unstored.add(errorKey(e));
    this.verdictWrites.add(fresh);
  }

  /**
   * Publishes, then stores (see the commit protocol); then the predictions are no longer waiting (their offsets may
   * be committed) and the verdicts are told (`onErrors`). One call at a time (`WriteBehind`); a failed call keeps its
   * verdicts for the next.
   */
  private async publishAndStore(records: readonly PredictionError[]): Promise<void> {
    await this.bus.publish(topics.predictionErrors, records);
    faultPoint('monitor:published');
    await this.store.write(records);
    this.stats.published += records.length;
    this.stats.stored += records.length;
    for (const e of records) {
      const revision = this.join.isRevision(e);
      if (revision) this.stats.revised++;
      metrics.errorRecords.inc({ pair: e.pair, status: e.status, revision: String(revision) });
      const key = errorKey(e);
      this.unstored.delete(key);
      for (const w of this.waiting.values()) w.delete(key);
    }
    this.onErrors?.(records);
  }

  /** The error of a failed background write (verdicts or the dashboard's candles), once; fails the caller's batch. */
  private throwBackgroundFailure(): void {
    for (const w of [this.verdictWrites, this.candleCopies]) {
      const failed = w?.takeFailure();
      if (failed !== undefined) throw failed;
    }
  }

  /** Resolves once every batch read so far is judged and its verdicts stored (and the dashboard's candles written). */
  async caughtUp(): Promise<void> {
    for (const s of this.subscriptions) await s.caughtUp();
    await this.flushRetrying(this.verdictWrites);
    if (this.candleCopies) await this.flushRetrying(this.candleCopies);
  }

  /**
   * A flush that fails is tried again with back-off, as the bus re-reads a failed batch (a database restarting must
   * not fail the caller): each failure is told to `onWriteFailure`; once the service is stopping, the failure is
   * thrown instead.
   */
  private async flushRetrying(w: WriteBehind<unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await w.flush();
      } catch (err) {
        w.takeFailure(); // told here: the next batch is not failed for it as well
        this.onWriteFailure?.(err);
        if (this.stopping.signal.aborted) throw err;
        await sleep(backoffCap(attempt, FLUSH_BACKOFF), undefined, { signal: this.stopping.signal }).catch(
          () => {},
        );
      }
    }
  }

  private unscrape: (() => void) | undefined;
  /** Aborted by `stop`: ends `flushRetrying`'s back-offs (the next failure is thrown). */
  private readonly stopping = new AbortController();

  /**
   * Stops reading, then waits for the store to take the verdicts and candles still queued — up to `stopTimeoutMs`
   * from the call, a batch in hand that waits on the store included: a store that stops answering (PostgreSQL accepting
   * the connection and never replying, a DuckDB file on a hung disk) held the stop for ever, until Kubernetes killed
   * the pod with nothing in the log. What the store has not taken by then is named in one warning and left: no offset
   * of a prediction whose verdict is not stored was committed (`predictionsCommit`: it is waiting until its write ends,
   * and no commit follows the subscriptions' stop), so a monitor on Kafka reads those predictions again at its next
   * start and judges them; the candles are re-read too (committed a day behind). `cryptocast run`'s in-process bus ends
   * with the process: there, as at a crash, they are not judged again. A write still in flight may yet land (the
   * store upserts).
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.unscrape?.();
    if (this.expiry) clearInterval(this.expiry);
    const deadline = setTimeout(
      () =>
        this.pastStopDeadline.abort(
          new HoldBatch(
            `the monitor is stopping and its store did not answer within ${this.stopTimeoutMs} ms`,
          ),
        ),
      this.stopTimeoutMs,
    );
    try {
      for (const s of this.subscriptions) await s.stop();
      const gaveUp = this.pastStopDeadline.signal;
      const verdictsFailure = await orAbort(this.verdictWrites.flush(), gaveUp).then(
        () => undefined,
        (err: unknown) => err,
      );
      const candlesFailure =
        this.candleCopies &&
        (await orAbort(this.candleCopies.flush(), gaveUp).then(
          () => undefined,
          (err: unknown) => err,
        ));
      const verdicts = this.verdictWrites.unwritten;
      const candles = this.candleCopies?.unwritten ?? 0;
      if (verdicts > 0 || candles > 0)
        this.log.warn(
          {
            verdicts,
            candles,
            predictions: [...this.unstored].slice(0, 5),
            ...(gaveUp.aborted
              ? { stopTimeoutMs: this.stopTimeoutMs }
              : { err: verdictsFailure ?? candlesFailure }),
          },
          `stopped with ${verdicts} verdicts not stored and ${candles} candles for the dashboard not written: the store ` +
            `${gaveUp.aborted ? `did not answer within ${this.stopTimeoutMs} ms` : 'refused them'}; their predictions ` +
            'were not committed (a monitor on Kafka judges them again at its next start) and the candles are re-read',
        );
      // The alerts still being published: their broker, not the store, but bounded by the same deadline.
      await orAbort(this.alertsAnnounced, gaveUp).catch(() =>
        this.log.warn({ stopTimeoutMs: this.stopTimeoutMs }, 'stopped before every alert was published'),
      );
    } finally {
      clearTimeout(deadline);
    }
  }
}

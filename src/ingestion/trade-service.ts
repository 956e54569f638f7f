import { ByPair } from '../core/by-pair.ts';
import { log } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import type { PriceGuardOptions } from '../core/price-guard.ts';
import type { Bus } from '../runtime/bus.ts';
import { publishDurably, publishOrDeadLetter } from '../runtime/publish-durably.ts';
import type { Candle } from '../schemas/candle.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import { topics } from '../schemas/topics.ts';
import type { Trade, TradeEvent, Watermark } from '../schemas/trade.ts';
import { TradeDeduplicator } from './dedup.ts';
import { ResumePoints } from './resume-points.ts';
import type { SourceSink, TradeSource } from './source.ts';
import { TradePlausibility } from './trade-plausibility.ts';

/**
 * The trades stage as a service: sources (live connectors, REST backfill, file replay) → deduplicated
 * trades and watermarks on `trades`, rejects on `dlq`. Everything a source emits is published in the
 * order it was emitted, so a replay gives the same log on every transport.
 */
export interface TradeServiceStats {
  trades: number;
  duplicates: number;
  watermarks: number;
  rejects: number;
  /** Trades refused as implausible (absurd price against the recent median, or a price or size out of TRADE_BOUNDS). */
  implausible: number;
  publishRetries: number;
}

/**
 * Records of each `trades` partition read on start for the resume points: pairs share the 4 partitions, and every
 * followed pair puts a watermark there each second, so this reaches back minutes at the busiest times.
 */
const RESUME_TAIL_RECORDS = 20_000;

/**
 * How far before the log's end (its newest record) the resume read reaches besides the tail: a pair quiet behind
 * RESUME_TAIL_RECORDS of others on its partition (its exchange's connection down while another exchange's pairs go
 * on) is found there. About what the exchanges' REST refills reach (`RESUME_MAX_AGE_MS` of `cryptocast run`).
 */
export const RESUME_REACH_MS = 60 * 60_000;

export class TradeService {
  readonly stats: TradeServiceStats = {
    trades: 0,
    duplicates: 0,
    watermarks: 0,
    rejects: 0,
    implausible: 0,
    publishRetries: 0,
  };
  private readonly bus: Bus;
  private readonly dedup = new TradeDeduplicator();
  private readonly plausibility: TradePlausibility;
  private readonly storedCandles: readonly Candle[];

  /**
   * `storedCandles`: the newest candle of each pair an earlier process stored (`cryptocast run`, whose in-process bus
   * starts empty: see `resume`).
   */
  constructor(bus: Bus, opts: { priceGuard?: PriceGuardOptions; storedCandles?: readonly Candle[] } = {}) {
    this.bus = bus;
    this.plausibility = new TradePlausibility(opts.priceGuard);
    this.storedCandles = opts.storedCandles ?? [];
    // The trades of a stored minute's last second it names were taken (`Candle.closingTradeIds`): a restart refill, which
    // asks from a second before the resume point, delivers them again. Seen, they are dropped here; the others of that
    // second the earlier process never took, and they go on (late for that minute, as in a run that never stopped).
    for (const c of this.storedCandles)
      for (const tradeId of c.closingTradeIds ?? [])
        this.dedup.accept({ exchange: c.exchange, pair: c.pair, tradeId } as Trade);
  }

  /** The plausible trades; the others go to `dlq` with the reason. Every source's trades pass here. */
  private async plausible(source: string, trades: readonly Trade[], signal?: AbortSignal): Promise<Trade[]> {
    const ok: Trade[] = [];
    const dead: DeadLetter[] = [];
    for (const t of trades) {
      const why = this.plausibility.why(t);
      if (why === undefined) ok.push(t);
      else
        dead.push(
          deadLetter({ service: 'trades', origin: source, kind: 'implausible', reason: why, payload: t }),
        );
    }
    if (dead.length > 0) {
      this.stats.implausible += dead.length;
      this.stats.rejects += dead.length;
      log.warn({ source, count: dead.length, reason: dead[0]!.reason }, 'implausible trades dead-lettered');
      await this.durably(source, signal, () => this.bus.publish(topics.dlq, dead));
    }
    return ok;
  }

  /** Runs the sources concurrently until all finish (finite) or `signal` aborts (live). */
  async run(sources: readonly TradeSource[], signal: AbortSignal): Promise<void> {
    await this.bus.ensureTopics([topics.trades, topics.dlq]);
    if (sources.some((s) => s.resumeFrom !== undefined)) await this.resume(sources);
    const results = await Promise.allSettled(sources.map((s) => s.run(this.sink(s.name, signal), signal)));
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        log.error({ err: r.reason, source: sources[i]!.name }, 'source stopped with an error');
    });
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined && failed.status === 'rejected') throw failed.reason;
  }

  /**
   * Live sources pick up where the previous process left the log (`ResumePoints`). The tail's trades are marked as
   * seen, so what a refill fetches again (a time-paged REST overlaps the last trade's second) is not published twice.
   */
  private async resume(sources: readonly TradeSource[]): Promise<void> {
    const tail = await this.bus.readTail(topics.trades, RESUME_TAIL_RECORDS);
    // A stored candle's minute was closed: every trade up to its end was taken, as a watermark there says. The log's
    // tail, where there is one, knows better (the newest trade id and time) and is taken as well.
    const points = ResumePoints.fromTail(
      this.storedCandles.map(
        (c): TradeEvent => ({ v: 1, type: 'watermark', exchange: c.exchange, pair: c.pair, ts: c.windowEnd }),
      ),
    );
    const take = (e: TradeEvent) => {
      points.add(e);
      if (e.type === 'trade') this.dedup.accept(e);
    };
    // The hour before the log's end too, a page at a time (folded, not held): the tail of each partition misses a
    // pair quiet behind that many records of the others on it, which then started afresh at the first connection and
    // what it traded meanwhile was never refilled. Its trades are marked seen as the tail's are.
    let logEnd = Number.NEGATIVE_INFINITY;
    for (const r of tail) if (r.timestamp > logEnd) logEnd = r.timestamp;
    let older = 0;
    if (tail.length > 0)
      await this.bus.readPages(
        topics.trades,
        (page) => {
          older += page.length;
          for (const r of page) take(r.value);
        },
        { since: logEnd - RESUME_REACH_MS },
      );
    for (const r of tail) take(r.value);
    for (const s of sources) s.resumeFrom?.(points);
    log.info(
      { records: tail.length, lastHourRecords: older },
      'resuming live sources from the tail of trades and its last hour',
    );
  }

  sink(name: string, signal?: AbortSignal): SourceSink {
    return {
      trades: async (batch: readonly Trade[]) => {
        const trades = await this.plausible(name, batch, signal);
        const fresh = this.dedup.filter(trades);
        this.stats.duplicates += trades.length - fresh.length;
        if (fresh.length === 0) return;
        const out = new Set<Trade>();
        const published = await publishOrDeadLetter(this.bus, topics.trades, fresh, {
          source: name,
          service: 'trades',
          signal,
          onRetry: () => this.stats.publishRetries++,
          onRefused: () => this.stats.rejects++,
          onPublished: (t) => out.add(t),
        }).catch((err: unknown) => {
          // Not published (a stop while the broker is away, a dead letter the bus refused too): taken back, as the
          // live source takes them back from its own deduplicator (`deliver`). Kept as seen, the same trades delivered
          // again (its refill's retry) were dropped here as duplicates: lost. What went out before the error stays seen.
          for (const t of fresh) if (!out.has(t)) this.dedup.forget(t);
          throw err;
        });
        this.stats.trades += published.length;
        // One inc per series and batch: an inc hashes its labels, and one per trade was 2 % of a replay.
        const perSeries = new ByPair((exchange, pair) => ({ exchange, pair, n: 0 }));
        for (const t of published) perSeries.get(t.exchange, t.pair).n++;
        for (const c of perSeries.values()) metrics.trades.inc({ exchange: c.exchange, pair: c.pair }, c.n);
        const last = published[published.length - 1];
        if (last === undefined) return;
        metrics.lastTrade.set({ exchange: last.exchange, pair: last.pair }, last.tradeTs / 1000);
      },
      watermark: async (wm: Watermark) => {
        await this.durably(name, signal, () => this.bus.publish<TradeEvent>(topics.trades, [wm]));
        this.stats.watermarks++;
      },
      reject: async (dl: DeadLetter) => {
        this.stats.rejects++;
        log.warn({ source: name, kind: dl.kind, reason: dl.reason }, 'rejected input');
        await this.durably(name, signal, () => this.bus.publish(topics.dlq, [dl]));
      },
    };
  }

  private durably(
    source: string,
    signal: AbortSignal | undefined,
    publish: () => Promise<void>,
  ): Promise<void> {
    return publishDurably(source, signal, publish, () => this.stats.publishRetries++);
  }
}

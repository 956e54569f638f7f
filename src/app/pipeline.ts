import { CandleService } from '../candles/candle-service.ts';
import type { StreamConfig } from '../config/config.ts';
import { unlessStopped } from '../core/unless-stopped.ts';
import { FeatureService, RESTART_WARMUP_CANDLES } from '../features/feature-service.ts';
import { FeatureWriter } from '../features/feature-writer.ts';
import type { FeatureStore } from '../features/store/store.ts';
import type { TradeSource } from '../ingestion/source.ts';
import { TradeService } from '../ingestion/trade-service.ts';
import type { Bus } from '../runtime/bus.ts';
import type { Candle } from '../schemas/candle.ts';

/**
 * The market-data pipeline, trades → candles, assembled on any bus. `cryptocast run` uses it on the
 * in-process bus; tests run the very same assembly on Kafka and compare the outputs.
 */
export interface MarketDataPipeline {
  readonly trades: TradeService;
  readonly candles: CandleService;
  readonly features?: FeatureService;
  readonly writer?: FeatureWriter;
  /** Resolves when the (finite) sources are exhausted and every trade has been turned into candles. */
  readonly finished: Promise<void>;
  stop(): Promise<void>;
}

export async function startMarketDataPipeline(args: {
  bus: Bus;
  sources: readonly TradeSource[];
  config: Pick<StreamConfig, 'interval' | 'graceMs' | 'latePolicy'> & { maxPriceFactor?: number };
  onCandles?(candles: readonly Candle[]): void;
  signal?: AbortSignal;
  /**
   * On a stop, end at the stages' next batch instead of working through what the sources already published: for a
   * recording, whose backlog can be minutes of work and is replayed again by the next run. Live trades are not
   * replayable: their backlog (seconds) is always finished.
   */
  leaveBacklogOnStop?: boolean;
  /**
   * Aborted when the stages can never work through their backlog (the store cannot be written: `cryptocast run` on a
   * full disk): the pipeline then ends at the next batch even live, instead of waiting for a catch-up that never comes.
   */
  abandonBacklog?: AbortSignal;
  /** With a store: candles → features → store as well. */
  store?: FeatureStore;
  /**
   * The newest candle of each pair an earlier run stored (`cryptocast run --source live`, whose in-process bus starts
   * empty): the candle stage continues after them, and the live connectors refill over REST from their end.
   */
  storedCandles?: readonly Candle[];
  /**
   * Under `revise`: the stored minutes of the revision horizon up to `storedCandles` (`resumeFromStore`), each its
   * latest revision: the candle stage takes them back for revisions, so a late trade for one of them revises it as
   * it would have without the restart.
   */
  revisableCandles?: readonly Candle[];
  /**
   * The stored candles leading up to `storedCandles` (`resumeWarmupCandles`), oldest first: the feature stage is seeded
   * with them, so a resumed live run does not warm its indicators up again from an empty bus.
   */
  warmupCandles?: readonly Candle[];
  /** The feature writer also writes the news set (signals from `news.signals`); `holdNews`: see FeatureWriter. */
  news?: { holdNews: boolean };
  /** Publishes candles itself (a candle replay) beside the trade sources; the pipeline finishes after it. */
  candleFeed?(signal: AbortSignal): Promise<unknown>;
}): Promise<MarketDataPipeline> {
  const { bus, config } = args;
  const candles = new CandleService({
    bus,
    interval: config.interval,
    graceMs: config.graceMs,
    latePolicy: config.latePolicy,
    onCandles: args.onCandles,
    // A live run on a store resumes from it when restarted: its candles say which trades of their last second it took.
    closingTradeIds: args.storedCandles !== undefined,
    stored:
      args.storedCandles === undefined
        ? undefined
        : [...(args.revisableCandles ?? []), ...args.storedCandles],
  });
  await candles.start();
  let features: FeatureService | undefined;
  let writer: FeatureWriter | undefined;
  if (args.store !== undefined) {
    features = new FeatureService(bus, 'features', RESTART_WARMUP_CANDLES, {
      maxPriceFactor: config.maxPriceFactor,
      seed: args.warmupCandles,
    });
    writer = new FeatureWriter(bus, args.store, 'feature-writer', {
      news: args.news !== undefined,
      holdNews: args.news?.holdNews ?? false,
    });
    await features.start();
    await writer.start();
  }
  const trades = new TradeService(bus, {
    priceGuard: { maxFactor: config.maxPriceFactor },
    storedCandles: args.storedCandles,
    revisableCandles: args.revisableCandles,
  });
  const abort = new AbortController();
  // A signal that aborted before this point (SIGTERM during start-up) fires no event any more: check it first.
  if (args.signal?.aborted) abort.abort();
  else args.signal?.addEventListener('abort', () => abort.abort(), { once: true });
  const finished = (async () => {
    await Promise.all([trades.run(args.sources, abort.signal), args.candleFeed?.(abort.signal)]);
    const caughtUp = (async () => {
      await candles.caughtUp();
      await features?.caughtUp();
      await writer?.caughtUp();
    })();
    // Stopped, with a backlog that can be replayed (a recording outruns the stages): stop at the next batch.
    if (args.leaveBacklogOnStop) await unlessStopped(caughtUp, abort.signal);
    else if (args.abandonBacklog) await unlessStopped(caughtUp, args.abandonBacklog);
    else await caughtUp;
  })();
  return {
    trades,
    candles,
    features,
    writer,
    finished,
    stop: async () => {
      abort.abort();
      await finished.catch(() => {});
      await candles.stop();
      await features?.stop();
      await writer?.stop();
    },
  };
}

import { CandleService } from '../candles/candle-service.ts';
import type { StreamConfig } from '../config/config.ts';
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
  /** Resolves when the (finite) sources are exhausted and every trade has been turned into candles. */
  readonly finished: Promise<void>;
  stop(): Promise<void>;
}

export async function startMarketDataPipeline(args: {
  bus: Bus;
  sources: readonly TradeSource[];
  config: Pick<StreamConfig, 'interval' | 'graceMs' | 'latePolicy'>;
  onCandles?(candles: readonly Candle[]): void;
  signal?: AbortSignal;
}): Promise<MarketDataPipeline> {
  const { bus, config } = args;
  const candles = new CandleService({
    bus,
    interval: config.interval,
    graceMs: config.graceMs,
    latePolicy: config.latePolicy,
    onCandles: args.onCandles,
  });
  await candles.start();
  const trades = new TradeService(bus);
  const abort = new AbortController();
  args.signal?.addEventListener('abort', () => abort.abort(), { once: true });
  const finished = (async () => {
    await trades.run(args.sources, abort.signal);
    await candles.caughtUp();
  })();
  return {
    trades,
    candles,
    finished,
    stop: async () => {
      abort.abort();
      await finished.catch(() => {});
      await candles.stop();
    },
  };
}

import type { DeadLetter } from '../schemas/dlq.ts';
import type { Trade, Watermark } from '../schemas/trade.ts';
import type { ResumePoints } from './resume-points.ts';

/**
 * Where a trade source delivers. Every method may apply back-pressure by returning a promise; a source
 * awaits it before reading more.
 */
export interface SourceSink {
  /** Normalised, schema-valid trades (not yet deduplicated: the sink does that by exchange, pair, tradeId). */
  trades(trades: readonly Trade[]): Promise<void> | void;
  /** Event-time progress for a pair (see `WatermarkSchema`). */
  watermark(wm: Watermark): Promise<void> | void;
  /** A message the source could not use: it goes to the `dlq` topic, and the source carries on. */
  reject(dl: DeadLetter): Promise<void> | void;
}

/** A producer of trades: a live connector, a REST backfill, or a file replay. */
export interface TradeSource {
  /** e.g. `kraken-ws`, `binance-ws`, `coinbase-ws`, `kraken-rest`, `replay`. */
  readonly name: string;
  /**
   * Runs until the source is exhausted (finite sources) or `signal` aborts (live sources). Never throws for
   * a bad message or a dropped connection: those are rejected or retried. Throws only for unusable
   * configuration (unknown pair, bad URL).
   */
  run(sink: SourceSink, signal: AbortSignal): Promise<void>;
  /**
   * Live sources only, called before `run`: where each pair stood in the `trades` log when the previous process
   * stopped (see `ResumePoints`). The source refills what traded since over REST before it reads the stream.
   */
  resumeFrom?(points: ResumePoints): void;
}

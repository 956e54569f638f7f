import type { SourceSink } from '../../src/ingestion/source.ts';
import type { DeadLetter } from '../../src/schemas/dlq.ts';
import type { Trade, Watermark } from '../../src/schemas/trade.ts';

/** A sink that records everything a source emits, in order. */
export class RecordingSink implements SourceSink {
  readonly received: Trade[] = [];
  readonly watermarks: Watermark[] = [];
  readonly dead: DeadLetter[] = [];

  trades(trades: readonly Trade[]): void {
    this.received.push(...trades);
  }
  watermark(wm: Watermark): void {
    this.watermarks.push(wm);
  }
  reject(dl: DeadLetter): void {
    this.dead.push(dl);
  }

  /** Distinct trade ids of a pair, sorted (duplicates are for the deduplicator downstream). */
  ids(pair: string): number[] {
    return [...new Set(this.received.filter((t) => t.pair === pair).map((t) => Number(t.tradeId)))].sort(
      (a, b) => a - b,
    );
  }
}

import pino from 'pino';
import type { SourceSink, TradeSource } from '../../../src/ingestion/source.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import type { Trade, Watermark } from '../../../src/schemas/trade.ts';

/** Quiet by default; `CRYPTOCAST_LOG_LEVEL=debug` shows the connectors' logs while debugging a test. */
export const testLog = pino({ level: process.env.CRYPTOCAST_LOG_LEVEL ?? 'silent' });

/**
 * A connector's timings in tests against a local exchange: watermarks every 25 ms, reconnects and REST retries within
 * tens of milliseconds, quiet logs.
 */
export const FAST_CONNECTOR = {
  watermarkIntervalMs: 25,
  backoff: { initialMs: 10, maxMs: 50 },
  restBackoff: { initialMs: 5, maxMs: 20 },
  log: testLog,
} as const;

/** What a source emitted, and when (`at`, epoch ms). */
export type SinkEvent = { at: number } & (
  | { kind: 'trades'; trades: readonly Trade[] }
  | { kind: 'watermark'; wm: Watermark }
  | { kind: 'reject'; dl: DeadLetter }
);

/** A sink that keeps everything a source emits, in one ordered log (so tests can check what came before what). */
export class LogSink implements SourceSink {
  readonly events: SinkEvent[] = [];
  readonly trades_: Trade[] = [];
  readonly watermarks: Watermark[] = [];
  readonly dead: DeadLetter[] = [];

  trades(trades: readonly Trade[]): void {
    if (trades.length === 0) return;
    this.events.push({ at: Date.now(), kind: 'trades', trades: [...trades] });
    this.trades_.push(...trades);
  }
  watermark(wm: Watermark): void {
    this.events.push({ at: Date.now(), kind: 'watermark', wm });
    this.watermarks.push(wm);
  }
  reject(dl: DeadLetter): void {
    this.events.push({ at: Date.now(), kind: 'reject', dl });
    this.dead.push(dl);
  }

  /** Every trade received, in order (duplicates included: the connectors promise none). */
  get received(): Trade[] {
    return this.trades_;
  }

  /** Trade ids of a pair as numbers, in arrival order. */
  ids(pair: string): number[] {
    return this.trades_.filter((t) => t.pair === pair).map((t) => Number(t.tradeId));
  }

  /** When the trade with this id was delivered (epoch ms). */
  deliveredAt(tradeId: string): number | undefined {
    return this.events.find((e) => e.kind === 'trades' && e.trades.some((t) => t.tradeId === tradeId))?.at;
  }

  /** Watermarks emitted within [from, to] (epoch ms). */
  watermarksBetween(from: number, to: number): Watermark[] {
    return this.events.flatMap((e) => (e.kind === 'watermark' && e.at >= from && e.at <= to ? [e.wm] : []));
  }

  /**
   * For each watermark, how far its event time is behind the wall clock at the moment it was emitted, minus
   * `delayMs` (the connector's stated delay): 0 when the watermark is exactly "wall clock − delay".
   */
  watermarkLagsBeyond(delayMs: number): number[] {
    return this.events.flatMap((e) => (e.kind === 'watermark' ? [e.at - delayMs - e.wm.ts] : []));
  }

  /** Distinct ids of a pair, sorted. */
  distinctIds(pair: string): number[] {
    return [...new Set(this.ids(pair))].sort((a, b) => a - b);
  }
}

/**
 * A `LogSink` whose `trades` throws, taking none of the batch, once for each batch `refuseOnce` picks (set it, the
 * next batch it matches is refused and it is cleared): a bus away, a store giving up.
 */
export class RefusingSink extends LogSink {
  /** The batches refused, in order. */
  readonly refused: Trade[][] = [];
  refuseOnce: ((trades: readonly Trade[]) => boolean) | undefined;

  override trades(trades: readonly Trade[]): void {
    if (this.refuseOnce?.(trades)) {
      this.refuseOnce = undefined;
      this.refused.push([...trades]);
      throw new Error('the sink refused the batch (a test: the bus away)');
    }
    super.trades(trades);
  }
}

/** Runs a source until `fn` is done, then stops it and waits for it to end (always). */
export async function running<S extends TradeSource, K extends LogSink = LogSink>(
  source: S,
  fn: (sink: K, source: S) => Promise<void>,
  sink: K = new LogSink() as K,
): Promise<K> {
  const abort = new AbortController();
  const done = source.run(sink, abort.signal);
  try {
    await fn(sink, source);
  } finally {
    abort.abort();
    await done;
  }
  return sink;
}

/** `lo..hi` inclusive. */
export function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

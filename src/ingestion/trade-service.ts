import { log } from '../core/log.ts';
import type { Bus } from '../runtime/bus.ts';
import { topics } from '../runtime/topic.ts';
import type { DeadLetter } from '../schemas/dlq.ts';
import type { Trade, TradeEvent, Watermark } from '../schemas/trade.ts';
import { TradeDeduplicator } from './dedup.ts';
import type { SourceSink, TradeSource } from './source.ts';

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
}

export class TradeService {
  readonly stats: TradeServiceStats = { trades: 0, duplicates: 0, watermarks: 0, rejects: 0 };
  private readonly bus: Bus;
  private readonly dedup = new TradeDeduplicator();

  constructor(bus: Bus) {
    this.bus = bus;
  }

  /** Runs the sources concurrently until all finish (finite) or `signal` aborts (live). */
  async run(sources: readonly TradeSource[], signal: AbortSignal): Promise<void> {
    await this.bus.ensureTopics([topics.trades, topics.dlq]);
    const results = await Promise.allSettled(sources.map((s) => s.run(this.sink(s.name), signal)));
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        log.error({ err: r.reason, source: sources[i]!.name }, 'source stopped with an error');
    });
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined && failed.status === 'rejected') throw failed.reason;
  }

  sink(name: string): SourceSink {
    return {
      trades: async (trades: readonly Trade[]) => {
        const fresh = this.dedup.filter(trades);
        this.stats.duplicates += trades.length - fresh.length;
        if (fresh.length === 0) return;
        await this.bus.publish<TradeEvent>(topics.trades, fresh);
        this.stats.trades += fresh.length;
      },
      watermark: async (wm: Watermark) => {
        await this.bus.publish<TradeEvent>(topics.trades, [wm]);
        this.stats.watermarks++;
      },
      reject: async (dl: DeadLetter) => {
        this.stats.rejects++;
        log.warn({ source: name, kind: dl.kind, reason: dl.reason }, 'rejected input');
        await this.bus.publish(topics.dlq, [dl]);
      },
    };
  }
}

import type { PredictionsStore } from '../../src/inference/predictions-store.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';

/**
 * An in-memory PredictionsStore for API tests and benchmarks, with the real backends' semantics: upsert by
 * (pair, windowEnd, modelVersion); `history` over windowEnd in [from, to), ordered by (windowEnd, modelVersion),
 * `after` exclusive, at most `limit` (≤ 1000) rows, and a page never ends inside a windowEnd's group (it ends
 * before the group, or, when the whole page is one windowEnd, takes the whole group).
 */
export class MemoryPredictionsStore implements PredictionsStore {
  /** Stands in for the embedded backend (the interface names only the real ones). */
  readonly kind = 'duckdb' as const;
  private readonly rows = new Map<string, Prediction>();
  /** Set to make every call fail (store outage). */
  failing = false;
  /** Calls to `history`, for tests. */
  historyCalls = 0;

  async migrate(): Promise<void> {}

  async write(predictions: readonly Prediction[]): Promise<void> {
    this.check();
    for (const p of predictions) this.rows.set(`${p.pair}|${p.windowEnd}|${p.modelVersion}`, p);
  }

  async history(
    pair: string,
    fromTs: number,
    toTs: number,
    opts: { limit?: number; after?: number; modelVersion?: number } = {},
  ): Promise<Prediction[]> {
    this.check();
    this.historyCalls++;
    const limit = Math.min(opts.limit ?? 1000, 1000);
    if (!Number.isInteger(limit) || limit < 1)
      throw new Error(`limit must be a positive integer, got ${limit}`);
    const all = [...this.rows.values()]
      .filter(
        (p) =>
          p.pair === pair &&
          p.windowEnd >= fromTs &&
          p.windowEnd < toTs &&
          (opts.after === undefined || p.windowEnd > opts.after) &&
          (opts.modelVersion === undefined || p.modelVersion === opts.modelVersion),
      )
      .sort((a, b) => a.windowEnd - b.windowEnd || a.modelVersion - b.modelVersion);
    if (all.length <= limit) return all;
    const last = all[limit - 1]!.windowEnd;
    if (all[limit]!.windowEnd !== last) return all.slice(0, limit);
    const kept = all.slice(0, limit).filter((p) => p.windowEnd !== last);
    return kept.length > 0 ? kept : all.filter((p) => p.windowEnd === last);
  }

  async range(pair: string, fromTs: number, toTs: number): Promise<Prediction[]> {
    this.check();
    return [...this.rows.values()]
      .filter((p) => p.pair === pair && p.windowEnd >= fromTs && p.windowEnd < toTs)
      .sort((a, b) => a.windowEnd - b.windowEnd || a.modelVersion - b.modelVersion);
  }

  async columns(pair: string, fromTs: number, toTs: number, names: readonly string[]) {
    const rows = await this.range(pair, fromTs, toTs);
    const camel = (n: string) => n.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    return Object.fromEntries(
      names.map((n) => [n, rows.map((p) => (p as unknown as Record<string, number>)[camel(n)] ?? null)]),
    );
  }

  async latest(pair: string): Promise<Prediction | undefined> {
    this.check();
    let best: Prediction | undefined;
    for (const p of this.rows.values())
      if (
        p.pair === pair &&
        (best === undefined ||
          p.windowEnd > best.windowEnd ||
          (p.windowEnd === best.windowEnd && p.modelVersion > best.modelVersion))
      )
        best = p;
    return best;
  }

  async count(): Promise<number> {
    return this.rows.size;
  }

  async close(): Promise<void> {}

  private check(): void {
    if (this.failing) throw new Error('store unavailable (test)');
  }
}

/** A valid prediction of `pair` for the candle closing at `windowEnd` (5-minute horizon, model v1). */
export function prediction(pair: string, windowEnd: number, over: Partial<Prediction> = {}): Prediction {
  const close = pair.startsWith('BTC') ? 60_000 + ((windowEnd / 60_000) % 100) : 3_000;
  const predictedReturnBps = 1.5;
  const predictedClose = close * Math.exp(predictedReturnBps / 10_000);
  return {
    v: 1,
    exchange: 'kraken',
    pair,
    windowEnd,
    horizonMs: 300_000,
    targetTs: windowEnd + 300_000,
    close,
    predictedReturnBps,
    predictedClose,
    p10: predictedClose * 0.998,
    p90: predictedClose * 1.002,
    modelName: 'cryptocast-price',
    modelVersion: 1,
    featureSet: 'technical',
    featureSetVersion: 1,
    createdAt: windowEnd + 120,
    latencyMs: 120,
    ...over,
  };
}

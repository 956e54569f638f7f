import { candleFiles, readOhlcv } from '../candles/ohlcv-files.ts';
import { NEWS_SET, TECHNICAL_SET } from '../features/feature-writer.ts';
import { NEWS_COLUMNS } from '../features/news.ts';
import type { FeatureStore } from '../features/store/store.ts';
import { FEATURE_COLUMNS, TechnicalFeatures } from '../features/technical.ts';
import { type Dataset, DatasetBuilder, DatasetError } from './dataset.ts';

/**
 * Where a dataset's rows come from: candle files (features computed here with the very code the live feature
 * service runs) or the feature store (what the live pipeline wrote). Both feed the same `DatasetBuilder`.
 */

/**
 * The technical columns a model uses by default: every scale-free one. Raw price levels (SMA, EMA, MACD, ATR in
 * dollars) and OBV (in coins) are left out: one model serves BTC and ETH, whose prices differ 15-fold, and a tree
 * split on "SMA > 30,000" only says which coin it is and which year; the `_rel` versions carry the same information
 * relative to the close.
 */
const PRICE_LEVEL = new Set([
  'sma_20',
  'ema_12',
  'ema_26',
  'macd',
  'macd_signal',
  'macd_hist',
  'atr_14',
  'obv',
]);
export const MODEL_COLUMNS: readonly string[] = FEATURE_COLUMNS.filter((c) => !PRICE_LEVEL.has(c));

/** A comma-separated pair list as given on the command line (`BTC-USD,eth/usd`) → canonical pairs. */
export function parsePairs(list: string | undefined): string[] | undefined {
  return list?.split(',').map((p) => p.trim().toUpperCase().replace('-', '/'));
}

export interface NewsAt {
  at(coin: string, t: number): (number | null)[];
}

export interface SourceReport {
  dataset: Dataset;
  candles: number;
  rejects: { where: string; reason: string }[];
  /** Gaps in the candles that restarted the indicators' warm-up. */
  resets: number;
}

/** Candle files → technical features (and news as available at each close) → dataset. */
export async function datasetFromCandles(
  path: string,
  opts: {
    horizonMs: number;
    pair?: string;
    news?: NewsAt;
    columns?: readonly string[];
    onFile?: (done: number, total: number) => void;
  },
): Promise<SourceReport> {
  const source = opts.news ? [...FEATURE_COLUMNS, ...NEWS_COLUMNS] : [...FEATURE_COLUMNS];
  const columns = opts.columns ?? (opts.news ? [...MODEL_COLUMNS, ...NEWS_COLUMNS] : MODEL_COLUMNS);
  const builder = new DatasetBuilder(source, { horizonMs: opts.horizonMs, columns });
  const engine = new TechnicalFeatures();
  const rejects: SourceReport['rejects'] = [];
  const files = candleFiles(path);
  let candles = 0;
  for (const [i, file] of files.entries()) {
    for await (const batch of readOhlcv(file, { pair: opts.pair })) {
      for (const r of batch.rejects) rejects.push({ where: `${r.file} line ${r.line}`, reason: r.reason });
      for (const c of batch.candles) {
        candles++;
        const bad = engine.problem(c);
        if (bad !== undefined) {
          rejects.push({ where: `${c.pair} ${new Date(c.windowStart).toISOString()}`, reason: bad });
          continue;
        }
        let v: ReturnType<TechnicalFeatures['update']>;
        try {
          v = engine.update(c);
        } catch (err) {
          rejects.push({
            where: `${c.pair} ${new Date(c.windowStart).toISOString()}`,
            reason: (err as Error).message,
          });
          continue;
        }
        // Point in time: the news of the candle's base coin as available at the candle's close.
        if (opts.news) v.values.push(...opts.news.at(v.pair.split('/')[0]!, v.windowEnd));
        builder.add(v);
      }
    }
    opts.onFile?.(i + 1, files.length);
  }
  return { dataset: builder.build(), candles, rejects, resets: engine.resets };
}

/**
 * The latest `days` of the feature store → dataset: the pairs given (default: every pair the store has), up to the
 * newest windowEnd stored. What `cryptocast train --store` and the trainer service read.
 */
export async function datasetFromStoreWindow(
  store: FeatureStore,
  opts: { horizonMs: number; days: number; pairs?: readonly string[]; withNews?: boolean },
): Promise<SourceReport> {
  const latest = await store.latest(TECHNICAL_SET);
  const pairs = opts.pairs ?? [...latest.keys()];
  if (pairs.length === 0) throw new DatasetError('the feature store has no technical features yet');
  const to = Math.max(...pairs.map((p) => latest.get(p) ?? 0)) + 1;
  return datasetFromStore(store, { ...opts, pairs, from: to - opts.days * 86_400_000, to });
}

/**
 * The feature store's history → dataset: technical vectors of each pair in [from, to), joined with the
 * `news_sentiment` row of the same windowEnd when `withNews` (written by `feature-writer --with-news` from the
 * signals available at that close; a row without one gets missing news values).
 */
export async function datasetFromStore(
  store: FeatureStore,
  opts: {
    horizonMs: number;
    pairs: readonly string[];
    from: number;
    to: number;
    withNews?: boolean;
    columns?: readonly string[];
  },
): Promise<SourceReport> {
  await store.migrate(TECHNICAL_SET);
  if (opts.withNews) await store.migrate(NEWS_SET);
  const source = opts.withNews ? [...FEATURE_COLUMNS, ...NEWS_COLUMNS] : [...FEATURE_COLUMNS];
  const columns = opts.columns ?? (opts.withNews ? [...MODEL_COLUMNS, ...NEWS_COLUMNS] : MODEL_COLUMNS);
  const builder = new DatasetBuilder(source, { horizonMs: opts.horizonMs, columns });
  let candles = 0;
  for (const pair of opts.pairs) {
    // The target of the last rows lies up to one horizon after `to`: read that far, but only as targets.
    const rows = await store.history(TECHNICAL_SET, pair, opts.from, opts.to + opts.horizonMs);
    const news = opts.withNews
      ? new Map(
          (await store.history(NEWS_SET, pair, opts.from, opts.to)).map(
            (r) => [r.windowEnd, r.values] as const,
          ),
        )
      : undefined;
    const missingNews = NEWS_COLUMNS.map(() => null);
    for (const r of rows) {
      candles++;
      const inWindow = r.windowEnd < opts.to;
      builder.add({
        pair: r.pair,
        windowEnd: r.windowEnd,
        close: r.close,
        ready: r.ready && inWindow,
        values: news ? [...r.values, ...(news.get(r.windowEnd) ?? missingNews)] : r.values,
      });
    }
  }
  return { dataset: builder.build(), candles, rejects: [], resets: 0 };
}

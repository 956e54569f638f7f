import { setImmediate as nextTurn } from 'node:timers/promises';
import { candleFiles, readOhlcv } from '../candles/ohlcv-files.ts';
import { ERR, fail } from '../core/errors.ts';
import { NEWS_SET, TECHNICAL_SET } from '../features/feature-writer.ts';
import { NEWS_COLUMNS } from '../features/news.ts';
import type { FeatureStore } from '../features/store/store.ts';
import { FEATURE_COLUMNS, TechnicalFeatures } from '../features/technical.ts';
import { requirePair } from '../ingestion/symbols.ts';
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

/** A comma-separated pair list as given on the command line (`BTC-USD,eth/usd`) → canonical pairs (CC_ERR_PAIR). */
export function parsePairs(list: string | undefined): string[] | undefined {
  return list?.split(',').map((p) => requirePair(p, '--pairs'));
}

export interface NewsAt {
  at(coin: string, t: number): (number | null)[];
}

export interface SourceReport {
  dataset: Dataset;
  candles: number;
  /** Candles read per pair (before the warm-up and the target lookup drop rows). */
  candlesPerPair: Map<string, number>;
  /** Rows that could not be used (a bad line, an impossible candle). */
  rejects: { where: string; reason: string }[];
  /**
   * Whole files left out (not rows): a file whose name says another pair than `--pair` (`otherPair`), a zip without a
   * CSV inside. Kept apart from `rejects` so a count of them is not said to be candles refused.
   */
  leftOut: { file: string; reason: string; otherPair?: string }[];
  /** Candle files read (the history's and the candles proper), those left out included. */
  files: number;
  /** Gaps in the candles that restarted the indicators' warm-up. */
  resets: number;
  /** With a history: the first windowEnd of the candles proper (the history's rows all come before it). */
  testFrom?: number;
}

/**
 * Throws CC_ERR_INPUT when the candle files gave no candle at all, saying why (an empty file, every file of another
 * pair than --pair, or every row rejected: the first reason, e.g. a file without a pair column and no --pair), instead
 * of a dataset of 0 rows that fails further on (a walk-forward's minimum, an ISO date of an empty range).
 */
export function requireCandles(source: SourceReport, path: string, pair?: string): void {
  if (source.candles > 0) return;
  const rejected = source.rejects.length;
  const leftOut = source.leftOut.length;
  const n = (k: number) => k.toLocaleString('en-US');
  let why: string;
  if (rejected > 0)
    why = `no usable candles in ${path}: all ${n(rejected)} rows were rejected (${source.rejects[0]!.reason})`;
  else if (leftOut === 0) why = `no candles in ${path}: it has no rows`;
  else {
    // Of how many: a folder may also hold files with no rows (not left out, nothing in them).
    const files =
      leftOut === source.files
        ? leftOut === 1
          ? 'its one file'
          : `all ${n(leftOut)} files`
        : `${n(leftOut)} of its ${n(source.files)} files (the others have no rows)`;
    if (source.leftOut.every((f) => f.otherPair !== undefined)) {
      const pairs = [...new Set(source.leftOut.map((f) => f.otherPair))].join(', ');
      why = `no candles of --pair ${pair} in ${path}: ${files} ${leftOut === 1 && leftOut === source.files ? 'is' : 'are'} of ${pairs} (leave --pair out to read each file as its name says)`;
    } else
      why = `no candles in ${path}: ${files} ${leftOut === 1 && leftOut === source.files ? 'was' : 'were'} left out (${source.leftOut.find((f) => f.otherPair === undefined)!.reason})`;
  }
  throw fail(ERR.INPUT, why);
}

/**
 * What a command says about the candles it could not use, one line each: the first five files left out whole and a
 * count per reason when there were more (a folder of daily klines of two pairs with --pair has hundreds of the other
 * pair's), then the first five rows rejected and a count when there were more.
 */
export function sourceProblemLines(source: SourceReport): string[] {
  const n = (k: number) => k.toLocaleString('en-US');
  const lines = source.leftOut
    .slice(0, 5)
    .map((f) =>
      f.otherPair === undefined
        ? `left out ${f.file}: ${f.reason}`
        : `left out ${f.file}: its name says ${f.otherPair}, not --pair`,
    );
  if (source.leftOut.length > 5) {
    const byWhy = new Map<string, number>();
    for (const f of source.leftOut) {
      const why = f.otherPair === undefined ? f.reason : `of ${f.otherPair}`;
      byWhy.set(why, (byWhy.get(why) ?? 0) + 1);
    }
    lines.push(
      `… ${n(source.leftOut.length)} files left out in all (${[...byWhy].map(([why, k]) => `${n(k)} ${why}`).join(', ')})`,
    );
  }
  if (source.leftOut.some((f) => f.otherPair !== undefined))
    lines.push('(--pair is for files without a pair; leave it out to read each file as its name says)');
  for (const r of source.rejects.slice(0, 5)) lines.push(`rejected ${r.where}: ${r.reason}`);
  if (source.rejects.length > 5) lines.push(`… ${n(source.rejects.length)} candles rejected in all`);
  return lines;
}

/**
 * Candle files → technical features (and news as available at each close) → dataset. With `history` (a file or
 * folder of earlier candles, which must all end before the candles begin), the history's rows come first, computed
 * by an indicator engine of their own, and `testFrom` says where the candles proper begin.
 */
export async function datasetFromCandles(
  path: string,
  opts: {
    horizonMs: number;
    pair?: string;
    news?: NewsAt;
    columns?: readonly string[];
    history?: string;
    onFile?: (done: number, total: number) => void;
    /** Aborted: the reading stops at the next batch of candles (5,000), and the promise rejects with its reason. */
    signal?: AbortSignal;
  },
): Promise<SourceReport> {
  const source = opts.news ? [...FEATURE_COLUMNS, ...NEWS_COLUMNS] : [...FEATURE_COLUMNS];
  const columns = opts.columns ?? (opts.news ? [...MODEL_COLUMNS, ...NEWS_COLUMNS] : MODEL_COLUMNS);
  const builder = new DatasetBuilder(source, { horizonMs: opts.horizonMs, columns });
  const rejects: SourceReport['rejects'] = [];
  const leftOut: SourceReport['leftOut'] = [];
  const history = opts.history === undefined ? [] : candleFiles(opts.history);
  const files = [...history, ...candleFiles(path)];
  let engine = new TechnicalFeatures();
  let resets = 0;
  let historyEnd = Number.NEGATIVE_INFINITY;
  let testFrom: number | undefined;
  let candles = 0;
  const candlesPerPair = new Map<string, number>();
  for (const [i, file] of files.entries()) {
    const isHistory = i < history.length;
    if (i === history.length && history.length > 0) {
      resets += engine.resets;
      engine = new TechnicalFeatures(); // the candles proper warm up on their own
    }
    // The history's pair option does not apply to it (its files say their pair, e.g. Binance klines).
    for await (const batch of readOhlcv(file, { pair: isHistory ? undefined : opts.pair })) {
      for (const r of batch.rejects)
        if (r.line === 0) leftOut.push({ file: r.file, reason: r.reason, otherPair: r.otherPair });
        else rejects.push({ where: `${r.file} line ${r.line}`, reason: r.reason });
      for (const c of batch.candles) {
        candles++;
        candlesPerPair.set(c.pair, (candlesPerPair.get(c.pair) ?? 0) + 1);
        const bad = engine.problem(c);
        if (bad !== undefined) {
          rejects.push({ where: `${c.pair} ${new Date(c.windowStart).toISOString()}`, reason: bad });
          continue;
        }
        if (isHistory) historyEnd = Math.max(historyEnd, c.windowEnd);
        else if (history.length > 0) {
          if (c.windowEnd <= historyEnd)
            throw new DatasetError(
              `--history must end before the candles begin: it ends ${new Date(historyEnd).toISOString()}, and the candles have ${c.pair} at ${new Date(c.windowEnd).toISOString()}`,
            );
          testFrom = Math.min(testFrom ?? Number.POSITIVE_INFINITY, c.windowEnd);
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
      // A zip of klines is read and parsed without I/O to wait for: the event loop turns here, or a stop signal
      // would be heard only once every file is read (16 s for 14 months of two pairs).
      if (opts.signal) {
        await nextTurn();
        opts.signal.throwIfAborted();
      }
    }
    opts.onFile?.(i + 1, files.length);
  }
  return {
    dataset: builder.build(),
    candles,
    candlesPerPair,
    rejects,
    leftOut,
    files: files.length,
    resets: resets + engine.resets,
    testFrom,
  };
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
  const candlesPerPair = new Map<string, number>();
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
    candlesPerPair.set(pair, rows.length);
    for (const r of rows) {
      candles++;
      if (r.windowEnd >= opts.to) builder.addTargetOnly(r.pair, r.windowEnd, r.close);
      else
        builder.add({
          pair: r.pair,
          windowEnd: r.windowEnd,
          close: r.close,
          ready: r.ready,
          values: news ? [...r.values, ...(news.get(r.windowEnd) ?? missingNews)] : r.values,
        });
    }
  }
  return { dataset: builder.build(), candles, candlesPerPair, rejects: [], leftOut: [], files: 0, resets: 0 };
}

import { statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { catalogued, ERR, fail } from '../core/errors.ts';
import { NewsDeduplicator } from '../news/dedup.ts';
import { RecordedNewsSource } from '../news/recorded.ts';
import type { NewsItem } from '../schemas/news.ts';
import type { NewsSignal } from '../schemas/news-signal.ts';
import { createBackend } from '../sentiment/backends.ts';
import { SentimentError } from '../sentiment/labels.ts';
import { SentimentScorer, sentimentCacheFile } from '../sentiment/scorer.ts';
import { signalsFor } from '../sentiment/signals.ts';
import { NEWS_COLUMNS, NewsFeatures } from './news.ts';

/** What `--news` reads, for the messages that refuse something else. */
const EXPECTED =
  'expected a news recording: a CSV with ";" between the columns date;title;text;source;url, gzip ok ' +
  '(like crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz)';

/**
 * A candle this long before a coin's first signal or after its last is outside the recording (the longest half-life
 * and count window): within it, no news is an ordinary quiet day.
 */
const BEYOND_MS = 86_400_000;

export interface NewsRecordingFeatures {
  /** The news columns of `coin` as available at `t`. */
  at(coin: string, t: number): (number | null)[];
  /**
   * Undefined when every time asked so far lay within the recording's span for its coin; else the warning to print.
   * Candles before a coin's first signal get empty news columns; more than a day after its last, the EWM means still
   * carry the last scores (a weighted mean keeps its value as it decays), months old, with counts of 0 — a join
   * that looks like news and is none.
   */
  outsideSpan(): string | undefined;
}

/**
 * Scores a news recording with the chosen sentiment backend (the live pipeline's default, the local LLM, unless
 * told otherwise; answers cached in .data/sentiment-cache.jsonl so a re-run costs nothing) and prepares the per-coin
 * point-in-time features.
 */
export async function newsFeaturesFrom(path: string, backendName: string): Promise<NewsRecordingFeatures> {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) throw fail(ERR.INPUT, `--news ${path}: no such file; ${EXPECTED}`);
  if (!stat.isFile()) throw fail(ERR.INPUT, `--news ${path} is not a file: ${EXPECTED}`);
  const items: NewsItem[] = [];
  // As the news service does before publishing (and the writer's news rows are made of what it published): a story
  // listed twice, or syndicated under the same title, is one item — else the batch counts it twice and the streaming
  // features for the same recording differ.
  const dedup = new NewsDeduplicator();
  let rejected = 0;
  let firstReason: string | undefined;
  await new RecordedNewsSource({ file: path }).run(
    {
      news: (xs) => void items.push(...xs.filter((n) => dedup.accept(n))),
      reject: (dl) => {
        rejected++;
        firstReason ??= dl.reason;
      },
    },
    new AbortController().signal,
  );
  // A file that is not a news recording yields no item: refused, not joined as news features that are all neutral.
  if (items.length === 0)
    throw fail(
      ERR.INPUT,
      `--news ${path}: no news items in it${rejected > 0 ? ` (all ${rejected} rows rejected; the first: ${firstReason})` : ''}: ${EXPECTED}`,
    );
  let scorer: SentimentScorer;
  try {
    scorer = new SentimentScorer({
      primary: createBackend({ backend: backendName }),
      cacheFile: sentimentCacheFile(),
    });
  } catch (err) {
    throw catalogued(err, ERR.CONFIG);
  }
  const byCoin = new Map<string, NewsSignal[]>();
  const scored = items.filter((i) => i.coins.length > 0);
  const bar = new cliProgress.SingleBar(
    { format: 'news sentiment {bar} {value}/{total} items · {eta_formatted} left', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(scored.length, 0);
  let empty = 0;
  try {
    for (const item of scored) {
      try {
        for (const s of await signalsFor(item, scorer))
          byCoin.set(s.coin, [...(byCoin.get(s.coin) ?? []), s]);
      } catch (err) {
        if (!(err instanceof SentimentError && err.kind === 'bad-input')) throw err;
        empty++;
      }
      bar.increment();
    }
  } finally {
    bar.stop();
    await scorer.close();
  }
  // NewsFeatures evaluates at times that never go back, but candles are read file by file: a second pair of the same
  // coin (BTC/USD, then BTC/USDT from another file or venue) starts over at an earlier time, which threw "time went
  // backwards". Each coin keeps one evaluator per such restart, and a time is answered by the one furthest along
  // that is not past it (a new one when every one is). The values depend only on the time and the signals, so every
  // pair gets what it would alone.
  const evaluators = new Map<string, NewsFeatures[]>();
  const featuresAt = (coin: string, t: number): NewsFeatures | undefined => {
    const signals = byCoin.get(coin);
    if (signals === undefined) return undefined;
    const list = evaluators.get(coin) ?? [];
    evaluators.set(coin, list);
    let best: NewsFeatures | undefined;
    for (const f of list) if (f.time <= t && (best === undefined || f.time > best.time)) best = f;
    if (best === undefined) {
      best = new NewsFeatures(signals);
      list.push(best);
    }
    return best;
  };
  const { cacheHits, fallbacks } = scorer.stats;
  process.stderr.write(
    `news: ${items.length} items${dedup.duplicates ? ` (${dedup.duplicates} duplicates dropped)` : ''} → ${[...byCoin].map(([c, ss]) => `${c} ${ss.length}`).join(', ')} signals (${scorer.primary.name}; ${cacheHits} cached, ${fallbacks} by the baseline fallback${empty ? `, ${empty} without text` : ''})\n`,
  );
  const none = NEWS_COLUMNS.map(() => null);
  const span = new Map<string, { first: number; last: number }>();
  for (const [coin, signals] of byCoin) {
    const times = signals.map((s) => s.availableAt);
    span.set(coin, { first: Math.min(...times), last: Math.max(...times) });
  }
  const seen = { rows: 0, before: 0, after: 0, oldestMs: 0 };
  const day = (t: number) => new Date(t).toISOString().slice(0, 10);
  return {
    at: (asked, t) => {
      const coin = asked === 'XBT' ? 'BTC' : asked;
      const s = span.get(coin);
      if (s) {
        seen.rows++;
        if (t < s.first - BEYOND_MS) seen.before++;
        else if (t > s.last + BEYOND_MS) {
          seen.after++;
          seen.oldestMs = Math.max(seen.oldestMs, t - s.last);
        }
      }
      return featuresAt(coin, t)?.at(t) ?? [...none];
    },
    outsideSpan: () => {
      if (seen.before + seen.after === 0) return undefined;
      const all = [...span.values()];
      const first = Math.min(...all.map((s) => s.first));
      const last = Math.max(...all.map((s) => s.last));
      const parts = [
        ...(seen.before > 0
          ? [`${seen.before} more than 24 h before its coin's first signal (news columns empty)`]
          : []),
        ...(seen.after > 0
          ? [
              `${seen.after} more than 24 h after its coin's last signal (the EWM means still carry the last scores, up to ${Math.round(seen.oldestMs / 86_400_000)} days old; the counts are 0)`,
            ]
          : []),
      ];
      return (
        `warning: --news ${path} covers ${day(first)} to ${day(last)}, but ${seen.before + seen.after} of ${seen.rows} ` +
        `rows are outside it: ${parts.join('; ')}. Give a news recording of the candles' dates.`
      );
    },
  };
}

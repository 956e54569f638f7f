import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readOhlcv } from '../candles/ohlcv-files.ts';
import { ERR, fail } from '../core/errors.ts';
import { unlessStopped } from '../core/unless-stopped.ts';
import { NewsDeduplicator } from '../news/dedup.ts';
import type { NewsSource } from '../news/source.ts';
import type { Bus } from '../runtime/bus.ts';
import type { Candle } from '../schemas/candle.ts';
import type { NewsItem } from '../schemas/news.ts';
import { topics } from '../schemas/topics.ts';

/**
 * A replay at the level of candles, for recordings of candles (Binance's 1-minute klines) rather than trades, played
 * together with the recorded news of the same time: `cryptocast run --replay 2022-05` shows every pipeline on real
 * data, the LUNA collapse of May 2022 included.
 *
 * The candles of every pair are merged in time order and published on `candles` (the trades stage has nothing to
 * do); news items are published on `news` in the same event time — an item goes out once the candles have reached
 * the moment it could first be read (its `fetchedAt`), never before, so the news features stay point in time. At `max`
 * speed everything goes as fast as the stages take it; at N× the event clock runs N times the wall clock.
 */
export interface CandleReplayOptions {
  bus: Bus;
  /** Per symbol, the folders of its daily or monthly kline files (src/data/locations.ts: klineFolders). */
  klines: readonly { symbol: string; folders: readonly string[] }[];
  /** Event-time range [from, to). */
  from: number;
  to: number;
  /** Where news come from (a recording); optional. */
  news?: NewsSource;
  speed?: 'max' | number;
  exchange?: string;
  signal?: AbortSignal;
  /** After each minute is published (its news first, then its candles). */
  onMinute?: (stats: Readonly<CandleReplayStats>) => void;
}

export interface CandleReplayStats {
  candles: number;
  news: number;
  /** Kline rows the files rejected (unreadable or impossible values). */
  rejects: number;
  /** Symbols without klines for the range (the others play). */
  missingSymbols: string[];
  /** The last minute published (its candles' windowEnd). */
  eventTs: number;
  /** The range played, for progress. */
  from: number;
  to: number;
}

/** The kline files of a folder whose day (or month) overlaps [from, to), in order. */
function filesFor(folder: string, from: number, to: number): string[] {
  return readdirSync(folder)
    .filter((f) => /\.(zip|csv|gz)$/i.test(f) && !/checksum/i.test(f))
    .sort()
    .map((f) => {
      const d = /(\d{4})-(\d{2})(?:-(\d{2}))?/.exec(f);
      if (!d) return undefined;
      const start = Date.UTC(Number(d[1]), Number(d[2]) - 1, d[3] ? Number(d[3]) : 1);
      const end = d[3] ? start + 86_400_000 : Date.UTC(Number(d[1]), Number(d[2]), 1);
      return end > from && start < to ? join(folder, f) : undefined;
    })
    .filter((f): f is string => f !== undefined);
}

/**
 * The kline files of each symbol for [from, to), and the symbols without any. No file for any symbol is refused:
 * `run --replay` calls this before it starts anything (a month nobody recorded used to start the API first).
 */
export function klineFiles(o: Pick<CandleReplayOptions, 'klines' | 'from' | 'to'>): {
  files: Map<string, string[]>;
  missing: string[];
} {
  const files = new Map<string, string[]>();
  const missing: string[] = [];
  for (const { symbol, folders } of o.klines) {
    const found = folders.flatMap((f) => filesFor(f, o.from, o.to));
    if (found.length === 0) missing.push(symbol);
    else files.set(symbol, found);
  }
  if (files.size === 0) {
    // The download that fills exactly this gap (it used to say --from 2022-05 whatever was asked).
    const first = new Date(o.from).toISOString().slice(0, 7);
    const last = new Date(o.to - 1).toISOString().slice(0, 7);
    const symbols = missing.join(',');
    const fetch =
      `./bin/cryptocast data fetch --from ${first}${last === first ? '' : ` --to ${last}`}` +
      (symbols === 'BTCUSDT,ETHUSDT' ? '' : ` --symbols ${symbols}`);
    throw fail(
      ERR.INPUT,
      `no 1-minute klines of ${missing.join(', ')} for ${new Date(o.from).toISOString().slice(0, 10)}..${new Date(o.to - 1).toISOString().slice(0, 10)} in ${[...new Set(o.klines.flatMap((k) => k.folders))].join(', ') || 'any data folder (none exists)'}`,
      { hint: `download them: ${fetch} (or set CRYPTOCAST_SHARED_DATA)` },
    );
  }
  return { files, missing };
}

/**
 * All candles of [from, to), merged by windowEnd (then pair). A minute found in two folders (the shared recording
 * and a download) is taken once; rows a file rejects are counted.
 */
async function loadCandles(
  o: CandleReplayOptions,
): Promise<{ candles: Candle[]; rejects: number; missing: string[] }> {
  const out: Candle[] = [];
  let rejects = 0;
  const { files: bySymbol, missing } = klineFiles(o);
  for (const files of bySymbol.values()) {
    const seen = new Set<number>();
    for (const file of files)
      for await (const batch of readOhlcv(file)) {
        rejects += batch.rejects.length;
        for (const c of batch.candles) {
          if (c.windowStart < o.from || c.windowStart >= o.to || seen.has(c.windowStart)) continue;
          seen.add(c.windowStart);
          out.push({
            v: 1,
            exchange: o.exchange ?? 'binance',
            pair: c.pair,
            interval: '1m',
            windowStart: c.windowStart,
            windowEnd: c.windowEnd,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
            ...(c.trades === undefined ? {} : { trades: c.trades }),
            ...(c.vwap === undefined ? {} : { vwap: c.vwap }),
            filled: c.volume === 0,
            revision: 0,
          });
        }
      }
  }
  out.sort((a, b) => a.windowEnd - b.windowEnd || a.pair.localeCompare(b.pair));
  return { candles: out, rejects, missing };
}

/** The news items of [from, to) in the order they became readable. */
async function loadNews(
  source: NewsSource | undefined,
  from: number,
  to: number,
  signal: AbortSignal,
): Promise<NewsItem[]> {
  if (source === undefined) return [];
  const items: NewsItem[] = [];
  const dedup = new NewsDeduplicator();
  await source.run(
    {
      news: async (batch) => {
        for (const n of batch) if (n.fetchedAt >= from && n.fetchedAt < to && dedup.accept(n)) items.push(n);
      },
      reject: async () => {},
    },
    signal,
  );
  return items.sort((a, b) => a.fetchedAt - b.fetchedAt);
}

export async function replayCandles(o: CandleReplayOptions): Promise<CandleReplayStats> {
  const signal = o.signal ?? new AbortController().signal;
  await o.bus.ensureTopics([topics.candles, topics.news]);
  const [{ candles, rejects, missing }, news] = await Promise.all([
    loadCandles(o),
    loadNews(o.news, o.from, o.to, signal),
  ]);
  if (candles.length === 0) throw fail(ERR.INPUT, 'no candles in the requested range');
  const stats: CandleReplayStats = {
    candles: 0,
    news: 0,
    rejects,
    missingSymbols: missing,
    eventTs: o.from,
    from: o.from,
    to: o.to,
  };
  const speed = o.speed ?? 'max';
  const wall0 = performance.now();
  const event0 = candles[0]!.windowEnd;
  let n = 0;
  for (let i = 0; i < candles.length && !signal.aborted; ) {
    const minute = candles[i]!.windowEnd;
    // A minute's candles of every pair together, after the news that became readable by then.
    let j = i;
    while (j < candles.length && candles[j]!.windowEnd === minute) j++;
    const due: NewsItem[] = [];
    while (n < news.length && news[n]!.fetchedAt <= minute) due.push(news[n++]!);
    if (speed !== 'max') {
      const wait = (minute - event0) / speed - (performance.now() - wall0);
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {});
    }
    if (due.length > 0) {
      await unlessStopped(o.bus.publish(topics.news, due), signal);
      stats.news += due.length;
    }
    // A publish waits while the stages lag (back-pressure); a stop ends that wait, the records stay published.
    await unlessStopped(o.bus.publish(topics.candles, candles.slice(i, j)), signal);
    stats.candles += j - i;
    stats.eventTs = minute;
    o.onMinute?.(stats);
    i = j;
  }
  return stats;
}

/**
 * `--replay` ranges, in UTC: a month (`2022-05` → [1 May, 1 June)), a day (`2022-05-09`), or an inclusive range of
 * either (`2022-05..2022-06`, `2022-05-09..2022-05-12`).
 */
export function replayRange(text: string): { from: number; to: number } {
  const bound = (t: string, end: boolean): number | undefined => {
    const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(t);
    if (!m) return undefined;
    const [y, mo, d] = [Number(m[1]), Number(m[2]), m[3] === undefined ? undefined : Number(m[3])];
    if (mo < 1 || mo > 12 || (d !== undefined && (d < 1 || d > 31))) return undefined;
    if (d === undefined) return Date.UTC(y, mo - 1 + (end ? 1 : 0), 1);
    const start = Date.UTC(y, mo - 1, d);
    if (new Date(start).getUTCDate() !== d) return undefined; // 2022-02-30
    return end ? start + 86_400_000 : start;
  };
  const [a, b = a] = text.trim().split('..');
  const from = bound(a!, false);
  const to = bound(b!, true);
  if (from === undefined || to === undefined)
    throw fail(
      ERR.USAGE,
      `--replay takes a month or a day, or a range of them: 2022-05, 2022-05-09, 2022-05..2022-06 (got "${text}")`,
    );
  if (!(to > from)) throw fail(ERR.USAGE, `--replay ${text}: the range is empty`);
  return { from, to };
}

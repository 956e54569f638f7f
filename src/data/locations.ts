import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setting } from '../config/env.ts';
import { ERR, fail } from '../core/errors.ts';

/**
 * Where recorded and downloaded market data live, in one place. Two roots are searched, in order:
 *  - the shared recordings (`../shared/data` beside the repository, or CRYPTOCAST_SHARED_DATA);
 *  - the data folder `cryptocast data fetch` downloads into (`.data/public`, or CRYPTOCAST_DATA_DIR), laid out as
 *    Binance's public archive is (`spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2022-05-01.zip`), so a file's path
 *    says where it came from.
 */
const ROOT = resolve(import.meta.dirname, '..', '..');

export function sharedDataDir(): string {
  return resolve(setting('CRYPTOCAST_SHARED_DATA') ?? join(ROOT, '..', 'shared', 'data'));
}

export function fetchedDataDir(): string {
  return resolve(setting('CRYPTOCAST_DATA_DIR') ?? join(ROOT, '.data', 'public'));
}

/** The shared recording of Binance 1-minute klines (2022-01 → 2023-02), one folder per symbol. */
const SHARED_KLINES = 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02';

/** The symbols of the default model and the candle replays. */
export const DEFAULT_KLINE_SYMBOLS = ['BTCUSDT', 'ETHUSDT'] as const;

/** Where the archive keeps a symbol's daily 1-minute klines, relative to a data root. */
export const archiveKlinesPath = (symbol: string, period: 'daily' | 'monthly' = 'daily'): string =>
  join('spot', period, 'klines', symbol, '1m');

/** The folders holding a symbol's 1-minute klines, shared recording first; only those that exist. */
export function klineFolders(symbol: string): string[] {
  return [
    join(sharedDataDir(), SHARED_KLINES, symbol),
    join(fetchedDataDir(), archiveKlinesPath(symbol, 'daily')),
    join(fetchedDataDir(), archiveKlinesPath(symbol, 'monthly')),
  ].filter((d) => existsSync(d));
}

/**
 * The kline symbols a candle replay plays: every recorded one, or those of `--pairs` (BTC/USDT → BTCUSDT). A pair
 * the recordings do not hold is refused before anything starts.
 */
export function klineReplaySymbols(
  pairs: readonly string[] | undefined,
  /** Where `pairs` came from, named in the refusal. */
  setting: '--pairs' | 'CRYPTOCAST_PAIRS' = '--pairs',
): { symbol: string; folders: string[] }[] {
  const symbolOf = (pair: string) => pair.replace('/', '');
  const recorded: readonly string[] = DEFAULT_KLINE_SYMBOLS;
  const missing = (pairs ?? []).filter((p) => !recorded.includes(symbolOf(p)));
  if (missing.length > 0)
    throw fail(
      ERR.PAIR,
      `${setting}: --replay plays the 1-minute klines of ${recorded.map((s) => s.replace(/USDT$/, '/USDT')).join(', ')}, not ${missing.join(', ')}`,
      {
        hint:
          setting === '--pairs'
            ? 'leave out --pairs, or name some of these, e.g. --pairs BTC/USDT'
            : 'unset CRYPTOCAST_PAIRS for a replay, or pass some of these, e.g. --pairs BTC/USDT',
      },
    );
  const wanted =
    pairs === undefined ? recorded : recorded.filter((s) => pairs.some((p) => symbolOf(p) === s));
  return wanted.map((symbol) => ({ symbol, folders: klineFolders(symbol) }));
}

/** The recorded crypto news (2021-10 → 2022-07), when present. */
export function recordedNewsFile(): string | undefined {
  const f = join(sharedDataDir(), 'crypto-news-sentiment', 'news', 'cryptonews_2021-10_2022-07.csv.gz');
  return existsSync(f) ? f : undefined;
}

/**
 * The last two days of 1-minute klines `data fetch` downloaded (BTCUSDT's, daily or monthly files), as a `--replay`
 * range: what `cryptocast run` plays when the trade recordings are not there. Undefined when nothing was fetched.
 */
export function latestFetchedReplay(): string | undefined {
  let last: string | undefined;
  for (const period of ['daily', 'monthly'] as const) {
    const dir = join(fetchedDataDir(), archiveKlinesPath(DEFAULT_KLINE_SYMBOLS[0], period));
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      const m = /-1m-(\d{4}-\d{2})(-\d{2})?\.zip$/.exec(f);
      if (!m) continue;
      // A month's file ends on its last day.
      const day = m[2]
        ? `${m[1]}${m[2]}`
        : new Date(Date.UTC(Number(m[1]!.slice(0, 4)), Number(m[1]!.slice(5, 7)), 0))
            .toISOString()
            .slice(0, 10);
      if (last === undefined || day > last) last = day;
    }
  }
  if (last === undefined) return undefined;
  const before = new Date(Date.parse(`${last}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
  return `${before}..${last}`;
}

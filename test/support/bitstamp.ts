import { join } from 'node:path';
import { readOhlcv } from '../../src/candles/ohlcv-files.ts';
import type { CandleInput } from '../../src/features/technical.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import { SHARED_DATA } from './data.ts';

export const BITSTAMP = join(
  SHARED_DATA,
  'bitstamp-btcusd-1m-2025-01/btcusd_bitstamp_1min_2025-01-07_2025-02-03.csv.gz',
);

/** The real Bitstamp BTC/USD 1-minute candles (38,942), through the same reader as `cryptocast features`. */
export async function bitstampCandles(limit = Number.POSITIVE_INFINITY): Promise<CandleInput[]> {
  const out: CandleInput[] = [];
  for await (const b of readOhlcv(BITSTAMP, { pair: 'BTC/USD' })) {
    for (const c of b.candles) {
      if (out.length >= limit) return out;
      out.push(c);
    }
  }
  return out;
}

/** The same candles as records of the `candles` topic (exchange `bitstamp`, 1m, none filled, first revision). */
export async function bitstampCandleRecords(limit = Number.POSITIVE_INFINITY): Promise<Candle[]> {
  return (await bitstampCandles(limit)).map((c) => ({
    ...c,
    v: 1 as const,
    exchange: 'bitstamp',
    interval: '1m' as const,
    filled: false,
    revision: 0,
  }));
}

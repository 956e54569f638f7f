import type { Candle } from '../../src/schemas/candle.ts';
import type { Trade, Watermark } from '../../src/schemas/trade.ts';

/** 2024-08-09 00:00:00 UTC: a minute boundary used as the origin of synthetic test data. */
export const T0 = Date.UTC(2024, 7, 9, 0, 0, 0);
export const MIN = 60_000;

let seq = 0;
export function trade(p: Partial<Trade> & { ts: number; price: number }): Trade {
  const { ts, ...rest } = p;
  return {
    v: 1,
    type: 'trade',
    exchange: 'test',
    pair: 'BTC/USD',
    qty: 1,
    side: 'buy',
    tradeId: String(++seq),
    tradeTs: ts,
    receivedTs: ts,
    ...rest,
  };
}

export function watermark(ts: number, p: Partial<Watermark> = {}): Watermark {
  return { v: 1, type: 'watermark', exchange: 'test', pair: 'BTC/USD', ts, ...p };
}

/** Compact view of a candle for assertions. */
export function ohlc(c: Candle): string {
  const t = new Date(c.windowStart).toISOString().slice(11, 16);
  return `${c.pair} ${t} ${c.open}/${c.high}/${c.low}/${c.close} v=${c.volume} n=${c.trades}${c.filled ? ' filled' : ''}${c.revision ? ` r${c.revision}` : ''}`;
}

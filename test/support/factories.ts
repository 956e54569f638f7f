import { FEATURE_COLUMNS } from '../../src/features/technical.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
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

/** A first-emission candle closing at `windowEnd` (Binance BTC/USDT, one trade, every price `close`, 100 unless given). */
export function candle(o: Partial<Candle> & { windowEnd: number }): Candle {
  const close = o.close ?? 100;
  return {
    v: 1,
    exchange: 'binance',
    pair: 'BTC/USDT',
    interval: '1m',
    windowStart: o.windowEnd - MIN,
    open: close,
    high: close,
    low: close,
    close,
    volume: 1,
    trades: 1,
    vwap: close,
    filled: false,
    revision: 0,
    ...o,
  };
}

/** Compact view of a candle for assertions. */
export function ohlc(c: Candle): string {
  const t = new Date(c.windowStart).toISOString().slice(11, 16);
  return `${c.pair} ${t} ${c.open}/${c.high}/${c.low}/${c.close} v=${c.volume} n=${c.trades}${c.filled ? ' filled' : ''}${c.revision ? ` r${c.revision}` : ''}`;
}

/** A ready vector of the technical feature set closing at `windowEnd` (Binance BTC/USDT, close 100, every value 0). */
export function featureVector(o: Partial<FeatureVectorRecord> & { windowEnd: number }): FeatureVectorRecord {
  return {
    v: 1,
    featureSet: 'technical',
    featureSetVersion: 1,
    exchange: 'binance',
    pair: 'BTC/USDT',
    windowStart: o.windowEnd - MIN,
    close: 100,
    ready: true,
    values: FEATURE_COLUMNS.map(() => 0),
    ...o,
  };
}

/**
 * A prediction made at `windowEnd` (5-minute horizon, model m v1, Binance BTC/USDT, close 100, return 0): the target
 * time and the predicted close follow from what is given, the band is ±10 bps around the close unless given.
 */
export function prediction(o: Partial<Prediction> & { windowEnd: number }): Prediction {
  const horizonMs = o.horizonMs ?? 5 * MIN;
  const close = o.close ?? 100;
  const predictedReturnBps = o.predictedReturnBps ?? 0;
  return {
    v: 1,
    exchange: 'binance',
    pair: 'BTC/USDT',
    horizonMs,
    targetTs: o.windowEnd + horizonMs,
    close,
    predictedReturnBps,
    predictedClose: close * Math.exp(predictedReturnBps / 1e4),
    p10: close * Math.exp(-10 / 1e4),
    p90: close * Math.exp(10 / 1e4),
    modelName: 'm',
    modelVersion: 1,
    featureSet: 'technical',
    featureSetVersion: 1,
    createdAt: o.windowEnd,
    latencyMs: 0,
    ...o,
  };
}

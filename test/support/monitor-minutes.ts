import type { Candle } from '../../src/schemas/candle.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';

/**
 * Minute i of a BTC/USD series from T0 for the monitor's tests (unit and Kafka): candle i closes at 100 + i; prediction
 * i is made at the end of minute i for five minutes later, with a band of ±1 around its close.
 */
export const T0 = Date.UTC(2025, 0, 1);
export const candle = (i: number): Candle => ({
  v: 1,
  exchange: 'kraken',
  pair: 'BTC/USD',
  interval: '1m',
  windowStart: T0 + i * 60_000,
  windowEnd: T0 + (i + 1) * 60_000,
  open: 100 + i,
  high: 101 + i,
  low: 99 + i,
  close: 100 + i,
  volume: 1,
  filled: false,
  revision: 0,
});
export const prediction = (i: number): Prediction => {
  const windowEnd = T0 + (i + 1) * 60_000;
  return {
    v: 1,
    exchange: 'kraken',
    pair: 'BTC/USD',
    windowEnd,
    horizonMs: 300_000,
    targetTs: windowEnd + 300_000,
    close: 100 + i,
    predictedReturnBps: 1,
    predictedClose: 100.01 + i,
    p10: 99 + i,
    p90: 101 + i,
    modelName: 'm',
    modelVersion: 1,
    featureSet: 'technical',
    featureSetVersion: 1,
    createdAt: windowEnd + 1_000,
    latencyMs: 1_000,
  };
};

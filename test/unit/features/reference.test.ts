import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { CandleInput } from '../../../src/features/technical.ts';
import {
  FEATURE_COLUMNS,
  type FeatureVector,
  TechnicalFeatures,
  WARMUP_CANDLES,
} from '../../../src/features/technical.ts';
import { bitstampCandles } from '../../support/bitstamp.ts';

/**
 * The indicator values checked against independent reference implementations written here from the
 * textbook definitions (Wilder 1978 for RSI and ATR; Appel for MACD; Bollinger; Lane for the stochastic), on
 * 3,000 real Bitstamp BTC/USD minutes.
 */
const col = (name: (typeof FEATURE_COLUMNS)[number]) => FEATURE_COLUMNS.indexOf(name);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function ema(xs: number[], n: number): number[] {
  const a = 2 / (n + 1);
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) out.push(i === 0 ? xs[0]! : a * xs[i]! + (1 - a) * out[i - 1]!);
  return out;
}

/** Wilder's smoothing: the first value is the simple mean of the first n inputs, then (prev·(n−1) + x)/n. */
function wilder(xs: number[], n: number): (number | null)[] {
  const out: (number | null)[] = [];
  let prev = 0;
  for (let i = 0; i < xs.length; i++) {
    if (i < n - 1) {
      out.push(null);
      continue;
    }
    prev = i === n - 1 ? mean(xs.slice(0, n)) : (prev * (n - 1) + xs[i]!) / n;
    out.push(prev);
  }
  return out;
}

describe('technical features vs textbook definitions (real Bitstamp minutes)', () => {
  let candles: CandleInput[];
  let got: FeatureVector[];
  before(async () => {
    candles = await bitstampCandles(3000);
    const f = new TechnicalFeatures();
    got = candles.map((c) => f.update(c));
  });
  const close = () => candles.map((c) => c.close);
  const near = (a: number | null, b: number, what: string, tol = 1e-9) =>
    assert.ok(
      a !== null && Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)),
      `${what}: got ${a}, reference ${b}`,
    );

  it('log returns and realised volatility', () => {
    const c = close();
    for (let i = 61; i < c.length; i += 97) {
      near(got[i]!.values[col('ret_1m')]!, Math.log(c[i]! / c[i - 1]!), `ret_1m ${i}`);
      near(got[i]!.values[col('ret_15m')]!, Math.log(c[i]! / c[i - 15]!), `ret_15m ${i}`);
      near(got[i]!.values[col('ret_60m')]!, Math.log(c[i]! / c[i - 60]!), `ret_60m ${i}`);
      let ss = 0;
      for (let k = i - 59; k <= i; k++) ss += Math.log(c[k]! / c[k - 1]!) ** 2;
      near(got[i]!.values[col('rv_60m')]!, Math.sqrt(ss), `rv_60m ${i}`);
    }
  });

  it('SMA 20, EMA 12/26 and MACD 12/26/9', () => {
    const c = close();
    const e12 = ema(c, 12);
    const e26 = ema(c, 26);
    const macd = e12.map((x, i) => x - e26[i]!);
    for (let i = 100; i < c.length; i += 101) {
      near(got[i]!.values[col('sma_20')]!, mean(c.slice(i - 19, i + 1)), `sma ${i}`);
      near(got[i]!.values[col('ema_12')]!, e12[i]!, `ema12 ${i}`);
      near(got[i]!.values[col('ema_26')]!, e26[i]!, `ema26 ${i}`);
      near(got[i]!.values[col('macd')]!, macd[i]!, `macd ${i}`);
    }
  });

  it("RSI 14 with Wilder's smoothing", () => {
    const c = close();
    const gains = c.slice(1).map((x, i) => Math.max(0, x - c[i]!));
    const losses = c.slice(1).map((x, i) => Math.max(0, c[i]! - x));
    const g = wilder(gains, 14);
    const l = wilder(losses, 14);
    for (let i = 100; i < c.length; i += 89) {
      const rs = g[i - 1]! / l[i - 1]!;
      near(got[i]!.values[col('rsi_14')]!, 100 - 100 / (1 + rs), `rsi ${i}`);
    }
  });

  it('ATR 14 (Wilder) and Bollinger %B / width (20, 2σ population)', () => {
    const tr = candles.map((k, i) =>
      i === 0
        ? k.high - k.low
        : Math.max(
            k.high - k.low,
            Math.abs(k.high - candles[i - 1]!.close),
            Math.abs(k.low - candles[i - 1]!.close),
          ),
    );
    const atr = wilder(tr, 14);
    const c = close();
    for (let i = 100; i < c.length; i += 103) {
      near(got[i]!.values[col('atr_14')]!, atr[i]!, `atr ${i}`, 1e-7);
      const w = c.slice(i - 19, i + 1);
      const m = mean(w);
      const sd = Math.sqrt(mean(w.map((x) => (x - m) ** 2)));
      const upper = m + 2 * sd;
      const lower = m - 2 * sd;
      if (upper > lower)
        near(got[i]!.values[col('bb_pctb_20')]!, (c[i]! - lower) / (upper - lower), `%b ${i}`, 1e-7);
      near(got[i]!.values[col('bb_width_20')]!, (upper - lower) / m, `bbw ${i}`, 1e-7);
    }
  });

  it('stochastic %K 14 and %D 3', () => {
    const k = candles.map((_, i) => {
      if (i < 13) return null;
      const w = candles.slice(i - 13, i + 1);
      const hi = Math.max(...w.map((x) => x.high));
      const lo = Math.min(...w.map((x) => x.low));
      return hi === lo ? 0 : (100 * (candles[i]!.close - lo)) / (hi - lo);
    });
    for (let i = 100; i < candles.length; i += 107) {
      near(got[i]!.values[col('stoch_k_14')]!, k[i]!, `%K ${i}`, 1e-9);
      near(got[i]!.values[col('stoch_d_3')]!, mean([k[i]!, k[i - 1]!, k[i - 2]!]), `%D ${i}`, 1e-9);
    }
  });

  it('on-balance volume over the last 60 minutes', () => {
    for (let i = 100; i < candles.length; i += 113) {
      let obv = 0;
      for (let k = i - 59; k <= i; k++)
        obv += Math.sign(candles[k]!.close - candles[k - 1]!.close) * candles[k]!.volume;
      near(got[i]!.values[col('obv')]!, obv, `obv ${i}`, 1e-7);
    }
  });

  it('is ready from the 61st minute on (60 one-minute returns), and time features are exact', () => {
    assert.equal(
      got.findIndex((v) => v.ready),
      60,
    );
    assert.equal(WARMUP_CANDLES, 61, 'the warm-up length the backtest quotes');
    assert.ok(got.slice(60).every((v) => v.ready));
    const v = got[123]!;
    const d = new Date(v.windowStart);
    const m = d.getUTCHours() * 60 + d.getUTCMinutes();
    assert.equal(v.values[col('minute_of_day_sin')], Math.sin((2 * Math.PI * m) / 1440));
    assert.equal(v.values[col('day_of_week')], d.getUTCDay());
  });
});

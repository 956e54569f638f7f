import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OnlineAdjustments } from '../../../src/inference/online-adjustments.ts';
import { applyShrinkage } from '../../../src/inference/shrinkage.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { prediction as basePrediction, featureVector } from '../../support/factories.ts';

const M = 60_000;
const H = 5 * M;
const T = Date.UTC(2024, 5, 1);

const vector = (windowEnd: number, close: number, pair = 'BTC/USDT'): FeatureVectorRecord =>
  featureVector({ windowEnd, close, pair });

/** A prediction at windowEnd with the model's band ±10 bps around the close. */
const prediction = (
  windowEnd: number,
  close: number,
  pair = 'BTC/USDT',
  predictedReturnBps = 0,
): Prediction => basePrediction({ windowEnd, close, pair, predictedReturnBps });

describe('OnlineAdjustments (ACI and the shrinkage gate in the predictor)', () => {
  it('learns a prediction’s outcome from the vector of its target minute, never sooner', () => {
    const band = new OnlineAdjustments({ band: { gamma: 0.05 } });
    band.observe(vector(T, 100));
    band.adjust(prediction(T, 100));
    for (let k = 1; k < 5; k++) {
      band.observe(vector(T + k * M, 200)); // huge moves, but not the target minute
      assert.equal(band.stats.learnt, 0, `minute ${k}`);
    }
    band.observe(vector(T + H, 101)); // +99.5 bps: above the ±10 bps band
    assert.equal(band.stats.learnt, 1);
    const s = band.aci!.state('binance|BTC/USDT')!;
    assert.ok(s.alphaUpper < 0.1 && s.alphaLower > 0.1, JSON.stringify(s));
  });

  it('publishes the model’s band until an outcome has matured, then widens it after misses', () => {
    const band = new OnlineAdjustments({ band: {} });
    let close = 100;
    const widths: number[] = [];
    for (let k = 0; k < 400; k++) {
      const t = T + k * M;
      close *= Math.exp(((k % 2 ? 1 : -1) * 40) / 1e4); // ±40 bps a minute: the ±10 bps band misses often
      band.observe(vector(t, close));
      const p = band.adjust(prediction(t, close));
      widths.push(Math.log(p.p90 / p.p10) * 1e4);
      assert.ok(p.p10 > 0 && p.p10 <= p.p90);
      assert.equal(p.predictedClose, close, 'the point forecast is untouched');
    }
    for (let k = 0; k < 5; k++) assert.ok(Math.abs(widths[k]! - 20) < 1e-9, `minute ${k}: ${widths[k]}`);
    assert.ok(widths[300]! > 40, `after misses the band is wider: ${widths[300]}`);
  });

  it('drops a prediction whose target minute never comes (a gap), and never learns one twice', () => {
    const band = new OnlineAdjustments({ band: {} });
    band.adjust(prediction(T, 100));
    band.adjust(prediction(T, 100)); // re-read after a crash: one pending only
    band.adjust(prediction(T + M, 100));
    band.observe(vector(T + H, 100)); // matures T
    band.observe(vector(T + H + 2 * M, 100)); // T + M's target (T + 6 min) is skipped: dropped
    assert.deepEqual(band.stats, { adjusted: 3, learnt: 1, dropped: 1, warmUpVectors: 0 });
    // Other pairs and other feature sets do not mature BTC's predictions.
    band.adjust(prediction(T + 10 * M, 100));
    band.observe(vector(T + 15 * M, 100, 'ETH/USDT'));
    band.observe({ ...vector(T + 15 * M, 100), featureSet: 'news_sentiment' });
    assert.equal(band.stats.learnt, 1);
    band.observe(vector(T + 15 * M, 100));
    assert.equal(band.stats.learnt, 2);
  });

  it('the shrinkage gate: the model until outcomes mature, then λ as applyShrinkage (the offline replay) chooses it', () => {
    const gate = new OnlineAdjustments({ shrinkage: {} });
    // The price does not move; the model predicts +20 bps, then noise: λ falls to 0 (persistence) once outcomes mature.
    const n = 3_000;
    const closes = new Array<number>(n).fill(100);
    const predicted = Array.from({ length: n }, (_, k) => (k < 1_000 ? 20 : ((k * 7919) % 41) - 20));
    const published: Prediction[] = [];
    for (let k = 0; k < n; k++) {
      const t = T + k * M;
      gate.observe(vector(t, closes[k]!));
      // A band around every forecast the gate may publish (λ · r̂, |r̂| ≤ 20 bps): nothing to keep inside here.
      const p = prediction(t, closes[k]!, 'BTC/USDT', predicted[k]!);
      published.push(
        gate.adjust({ ...p, p10: p.close * Math.exp(-50 / 1e4), p90: p.close * Math.exp(50 / 1e4) }),
      );
    }
    for (let k = 0; k < 5; k++)
      assert.equal(published[k]!.predictedReturnBps, 20, 'λ = 1 before any outcome');
    assert.equal(published[900]!.predictedReturnBps, 0, 'persistence once the model has been wrong');
    assert.equal(published[900]!.predictedClose, closes[900]);
    const offline = applyShrinkage({
      key: new Float64Array(n),
      windowEnd: Float64Array.from({ length: n }, (_, k) => T + k * M),
      horizonMs: H,
      predicted: Float64Array.from(predicted),
      actual: new Float64Array(n),
    });
    assert.deepEqual(
      published.map((p) => p.predictedReturnBps),
      [...offline.published],
      'the live gate publishes what evaluate --shrinkage scores',
    );
    // The band is the model's own (no ACI here).
    assert.equal(published[900]!.p10, closes[900]! * Math.exp(-50 / 1e4));
  });
  it('keeps the point forecast inside the published band (p10 ≤ predictedClose ≤ p90), the band shrunk or not', () => {
    const bps = (x: number, p: Prediction) => Math.log(x / p.close) * 1e4;
    // The band: a flat price, and a model that says +5 bps within ±10 bps of the close. Every outcome lands in the
    // middle of the band, which ACI narrows to nothing: the +5 bps point is left outside unless moved.
    const band = new OnlineAdjustments({ band: {} });
    const published: Prediction[] = [];
    for (let k = 0; k < 200; k++) {
      band.observe(vector(T + k * M, 100));
      published.push(band.adjust(prediction(T + k * M, 100, 'BTC/USDT', 5)));
    }
    // The first 13 forecasts (minute k has k − 4 outcomes matured): fewer than ⌈1/α⌉ − 1 = 9, the model's own band (it
    // collapsed to a point at the first outcome, and the point was outside).
    for (let k = 0; k < 13; k++) {
      const p = published[k]!;
      assert.ok(Math.abs(bps(p.p90, p) - bps(p.p10, p) - 20) < 1e-9, `minute ${k}: the model's band`);
      assert.ok(Math.abs(p.predictedReturnBps - 5) < 1e-9, `minute ${k}: the model's point`);
    }
    assert.ok(bps(published[150]!.p90, published[150]!) - bps(published[150]!.p10, published[150]!) < 1);
    // The shrinkage gate: the model says +20 bps within [+10, +30]; the price does not move, so λ falls to 0 and the
    // shrunk point (the close) would be outside the model's band.
    const gate = new OnlineAdjustments({ shrinkage: {} });
    for (let k = 0; k < 200; k++) {
      gate.observe(vector(T + k * M, 100));
      published.push(
        gate.adjust({
          ...prediction(T + k * M, 100, 'BTC/USDT', 20),
          p10: 100 * Math.exp(10 / 1e4),
          p90: 100 * Math.exp(30 / 1e4),
        }),
      );
    }
    assert.equal(gate.lambda('binance|BTC/USDT'), 0);
    assert.equal(published.at(-1)!.predictedClose, published.at(-1)!.p10, 'moved to the nearer edge');
    for (const [k, p] of published.entries())
      assert.ok(
        p.p10 <= p.predictedClose && p.predictedClose <= p.p90,
        `forecast ${k}: ${JSON.stringify(p)}`,
      );
  });
});

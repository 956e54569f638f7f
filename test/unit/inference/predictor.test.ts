import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import type { ModelOutput, ServingModel } from '../../../src/inference/model-holder.ts';
import { eventClock, predict, wallClock } from '../../../src/inference/predictor.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import { PredictionSchema } from '../../../src/schemas/prediction.ts';
import type { ModelCard } from '../../../src/training/registry/registry.ts';
import { featureVector } from '../../support/factories.ts';

const T = Date.UTC(2024, 5, 1, 12, 0);
const M = 60_000;

function vector(pair: string, windowEnd: number, o: Partial<FeatureVectorRecord> = {}): FeatureVectorRecord {
  return featureVector({
    pair,
    windowEnd,
    close: 30_000,
    values: FEATURE_COLUMNS.map((_, i) => i / 10),
    ...o,
  });
}

function fixedModel(out: ModelOutput, version = 3): ServingModel {
  const card = {
    name: 'cryptocast-price',
    version,
    horizonMs: 300_000,
    target: 'log_return_bps',
    columns: ['ret_1m'],
  } as ModelCard;
  return { card, predict: () => out };
}

const opts = { now: T + 2_000, maxStalenessMs: 120_000 };

describe('predict: a technical vector + the champion → a Prediction', () => {
  it('prices the return and the interval as close·exp(bps/1e4), with the model, horizon and latency', () => {
    const r = predict(vector('BTC/USDT', T), fixedModel({ returnBps: 12.5, p10Bps: -20, p90Bps: 40 }), opts);
    assert.ok(r.ok);
    const p = PredictionSchema.parse(r.prediction);
    assert.equal(p.predictedReturnBps, 12.5);
    assert.equal(p.predictedClose, 30_000 * Math.exp(12.5 / 1e4));
    assert.equal(p.p10, 30_000 * Math.exp(-20 / 1e4));
    assert.equal(p.p90, 30_000 * Math.exp(40 / 1e4));
    assert.ok(Math.abs(p.predictedClose - 30_037.52) < 0.01, 'about +0.125 %');
    assert.equal(p.close, 30_000);
    assert.equal(p.windowEnd, T);
    assert.equal(p.horizonMs, 300_000);
    assert.equal(p.targetTs, T + 300_000);
    assert.equal(p.modelName, 'cryptocast-price');
    assert.equal(p.modelVersion, 3);
    assert.equal(p.featureSet, 'technical');
    assert.equal(p.featureSetVersion, 1);
    assert.equal(p.createdAt, T + 2_000);
    assert.equal(p.latencyMs, 2_000);
    assert.equal(p.pair, 'BTC/USDT');
    assert.equal(p.exchange, 'binance');
  });

  it('orders crossed quantiles so that p10 ≤ p90', () => {
    const r = predict(vector('BTC/USDT', T), fixedModel({ returnBps: 0, p10Bps: 15, p90Bps: -5 }), opts);
    assert.ok(r.ok);
    assert.equal(r.prediction.p10, 30_000 * Math.exp(-5 / 1e4));
    assert.equal(r.prediction.p90, 30_000 * Math.exp(15 / 1e4));
    assert.equal(r.prediction.predictedClose, 30_000);
  });

  it('skips a vector that is not ready, with no champion, or of another feature set', () => {
    const m = fixedModel({ returnBps: 1, p10Bps: 0, p90Bps: 2 });
    const notReady = predict(vector('BTC/USDT', T, { ready: false }), m, opts);
    assert.deepEqual([notReady.ok, !notReady.ok && notReady.reason], [false, 'not_ready']);
    const none = predict(vector('BTC/USDT', T), undefined, opts);
    assert.deepEqual([none.ok, !none.ok && none.reason], [false, 'no_champion']);
    // Not ready is reported before no champion: warming up is not the model's fault.
    const both = predict(vector('BTC/USDT', T, { ready: false }), undefined, opts);
    assert.equal(!both.ok && both.reason, 'not_ready');
    const news = predict(vector('BTC/USDT', T, { featureSet: 'news_sentiment', values: [0.1] }), m, opts);
    assert.equal(!news.ok && news.reason, 'other_set');
    const short = predict(vector('BTC/USDT', T, { values: [1, 2, 3] }), m, opts);
    assert.equal(!short.ok && short.reason, 'invalid');
  });

  it('skips a stale vector (now − windowEnd > maxStaleness) and accepts one exactly at the limit', () => {
    const m = fixedModel({ returnBps: 1, p10Bps: 0, p90Bps: 2 });
    const stale = predict(vector('BTC/USDT', T), m, { now: T + 120_001, maxStalenessMs: 120_000 });
    assert.ok(!stale.ok);
    assert.equal(stale.reason, 'stale');
    assert.equal(stale.ageMs, 120_001);
    const edge = predict(vector('BTC/USDT', T), m, { now: T + 120_000, maxStalenessMs: 120_000 });
    assert.ok(edge.ok);
    assert.equal(edge.prediction.latencyMs, 120_000);
  });

  it('refuses a non-finite model output instead of publishing it', () => {
    const r = predict(
      vector('BTC/USDT', T),
      fixedModel({ returnBps: Number.NaN, p10Bps: 0, p90Bps: 1 }),
      opts,
    );
    assert.equal(!r.ok && r.reason, 'model_error');
  });

  it('refuses a finite output whose price would be 0 or infinite (the topic schema would refuse it forever)', () => {
    for (const out of [
      { returnBps: 8e6, p10Bps: 0, p90Bps: 1 },
      { returnBps: 1, p10Bps: -8e6, p90Bps: 1 },
    ]) {
      const r = predict(vector('BTC/USDT', T), fixedModel(out), opts);
      assert.equal(!r.ok && r.reason, 'model_error');
    }
  });

  it('never reports a negative latency (a clock slightly behind the candle close)', () => {
    const r = predict(vector('BTC/USDT', T), fixedModel({ returnBps: 1, p10Bps: 0, p90Bps: 2 }), {
      now: T - 50,
      maxStalenessMs: 1,
    });
    assert.ok(r.ok);
    assert.equal(r.prediction.latencyMs, 0);
  });
});

describe('clocks', () => {
  it('wall: the injected time source', () => {
    let t = T;
    const c = wallClock(() => t);
    assert.equal(c.now(vector('BTC/USDT', T - 5 * M)), T);
    t += 1;
    assert.equal(c.now(vector('BTC/USDT', T - 5 * M)), T + 1);
  });

  it('event: the largest windowEnd seen per pair, so a replay is never stale by the wall clock', () => {
    const c = eventClock();
    assert.equal(c.now(vector('BTC/USDT', T)), T);
    assert.equal(c.now(vector('BTC/USDT', T + M)), T + M);
    // Another pair (another partition, read later) keeps its own time.
    assert.equal(c.now(vector('ETH/USDT', T - 10 * M)), T - 10 * M);
    // An old vector of the same pair arriving late is measured against that pair's newest.
    assert.equal(c.now(vector('BTC/USDT', T - 3 * M)), T + M);
    const m = fixedModel({ returnBps: 1, p10Bps: 0, p90Bps: 2 });
    const late = predict(vector('BTC/USDT', T - 3 * M), m, { now: T + M, maxStalenessMs: 2 * M });
    assert.equal(!late.ok && late.reason, 'stale');
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { FEATURE_COLUMNS, FEATURE_SET, TechnicalFeatures } from '../../src/features/technical.ts';
import { servingModel } from '../../src/inference/model-holder.ts';
import type { Evaluation } from '../../src/training/evaluation.ts';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { BITSTAMP, bitstampCandles } from '../support/bitstamp.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * `cryptocast backtest` on real data: the default champion (the registry of this checkout, trained by
 * scripts/price-model.sh on 14 months of Binance) applied as it is to a month of Bitstamp BTC/USD it never saw.
 * Its metrics are recomputed from the predictions file and the raw Bitstamp CSV; its predictions are the live
 * predictor's for the same feature vectors; the refusals (pair, horizon, warm-up) are clear and exit 2.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const REGISTRY = join(ROOT, '.data', 'registry');
const run = promisify(execFile);
const cc = (args: string[]) =>
  run(join(ROOT, 'bin/cryptocast'), ['backtest', '--registry', REGISTRY, ...args], { maxBuffer: 64 << 20 });
const fails = async (args: string[]) => {
  try {
    await cc(args);
  } catch (err) {
    return err as { code: number; stderr: string };
  }
  assert.fail('expected cryptocast backtest to fail');
};

/** close by close time (ms) from the raw file, read without the project's reader. */
function rawCloses(): Map<number, number> {
  const text = gunzipSync(readFileSync(BITSTAMP)).toString('utf8');
  const out = new Map<number, number>();
  for (const line of text.trim().split('\n').slice(1)) {
    const f = line.split(',');
    out.set(Number(f[0]) * 1000 + 60_000, Number(f[4]));
  }
  return out;
}

describe('cryptocast backtest (the default champion, real Bitstamp candles)', () => {
  const dir = scratchDir('cc-backtest-');
  const preds = join(dir, 'predictions.csv');
  // The JSON report: an Evaluation plus the backtest's own fields.
  let ev: Evaluation & {
    as_pair: Record<string, string>;
    in_training_window: number;
    imputed: Record<string, number>;
  };

  before(async () => {
    const r = await cc([
      '--model',
      'champion',
      '--candles',
      BITSTAMP,
      '--pair',
      'BTC/USD',
      '--as-pair',
      'BTC/USDT',
      '--json',
      '--predictions',
      preds,
    ]);
    ev = JSON.parse(r.stdout);
  });

  it('scores every ready row of the month, by day, with the same metrics as evaluate', () => {
    // 38,942 candles: 60 warm up, the last 5 have no target 5 minutes later.
    assert.equal(ev.n, 38_942 - 60 - 5);
    assert.deepEqual(Object.keys(ev.per_pair), ['BTC/USD']);
    assert.deepEqual(ev.as_pair, { 'BTC/USD': 'BTC/USDT' });
    assert.equal(ev.in_training_window, 0);
    assert.equal(ev.per_day.length, 28); // 2025-01-07 … 2025-02-03
    assert.equal(ev.per_fold.length, 28);
    assert.equal(ev.per_day[0]!.day, '2025-01-07');
    assert.equal(
      ev.per_day.reduce((s, d) => s + d.n, 0),
      ev.n,
    );
    assert.deepEqual(Object.keys(ev.per_pair_vol_decile), ['BTC/USD']);
    assert.equal(ev.per_pair_vol_decile['BTC/USD']!.length, 10);
    for (const k of [
      'skill',
      'dm_pvalue',
      'direction_accuracy',
      'coverage_p10_p90',
      'mae_drift',
      'mae_linear',
    ] as const)
      assert.ok(typeof ev[k] === 'number', k);
    assert.ok(ev.intervals.interval_score > 0 && ev.intervals_baseline.interval_score > 0);
    assert.ok(ev.intervals.crps > 0 && ev.intervals.crps < ev.intervals.interval_score);
    // The linear baseline learns from day 2 on: on day 1 it is persistence.
    const day = (k: number) => ev.per_fold[k]!.metrics;
    assert.equal(day(0).linear!.mae_price, day(0).persistence!.mae_price);
    assert.notEqual(day(5).linear!.mae_price, day(5).persistence!.mae_price);
  });

  it('its predictions file reproduces the MAEs, the skill and the coverage from the raw candles', () => {
    const closes = rawCloses();
    const lines = readFileSync(preds, 'utf8').trim().split('\n');
    const h = lines[0]!.split(',');
    const col = (k: string) => h.indexOf(k);
    assert.equal(lines.length - 1, ev.n);
    let model = 0;
    let persistence = 0;
    let inside = 0;
    for (const line of lines.slice(1)) {
      const f = line.split(',');
      const now = closes.get(Number(f[col('windowEnd')]));
      const actual = closes.get(Number(f[col('targetTs')]));
      assert.ok(now !== undefined && actual !== undefined);
      assert.equal(Number(f[col('close')]), now);
      model += Math.abs(Number(f[col('predicted_close')]) - actual);
      persistence += Math.abs(now - actual);
      if (actual >= Number(f[col('p10')]) * (1 - 1e-12) && actual <= Number(f[col('p90')]) * (1 + 1e-12))
        inside++;
    }
    const n = lines.length - 1;
    assert.ok(Math.abs(model / n - ev.mae_model) < 1e-6 * ev.mae_model, 'model MAE');
    assert.ok(Math.abs(persistence / n - ev.mae_persistence) < 1e-9 * ev.mae_persistence, 'persistence MAE');
    assert.ok(Math.abs(1 - model / persistence - ev.skill) < 1e-6, 'skill');
    assert.ok(Math.abs(inside / n - ev.coverage_p10_p90) < 1e-3, 'coverage');
  });

  it('predicts what the live predictor predicts for the same feature vectors (same runtime, no refit)', async () => {
    const registry = new LocalRegistry(REGISTRY);
    const version = (await registry.alias('cryptocast-price', 'champion'))!;
    const card = (await registry.get('cryptocast-price', version))!;
    const files = await registry.download('cryptocast-price', version, join(dir, 'model'));
    const docs = {
      'model.json': await readFile(files['model.json']!, 'utf8'),
      'p10.json': await readFile(files['p10.json']!, 'utf8'),
      'p90.json': await readFile(files['p90.json']!, 'utf8'),
    };
    // Bitstamp has no trade counts: a champion that never saw trades_z_60m missing gets its training mean there, in
    // the backtest as in the predictor (checked below row by row); an older card without columnStats gets nothing.
    const filled = card.columnStats?.trades_z_60m?.missing === 0 && card.columns.includes('trades_z_60m');
    assert.deepEqual(ev.imputed, filled ? { trades_z_60m: ev.n } : {});
    const serving = servingModel(card, docs);
    const byTime = new Map<number, string[]>();
    for (const line of readFileSync(preds, 'utf8').trim().split('\n').slice(1)) {
      const f = line.split(',');
      byTime.set(Number(f[1]), f);
    }
    const engine = new TechnicalFeatures();
    let checked = 0;
    for (const c of await bitstampCandles(5_000)) {
      const v = engine.update(c);
      if (!v.ready || v.windowEnd % 3_600_000 !== 0) continue; // one an hour
      const f = byTime.get(v.windowEnd)!;
      const out = serving.predict({
        v: 1,
        exchange: 'bitstamp',
        pair: 'BTC/USD',
        windowStart: v.windowStart,
        windowEnd: v.windowEnd,
        close: v.close,
        ready: true,
        featureSet: FEATURE_SET.name,
        featureSetVersion: FEATURE_SET.version,
        values: v.values,
        computedAt: v.windowEnd,
      } as never);
      assert.equal(Number(f[4]), v.close * Math.exp(out.returnBps / 1e4));
      assert.equal(Number(f[5]), v.close * Math.exp(Math.min(out.p10Bps, out.p90Bps) / 1e4));
      checked++;
    }
    assert.ok(checked >= 80, `checked ${checked}`);
    assert.equal(FEATURE_COLUMNS.length, 32);
  });

  it('--adaptive-conformal and --shrinkage score the forecast as the predictor would publish it, the raw one kept beside', async () => {
    const r = await cc([
      '--model',
      'champion',
      '--candles',
      BITSTAMP,
      '--pair',
      'BTC/USD',
      '--as-pair',
      'BTC/USDT',
      '--json',
      '--adaptive-conformal',
      '--shrinkage',
    ]);
    const a = JSON.parse(r.stdout);
    assert.equal(a.band, 'adaptive conformal');
    assert.equal(a.point, 'shrinkage');
    assert.equal(a.n, ev.n);
    // The model's own forecast, as scored without the flags.
    assert.equal(a.raw_band.intervals.coverage, ev.coverage_p10_p90);
    assert.equal(a.model_point.skill, ev.skill);
    // Persistence is the same; the adjusted band differs from the raw one.
    assert.equal(a.mae_persistence, ev.mae_persistence);
    assert.notEqual(a.coverage_p10_p90, ev.coverage_p10_p90);
    assert.ok(a.shrinkage.mean_lambda > 0 && a.shrinkage.mean_lambda < 1);
    // ACI's long-run guarantee: the miss rate of each side is near its target over a month of forecasts.
    assert.ok(
      Math.abs(a.intervals.below - 0.1) < 0.02 && Math.abs(a.intervals.above - 0.1) < 0.02,
      JSON.stringify(a.intervals),
    );
  });

  it('refuses a pair the model was not trained on unless told which one to treat it as (exit 2)', async () => {
    const e = await fails(['--model', 'champion', '--candles', BITSTAMP, '--pair', 'BTC/USD']);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /trained on BTC\/USDT, ETH\/USDT, not on BTC\/USD: .*--as-pair BTC\/USDT/);
    const wrong = await fails([
      '--model',
      'champion',
      '--candles',
      BITSTAMP,
      '--pair',
      'BTC/USD',
      '--as-pair',
      'BTC/EUR',
    ]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /was not trained on BTC\/EUR/);
  });

  it('refuses another horizon, and candles too short for the warm-up with the minimum length (exit 2)', async () => {
    const h = await fails([
      '--model',
      'champion',
      '--candles',
      BITSTAMP,
      '--pair',
      'BTC/USD',
      '--as-pair',
      'BTC/USDT',
      '--horizon',
      '15m',
    ]);
    assert.equal(h.code, 2);
    assert.match(h.stderr, /predicts 5 minutes ahead, not 15m/);
    const lines = gunzipSync(readFileSync(BITSTAMP)).toString('utf8').split('\n');
    const short = join(dir, 'short.csv');
    writeFileSync(short, `${lines.slice(0, 1 + 65).join('\n')}\n`);
    const s = await fails([
      '--model',
      'champion',
      '--candles',
      short,
      '--pair',
      'BTC/USD',
      '--as-pair',
      'BTC/USDT',
    ]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /BTC\/USD has 65; a pair needs at least 66 consecutive 1-minute candles/);
    // 66 candles are enough for one scored row.
    writeFileSync(short, `${lines.slice(0, 1 + 66).join('\n')}\n`);
    const ok = JSON.parse(
      (
        await cc([
          '--model',
          'champion',
          '--candles',
          short,
          '--pair',
          'BTC/USD',
          '--as-pair',
          'BTC/USDT',
          '--json',
        ])
      ).stdout,
    );
    assert.equal(ok.n, 1);
  });

  it('refuses an unknown version', async () => {
    const e = await fails(['--model', 'v999', '--candles', BITSTAMP, '--pair', 'BTC/USD']);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /no version 999/);
  });
});

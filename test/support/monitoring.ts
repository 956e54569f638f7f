import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Prediction } from '../../src/schemas/prediction.ts';
import type { PredictionError } from '../../src/schemas/prediction-error.ts';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { MODEL_COLUMNS } from '../../src/training/sources.ts';
import { registerModel, stumpModel } from './champion.ts';
import { CLI } from './cli.ts';
import { scratchDir } from './scratch.ts';

/** A registry of the test's own with a champion of a few stumps on real columns (no trained model needed). */
export async function stumpChampionRegistry(): Promise<NodeJS.ProcessEnv> {
  const dir = scratchDir('cc-registry-');
  const ret = Math.max(MODEL_COLUMNS.indexOf('ret_1m'), 0);
  await registerModel(new LocalRegistry(dir), 'cryptocast-price', MODEL_COLUMNS, {
    model: stumpModel(MODEL_COLUMNS.length, [
      { f: ret, c: 0, a: -0.4, b: 0.6 },
      { f: 1, c: 0.5, a: 0.1, b: -0.2 },
    ]),
    p10: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: -8, b: -6 }]),
    p90: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: 6, b: 8 }]),
  });
  return { CRYPTOCAST_REGISTRY: dir, CRYPTOCAST_MODEL_NAME: 'cryptocast-price' };
}

/** Candle closes by `pair|windowEnd`, made by the batch command from the same trades file. */
export function closesOf(tradesFile: string): Map<string, number> {
  const out = join(scratchDir('cc-closes-'), 'candles.csv');
  execFileSync(CLI, ['candles', '--input', tradesFile, '--output', out], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const closes = new Map<string, number>();
  for (const line of readFileSync(out, 'utf8').trim().split('\n').slice(1)) {
    const [pair, , windowEnd, , , , close] = line.split(',');
    closes.set(`${pair}|${windowEnd}`, Number(close));
  }
  return closes;
}

/**
 * Checks error records against an offline computation from the predictions and the closes, written out here by hand
 * (not with the monitor's code): every prediction whose target minute closed has exactly one record, with
 * actual = the close of the candle ending at targetTs; no other record exists. Returns the number checked.
 */
export function assertErrorsMatch(
  predictions: readonly Prediction[],
  records: readonly PredictionError[],
  closes: Map<string, number>,
): number {
  const byKey = new Map<string, PredictionError>();
  for (const e of records) {
    const k = `${e.pair}|${e.windowEnd}|${e.modelName}|${e.modelVersion}`;
    assert.ok(!byKey.has(k), `two records for ${k}`);
    byKey.set(k, e);
  }
  let matured = 0;
  for (const p of predictions) {
    const k = `${p.pair}|${p.windowEnd}|${p.modelName}|${p.modelVersion}`;
    const actual = closes.get(`${p.pair}|${p.targetTs}`);
    const e = byKey.get(k);
    if (actual === undefined) {
      assert.ok(e === undefined || e.status === 'unscorable', `${k}: scored without a target candle`);
      continue;
    }
    matured++;
    assert.ok(e, `${k}: matured (close ${actual} at ${p.targetTs}) but never scored`);
    assert.equal(e.status, 'scored', k);
    assert.equal(e.actualClose, actual, `${k} actual close`);
    assert.equal(e.error, p.predictedClose - actual, `${k} error`);
    assert.equal(e.absError, Math.abs(p.predictedClose - actual));
    assert.equal(e.persistenceAbsError, Math.abs(p.close - actual));
    assert.equal(e.inBand, actual >= p.p10 && actual <= p.p90);
    const up = p.predictedClose - p.close;
    const moved = actual - p.close;
    assert.equal(e.directionHit, up === 0 || moved === 0 ? null : up > 0 === moved > 0, `${k} direction`);
    byKey.delete(k);
  }
  assert.deepEqual(
    [...byKey.keys()].filter((k) => byKey.get(k)!.status === 'scored'),
    [],
    'records of no prediction',
  );
  return matured;
}

/** Every page of a paged `/v1/…` resource over [from, to) (at most 31 days). */
export async function allPages<T>(
  base: string,
  path: string,
  pair: string,
  from: number,
  to: number,
): Promise<T[]> {
  const out: T[] = [];
  let after: number | undefined;
  for (;;) {
    const url = `${base}${path}?pair=${pair}&from=${from}&to=${to}&limit=1000${after === undefined ? '' : `&after=${after}`}`;
    const res = await fetch(url);
    assert.equal(res.status, 200, `${url}: ${await res.clone().text()}`);
    const page = (await res.json()) as { items: T[]; next: number | null };
    out.push(...page.items);
    if (page.next === null) return out;
    after = page.next;
  }
}

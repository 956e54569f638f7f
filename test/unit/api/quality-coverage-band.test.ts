import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorsFeed } from '../../../src/api/errors-feed.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { buildApi } from '../../../src/api/server.ts';
import { RuleSchema } from '../../../src/monitoring/alerts/rules.ts';
import { scorePrediction } from '../../../src/monitoring/score.ts';
import { openErrorsStore } from '../../../src/monitoring/store/open.ts';
import { prediction } from '../../support/factories.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';
import { scratchDir } from '../../support/scratch.ts';

const T = Date.UTC(2026, 0, 5, 0, 0);
const record = (pair: string) =>
  scorePrediction(prediction({ pair, windowEnd: T, predictedClose: 101 }), 100, T + 5 * 60_000);

// The dashboard colours coverage by this band: it was a copy of the shipped rule's 70–90 %, whatever the rules file.
test("/v1/quality serves the coverage band of the rules the API is given: the shipped rule's by default, a rules file's, or none", async (t) => {
  const dir = scratchDir('cc-quality-band-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openErrorsStore(`duckdb:${join(dir, 'e.duckdb')}`);
  t.after(() => store.close());
  await store.write([record('BTC/USD'), record('ETH/USD')]);
  const errors = new ErrorsFeed(store, { clock: 'wall' });
  errors.markReady();
  const latest = new LatestPredictions();
  latest.markReady();
  const bandOf = async (alertRules: Parameters<typeof buildApi>[0]['alertRules'], pair: string) => {
    const app = buildApi({ latest, store: new MemoryPredictionsStore(), errors, alertRules });
    try {
      const res = await app.inject({ method: 'GET', url: `/v1/quality?pair=${pair}` });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { coverageAlertBand: unknown }).coverageAlertBand;
    } finally {
      await app.close();
    }
  };
  assert.deepEqual(await bandOf(undefined, 'BTC-USD'), {
    rule: 'interval-miscalibrated',
    window: '24h',
    low: 0.7,
    high: 0.9,
  });
  // A rules file of one's own: a tighter band for BTC only; ETH's coverage is watched by no rule.
  const custom = [
    RuleSchema.parse({
      name: 'btc-coverage',
      kind: 'coverage_outside',
      window: '7d',
      low: 0.75,
      high: 0.85,
      pairs: ['BTC/USD'],
    }),
    RuleSchema.parse({ name: 'no-candles', kind: 'no_candles', minutes: 5 }),
  ];
  assert.deepEqual(await bandOf(custom, 'BTC-USD'), {
    rule: 'btc-coverage',
    window: '7d',
    low: 0.75,
    high: 0.85,
  });
  assert.equal(await bandOf(custom, 'ETH-USD'), null);
});

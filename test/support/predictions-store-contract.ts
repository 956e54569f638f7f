import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { PredictionsStore } from '../../src/inference/predictions-store.ts';
import { type Prediction, PredictionSchema } from '../../src/schemas/prediction.ts';

/** A valid prediction of `pair` at `windowEnd` by model version `version` (values vary with both). */
export function samplePrediction(pair: string, windowEnd: number, version = 1, bps = 1.25): Prediction {
  const close = 20_000 + ((windowEnd / 60_000) % 1_000);
  const p: Prediction = {
    v: 1,
    exchange: 'binance',
    pair,
    windowEnd,
    horizonMs: 300_000,
    targetTs: windowEnd + 300_000,
    close,
    predictedReturnBps: bps,
    predictedClose: close * Math.exp(bps / 1e4),
    p10: close * Math.exp((bps - 7.5) / 1e4),
    p90: close * Math.exp((bps + 7.5) / 1e4),
    modelName: 'cryptocast-price',
    modelVersion: version,
    featureSet: 'technical',
    featureSetVersion: 1,
    createdAt: windowEnd + 1_234,
    latencyMs: 1_234,
  };
  return PredictionSchema.parse(p);
}

/** The behaviour every predictions-store backend must have; run against DuckDB and a real PostgreSQL. */
export function predictionsStoreContract(open: () => Promise<PredictionsStore>): void {
  let n = 0;
  // Every test uses its own pairs, so that a shared server's table (PostgreSQL) never mixes runs.
  const run = `${(process.pid % 1e5).toString(36)}${Date.now().toString(36).slice(-4)}`.toUpperCase();
  const pairOf = (coin: string) => `${coin}${run}${++n}/USD`;
  const T = Date.UTC(2025, 0, 7);
  const M = 60_000;

  it('round-trips predictions exactly and keeps pairs apart', async () => {
    const store = await open();
    try {
      const btc = pairOf('B');
      const eth = pairOf('E');
      const ps = [
        samplePrediction(btc, T, 1, -3.3333333333333335),
        samplePrediction(btc, T + M, 1, 1e-12),
        samplePrediction(eth, T, 1, 0.1),
      ];
      await store.write(ps);
      assert.deepEqual(await store.history(btc, 0, T + 10 * M), ps.slice(0, 2));
      assert.deepEqual(await store.history(eth, 0, T + 10 * M), [ps[2]]);
      assert.deepEqual(await store.history(btc, T + M, T + 2 * M), [ps[1]], 'fromTs ≤ windowEnd < toTs');
      assert.deepEqual(await store.history(btc, T, T + M), [ps[0]]);
      for (const p of await store.history(btc, 0, T + 10 * M)) PredictionSchema.parse(p);
    } finally {
      await store.close();
    }
  });

  it('upserts on (pair, windowEnd, modelVersion): writing again replaces, never duplicates', async () => {
    const store = await open();
    try {
      const pair = pairOf('B');
      const before = await store.count();
      const ps = Array.from({ length: 40 }, (_, i) => samplePrediction(pair, T + i * M, 1, i));
      await store.write(ps);
      await store.write(ps);
      await store.write([...ps.slice(0, 5), ...ps.slice(0, 5)]); // duplicates inside one batch
      assert.equal((await store.count()) - before, 40);
      await store.write([samplePrediction(pair, T, 1, 99)]);
      assert.equal((await store.count()) - before, 40);
      assert.equal((await store.history(pair, T, T + 1))[0]!.predictedReturnBps, 99);
      // Another model version of the same minute is another prediction.
      await store.write([samplePrediction(pair, T, 2, 5)]);
      assert.equal((await store.count()) - before, 41);
      assert.deepEqual(
        (await store.history(pair, T, T + 1)).map((p) => [p.modelVersion, p.predictedReturnBps]),
        [
          [1, 99],
          [2, 5],
        ],
      );
      assert.deepEqual(
        (await store.history(pair, T, T + 1, { modelVersion: 2 })).map((p) => p.modelVersion),
        [2],
      );
    } finally {
      await store.close();
    }
  });

  it('pages ascending by windowEnd with after and limit (capped at 1000), never splitting a minute', async () => {
    const store = await open();
    try {
      const pair = pairOf('B');
      const ps = Array.from({ length: 1_205 }, (_, i) => samplePrediction(pair, T + i * M, 1, i / 7));
      // Minute 2 also has version 2: a page boundary must not cut it.
      ps.push(samplePrediction(pair, T + 2 * M, 2, 42));
      await store.write(ps);
      const all: Prediction[] = [];
      let after: number | undefined;
      for (;;) {
        const page = await store.history(pair, T, T + 10_000 * M, { limit: 3, after });
        if (page.length === 0) break;
        assert.ok(page.length <= 3);
        all.push(...page);
        after = page[page.length - 1]!.windowEnd;
        if (all.length > 60) break;
      }
      assert.deepEqual(
        all.slice(0, 6).map((p) => [p.windowEnd - T, p.modelVersion]),
        [
          [0, 1],
          [M, 1],
          [2 * M, 1],
          [2 * M, 2],
          [3 * M, 1],
          [4 * M, 1],
        ],
      );
      const ends = all.map((p) => p.windowEnd);
      assert.deepEqual(
        ends.filter((e, i) => i > 0 && e < ends[i - 1]!),
        [],
        'ascending',
      );
      // A page of one row that would cut a minute in two carries the whole minute.
      assert.deepEqual(
        (await store.history(pair, T, T + 10_000 * M, { limit: 1, after: T + M })).map((p) => p.modelVersion),
        [1, 2],
      );
      const big = await store.history(pair, T, T + 10_000 * M, { limit: 5_000 });
      assert.equal(big.length, 1000, 'limit is capped at 1000');
      assert.equal((await store.history(pair, T, T + 10_000 * M)).length, 1000, 'default page: 1000');
      const rest = await store.history(pair, T, T + 10_000 * M, { after: big[big.length - 1]!.windowEnd });
      assert.equal(big.length + rest.length, 1_206);
      assert.equal(new Set([...big, ...rest].map((p) => `${p.windowEnd}|${p.modelVersion}`)).size, 1_206);
      await assert.rejects(store.history(pair, T, T + M, { limit: 0 }), /limit/);
    } finally {
      await store.close();
    }
  });

  it('latest: the newest prediction per pair (any model version), undefined for an unknown pair', async () => {
    const store = await open();
    try {
      const pair = pairOf('B');
      assert.equal(await store.latest(pair), undefined);
      await store.write([samplePrediction(pair, T + 5 * M, 1), samplePrediction(pair, T, 3)]);
      assert.equal((await store.latest(pair))!.windowEnd, T + 5 * M);
      await store.write([samplePrediction(pair, T + 5 * M, 2, 7)]);
      const l = (await store.latest(pair))!;
      assert.equal(l.windowEnd, T + 5 * M);
      assert.equal(l.modelVersion, 2);
      assert.equal(await store.latest(pairOf('Z')), undefined);
    } finally {
      await store.close();
    }
  });

  it('keeps what was written across a close and reopen', async () => {
    const pair = pairOf('B');
    const p = samplePrediction(pair, T, 1, 3);
    const a = await open();
    try {
      await a.write([p]);
    } finally {
      await a.close();
    }
    const b = await open();
    try {
      assert.deepEqual(await b.latest(pair), p);
    } finally {
      await b.close();
    }
  });

  it('two stores open on one location at once both keep every write, after both close and a reopen', async () => {
    const btc = pairOf('BTC');
    const eth = pairOf('ETH');
    const a = await open();
    const b = await open();
    try {
      for (let i = 0; i < 20; i++) {
        await a.write([samplePrediction(btc, T + i * M)]);
        await b.write([samplePrediction(eth, T + i * M)]);
      }
    } finally {
      await a.close();
      await b.close();
    }
    const again = await open();
    try {
      assert.equal((await again.history(btc, 0, T + 3_600_000)).length, 20);
      assert.equal((await again.history(eth, 0, T + 3_600_000)).length, 20);
    } finally {
      await again.close();
    }
  });
}

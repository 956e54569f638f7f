import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type CryptocastError, ERR } from '../../src/core/errors.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { ERRORS_SPEC } from '../../src/monitoring/store/rows.ts';
import { type PredictionError, PredictionErrorSchema } from '../../src/schemas/prediction-error.ts';

/** A scored verdict on the prediction of `pair` at `windowEnd` (direction and band as given). */
export function sampleScored(
  pair: string,
  windowEnd: number,
  o: { version?: number; hit?: boolean; inBand?: boolean } = {},
): PredictionError {
  const close = 20_000 + ((windowEnd / 60_000) % 1_000);
  const actual = close + 3.25;
  const predicted = close + (o.hit === false ? -1.5 : 1.5);
  return PredictionErrorSchema.parse({
    v: 1,
    status: 'scored',
    exchange: 'binance',
    pair,
    windowEnd,
    modelName: 'cryptocast-price',
    modelVersion: o.version ?? 1,
    horizonMs: 300_000,
    targetTs: windowEnd + 300_000,
    close,
    predictedClose: predicted,
    p10: close - 10,
    p90: o.inBand === false ? close + 2 : close + 10,
    actualClose: actual,
    error: predicted - actual,
    absError: Math.abs(predicted - actual),
    pctError: ((predicted - actual) / actual) * 100,
    persistenceAbsError: 3.25,
    directionHit: o.hit ?? true,
    directionTie: false,
    inBand: o.inBand ?? true,
    scoredAt: windowEnd + 360_000,
    latenessMs: 60_000,
    reason: null,
  });
}

/** A verdict on a prediction that could not be scored: every nullable field null. */
export function sampleUnscorable(pair: string, windowEnd: number): PredictionError {
  const close = 20_000 + ((windowEnd / 60_000) % 1_000);
  return PredictionErrorSchema.parse({
    ...sampleScored(pair, windowEnd),
    status: 'unscorable',
    predictedClose: close,
    actualClose: null,
    error: null,
    absError: null,
    pctError: null,
    persistenceAbsError: null,
    directionHit: null,
    directionTie: false,
    inBand: null,
    reason: 'no_candle_at_target',
  });
}

/** The behaviour every errors-store backend must have; run against DuckDB and a real PostgreSQL. */
export function errorsStoreContract(open: () => Promise<ErrorsStore>): void {
  let n = 0;
  // Every test uses its own pairs, so that a shared server's table (PostgreSQL) never mixes runs.
  const run = `${(process.pid % 1e5).toString(36)}${Date.now().toString(36).slice(-4)}`.toUpperCase();
  const pairOf = (coin: string) => `${coin}${run}${++n}/USD`;
  const T = Date.UTC(2025, 0, 7);
  const M = 60_000;

  it('round-trips scored and unscorable records exactly (booleans and nulls kept)', async () => {
    const store = await open();
    try {
      const pair = pairOf('B');
      const es = [
        sampleScored(pair, T, { hit: true, inBand: true }),
        sampleScored(pair, T + M, { hit: false, inBand: false }),
        sampleUnscorable(pair, T + 2 * M),
      ];
      await store.write(es);
      assert.deepEqual(await store.history(pair, 0, T + 10 * M), es);
      assert.deepEqual(await store.range(pair, 0, T + 10 * M), es);
    } finally {
      await store.close();
    }
  });

  // PostgreSQL orders text by the database's collation (ICU or glibc en-US: 'a' < 'B', punctuation ignored), DuckDB
  // by bytes: the same rows came in another order, and a pair list in another order, depending on the backend.
  it('text orders by its bytes, whatever the database collation: rows of one minute by model name, pairs', async () => {
    const store = await open();
    try {
      const pair = pairOf('B');
      const models = ['b-model', 'B-model', 'a_model', 'A.model'];
      await store.write(models.map((m) => ({ ...sampleScored(pair, T), modelName: m })));
      const bytes = [...models].sort(); // JavaScript compares UTF-16 code units: bytes, for ASCII
      assert.deepEqual(
        (await store.history(pair, T, T + 1)).map((e) => e.modelName),
        bytes,
      );
      assert.deepEqual(
        (await store.range(pair, T, T + 1)).map((e) => e.modelName),
        bytes,
      );
      assert.deepEqual(
        (await store.byTargetTime(T, T + 10 * M)).filter((e) => e.pair === pair).map((e) => e.modelName),
        bytes,
      );
      // Pairs: '/' sorts before letters by bytes; a collation that ignores punctuation (glibc's en_US) put …B/USD first.
      const btcUsdt = `X${run}/USDT`;
      const btcbUsd = `X${run}B/USD`;
      await store.write([sampleScored(btcbUsd, T), sampleScored(btcUsdt, T)]);
      const pairs = (await store.pairs()).filter((p) => p === btcUsdt || p === btcbUsd);
      assert.deepEqual(pairs, [btcUsdt, btcbUsd]);
    } finally {
      await store.close();
    }
  });

  // The dashboard's chart data (`/v1/dashboard/series`) asks for the direction columns, which are booleans.
  it('columns: numbers and booleans as numbers (true 1, false 0), null kept, in time order', async () => {
    const store = await open();
    try {
      const pair = pairOf('B');
      await store.write([
        sampleUnscorable(pair, T + 2 * M),
        sampleScored(pair, T + M, { hit: false }),
        sampleScored(pair, T, { hit: true }),
      ]);
      const cols = await store.columns(pair, 0, T + 10 * M, [
        'window_end',
        'model_version',
        'abs_error',
        'direction_hit',
        'direction_tie',
        'in_band',
      ]);
      assert.deepEqual(cols, {
        window_end: [T, T + M, T + 2 * M],
        model_version: [1, 1, 1],
        abs_error: [1.75, 4.75, null],
        direction_hit: [1, 0, null],
        direction_tie: [0, 0, 0],
        in_band: [1, 1, null],
      });
    } finally {
      await store.close();
    }
  });

  it('a score and a later time-out of its prediction in one write: the score is stored (one row and many)', async () => {
    // A write-behind merges what was queued while a write was in flight: the score and a time-out made later of the same
    // prediction (its partition given back and taken again) can meet in one write, where the last row of a key won.
    const store = await open();
    try {
      for (const rows of [1, 150]) {
        const pair = pairOf('L');
        const at = (i: number) => T + i * M;
        const scored = Array.from({ length: rows }, (_, i) => sampleScored(pair, at(i)));
        const timeOuts = Array.from({ length: rows }, (_, i) => ({
          ...sampleUnscorable(pair, at(i)),
          reason: 'target_not_closed_in_time' as const,
        }));
        await store.write([...scored, ...timeOuts]);
        assert.deepEqual(await store.history(pair, T, at(rows)), scored, `${rows}: the scores kept`);
      }
    } finally {
      await store.close();
    }
  });

  it('a time-out written after the score of its prediction does not replace it; a score replaces a time-out (one row and many)', async () => {
    // Two monitors across a rebalance write in either order: the member that lost the partition may store a time-out
    // it held after the next owner stored the score. Nothing replaces a scored record (`supersedes`). Both write paths:
    // one row, and more than a DuckDB write sends as one JSON statement (its appender).
    const store = await open();
    try {
      for (const rows of [1, 150]) {
        const pair = pairOf('K');
        const at = (i: number) => T + i * M;
        const timeOut = (i: number) => ({
          ...sampleUnscorable(pair, at(i)),
          reason: 'target_not_closed_in_time' as const,
        });
        const scored = Array.from({ length: rows }, (_, i) => sampleScored(pair, at(i)));
        await store.write(scored);
        await store.write(Array.from({ length: rows }, (_, i) => timeOut(i)));
        assert.deepEqual(await store.history(pair, T, at(rows)), scored, `${rows}: the scores kept`);
        // A score written again (a re-publication, another scoredAt) still replaces the score.
        const again = scored.map((e) => ({ ...e, scoredAt: e.scoredAt + 1 }));
        await store.write(again);
        assert.deepEqual(await store.history(pair, T, at(rows)), again, `${rows}: a score replaces a score`);
        // The other way round, the revision: a time-out, then its prediction scored after all.
        const later = Array.from({ length: rows }, (_, i) => timeOut(rows + i));
        await store.write(later);
        assert.deepEqual(await store.history(pair, at(rows), at(2 * rows)), later);
        const revised = Array.from({ length: rows }, (_, i) => sampleScored(pair, at(rows + i)));
        await store.write(revised);
        assert.deepEqual(await store.history(pair, at(rows), at(2 * rows)), revised, `${rows}: revised`);
      }
    } finally {
      await store.close();
    }
  });
}

/** A location of its own for a test: raw SQL on it, and the errors store opened there. */
export interface FreshLocation {
  /** Runs `statement` there (outside the store), returning its rows. */
  sql(statement: string): Promise<Record<string, unknown>[]>;
  open(): Promise<ErrorsStore>;
  drop(): Promise<void>;
}

/**
 * A table of the store's name made by another version (other columns, or the same in another order) is refused at
 * the open with CC_ERR_STORE_URL naming what differs, and left as it was; on both backends.
 */
export function otherVersionTableContract(fresh: () => Promise<FreshLocation>): void {
  const key = 'PRIMARY KEY (pair, window_end, model_name, model_version)';
  const keyCols =
    'pair VARCHAR NOT NULL, window_end BIGINT NOT NULL, model_name VARCHAR NOT NULL, model_version BIGINT NOT NULL';

  it("an older version's table (fewer columns): refused at the open, naming what it lacks; the table kept", async () => {
    const at = await fresh();
    try {
      await at.sql(`CREATE TABLE prediction_errors_v1 (${keyCols}, close DOUBLE PRECISION, ${key})`);
      await at.sql(`INSERT INTO prediction_errors_v1 VALUES ('BTC/USD', 1, 'm', 1, 2.5)`);
      await assert.rejects(at.open(), (e: CryptocastError) => {
        assert.equal(e.code, ERR.STORE_URL.code);
        assert.match(
          e.message,
          /prediction_errors_v1 was made by another version of cryptocast: it lacks exchange, status/,
        );
        assert.match(e.hint ?? '', /not changed.*a store of its own/s);
        return true;
      });
      const kept = await at.sql('SELECT pair, close FROM prediction_errors_v1');
      assert.deepEqual(
        kept.map((r) => [r.pair, Number(r.close)]),
        [['BTC/USD', 2.5]],
      );
    } finally {
      await at.drop();
    }
  });

  it('the same columns in another order: refused (the appender fills columns by position)', async () => {
    const at = await fresh();
    try {
      const cols = ERRORS_SPEC.columns.map(
        (c) =>
          `${c.name} ${{ bigint: 'BIGINT', double: 'DOUBLE PRECISION', text: 'VARCHAR', boolean: 'BOOLEAN' }[c.type]}`,
      );
      [cols[8], cols[9]] = [cols[9]!, cols[8]!]; // close and predicted_close: both doubles, silently swapped
      await at.sql(`CREATE TABLE prediction_errors_v1 (${cols.join(', ')}, ${key})`);
      await assert.rejects(at.open(), (e: CryptocastError) => {
        assert.equal(e.code, ERR.STORE_URL.code);
        assert.match(e.message, /in another order or of other types/);
        return true;
      });
    } finally {
      await at.drop();
    }
  });
}

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DuckDBConnection } from '@duckdb/node-api';
import { CANDLES_SPEC } from '../../../src/candles/store/candles-table.ts';
import { type DuckDbSession, openDuckDb } from '../../../src/core/duckdb.ts';
import { TECHNICAL_SET } from '../../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../../src/features/store/duckdb.ts';
import { tableName } from '../../../src/features/store/store.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { DuckDbTable, JSON_WRITE_MAX_ROWS } from '../../../src/stores/duckdb-table.ts';
import { featureVector, MIN, T0 } from '../../support/factories.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * A write whose COMMIT fails must fail with that failure. After a failed COMMIT DuckDB has already rolled the
 * transaction back, so the stores' ROLLBACK failed too ("cannot rollback - no transaction is active") and its error
 * replaced the real one: a full disk under `cryptocast run` was logged as that, and nothing could tell what to do.
 *
 * The COMMIT fails for real: just before it, another connection of the same database commits a row with the same
 * key (DuckDB checks the primary key of concurrent transactions at COMMIT).
 */
function conflictAtCommit(conn: DuckDBConnection, other: DuckDBConnection, sql: string): void {
  const run = conn.run.bind(conn);
  let armed = true;
  conn.run = (async (q: string, ...rest: unknown[]) => {
    if (armed && q === 'COMMIT') {
      armed = false;
      await other.run(sql);
    }
    return (run as (q: string, ...r: unknown[]) => ReturnType<DuckDBConnection['run']>)(q, ...rest);
  }) as DuckDBConnection['run'];
}

const sessionOf = (store: unknown) => (store as { session: DuckDbSession }).session;

describe('a DuckDB write whose COMMIT fails reports the COMMIT’s error', () => {
  it('DuckDbTable (predictions, error records, candles)', async () => {
    const file = join(scratchDir('duck-commit-'), 't.duckdb');
    const table = await DuckDbTable.open(CANDLES_SPEC, file);
    const other = await openDuckDb(file);
    const candle: Candle = {
      v: 1,
      exchange: 'binance',
      pair: 'BTC/USDT',
      interval: '1m',
      windowStart: T0,
      windowEnd: T0 + MIN,
      open: 1,
      high: 1,
      low: 1,
      close: 1,
      volume: 1,
      filled: false,
      revision: 0,
    };
    conflictAtCommit(
      sessionOf(table).conn,
      other.conn,
      `INSERT INTO candles_v1 (pair, window_end, window_start, exchange, interval, open, high, low, close, volume, filled, revision)
       VALUES ('BTC/USDT', ${T0 + MIN}, ${T0}, 'binance', '1m', 2, 2, 2, 2, 2, false, 0)`,
    );
    // More rows than a small write takes: the appender's path, the one with a transaction of its own to commit (a small
    // write is one statement, whose error is the commit's).
    const more = Array.from({ length: JSON_WRITE_MAX_ROWS }, (_, i) => ({
      ...candle,
      windowStart: T0 + (100 + i) * MIN,
      windowEnd: T0 + (101 + i) * MIN,
    }));
    await assert.rejects(table.write([candle, ...more]), /constraint violation: duplicate key/);
    // The store is usable afterwards: its staging table was emptied, the next write goes through.
    await table.write([{ ...candle, windowEnd: T0 + 2 * MIN, windowStart: T0 + MIN }]);
    const r = await other.conn.runAndReadAll('SELECT count(*) AS n FROM candles_v1');
    assert.equal(Number(r.getRowObjects()[0]!.n), 2);
    await other.close();
    await table.close();
  });

  it('DuckDbFeatureStore, a write that upserts (rows older than the table’s)', async () => {
    const file = join(scratchDir('duck-commit-'), 'f.duckdb');
    const store = await DuckDbFeatureStore.open(file);
    await store.migrate(TECHNICAL_SET);
    const other = await openDuckDb(file);
    const t = tableName(TECHNICAL_SET);
    await store.write(TECHNICAL_SET, [featureVector({ windowEnd: T0 + 10 * MIN })]);
    const cols = await other.conn.runAndReadAll(
      `SELECT count(*) AS n FROM information_schema.columns WHERE table_name = '${t}'`,
    );
    const width = Number(cols.getRowObjects()[0]!.n);
    const values = Array.from({ length: width - 6 }, () => '0').join(', ');
    conflictAtCommit(
      sessionOf(store).conn,
      other.conn,
      `INSERT INTO ${t} VALUES ('BTC/USDT', ${T0 + MIN}, ${T0}, 'binance', 100, true, ${values})`,
    );
    await assert.rejects(
      store.write(TECHNICAL_SET, [featureVector({ windowEnd: T0 + MIN })]),
      /constraint violation: duplicate key/,
    );
    await other.close();
    await store.close();
  });
});

import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { CandlesTable } from '../../src/candles/store/candles-table.ts';
import { type CryptocastError, ERR } from '../../src/core/errors.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import { candle, MIN, T0 } from './factories.ts';

/** A store location of a test's own, where tables can be made outside the store (as another version left them). */
export interface FreshCandlesLocation {
  /** Runs `statement` there (outside the store), returning its rows. */
  sql(statement: string): Promise<Record<string, unknown>[]>;
  open(): Promise<CandlesTable>;
  drop(): Promise<void>;
}

/** A traded candle as the candle service publishes it under `revise`: what a restarted run needs to revise it. */
const revisable = (windowEnd: number, revision = 0): Candle =>
  candle({
    windowEnd,
    exchange: 'kraken',
    pair: 'BTC/USD',
    open: 100,
    high: 110,
    low: 90,
    close: 105,
    volume: 0.3,
    trades: 3,
    vwap: 101.33333333333333,
    revision,
    revisable: {
      openTs: windowEnd - MIN + 1_250,
      closeTs: windowEnd - 750,
      // Unrounded sums, as they are (binary noise included): the stored value must be the same double.
      volume: 0.30000000000000004,
      quoteVolume: 30.400000000000002,
    },
  });

/** The columns of `candles_v1` as the version before `revisable` made it (TEXT: its type on both backends). */
const BEFORE_REVISABLE = `pair TEXT NOT NULL, window_end BIGINT NOT NULL, window_start BIGINT NOT NULL,
  exchange TEXT NOT NULL, interval TEXT NOT NULL, open DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL,
  low DOUBLE PRECISION NOT NULL, close DOUBLE PRECISION NOT NULL, volume DOUBLE PRECISION NOT NULL, trades BIGINT,
  vwap DOUBLE PRECISION, filled BOOLEAN NOT NULL, revision BIGINT NOT NULL, PRIMARY KEY (pair, window_end)`;

/**
 * The candles table (`openCandlesTable`), the same on DuckDB and PostgreSQL: a candle reads back as written, its
 * `revisable` included (`cryptocast run --late revise` restarted takes the stored minutes back for revisions from it),
 * and a table made before `revisable` was stored is migrated, not refused: its rows stay readable.
 */
export function candlesTableContract(
  fresh: () => Promise<FreshCandlesLocation>,
  /** The table `open` opens: `candles_v1`, or `candle_first_emissions_v1` (the same columns). */
  name = 'candles_v1',
): void {
  it('deleteBefore deletes the rows of one series before a time: not that time, not another series', async () => {
    const at = await fresh();
    const table = await at.open();
    try {
      const btc = [1, 2, 3].map((i) =>
        candle({ windowEnd: T0 + i * MIN, exchange: 'kraken', pair: 'BTC/USD' }),
      );
      const eth = [1, 2].map((i) => candle({ windowEnd: T0 + i * MIN, exchange: 'kraken', pair: 'ETH/USD' }));
      await table.write([...btc, ...eth]);
      await table.deleteBefore('BTC/USD', T0 + 2 * MIN);
      assert.deepEqual(await table.range('BTC/USD', T0, T0 + 10 * MIN), btc.slice(1));
      assert.deepEqual(await table.range('ETH/USD', T0, T0 + 10 * MIN), eth);
    } finally {
      await table.close();
      await at.drop();
    }
  });

  it('a candle reads back as written: with revisable (a revision under revise), and without (filled, imported)', async () => {
    const at = await fresh();
    const table = await at.open();
    try {
      const filled = candle({
        windowEnd: T0 + 3 * MIN,
        exchange: 'kraken',
        pair: 'BTC/USD',
        close: 105,
        volume: 0,
        trades: 0,
        filled: true,
        closingTradeIds: [],
      });
      const imported: Candle = {
        ...candle({ windowEnd: T0 + 4 * MIN, exchange: 'kraken', pair: 'BTC/USD' }),
      };
      delete imported.trades;
      delete imported.vwap;
      // With the ids of its last second's trades (`cryptocast run --source live`), a filled one with none; and where the
      // pair's trades stood (`refillFrom`), ids not yet got included.
      const written = [
        {
          ...revisable(T0 + MIN),
          closingTradeIds: ['7', '8'],
          refillFrom: {
            asOf: T0 + MIN + 7_000,
            lastId: 8,
            lastTs: T0 + MIN - 100,
            recentIds: ['7', '8'],
            pendingIds: { afterId: 3, untilId: 6, sinceTs: T0 + 20_000, got: ['5'] },
          },
        },
        revisable(T0 + 2 * MIN, 2),
        filled,
        imported,
      ];
      await table.write(written);
      assert.deepEqual(await table.range('BTC/USD', T0, T0 + 10 * MIN), written);
      assert.deepEqual(
        await table.page({ series: 'BTC/USD', from: T0, to: T0 + 3 * MIN }),
        written.slice(0, 2),
      );
      assert.deepEqual(await table.latest('BTC/USD'), imported);
      // A revision replaces its minute, revisable too.
      const revised = { ...revisable(T0 + MIN, 1), close: 107, high: 110 };
      revised.revisable = { ...revised.revisable!, closeTs: T0 + MIN - 10, quoteVolume: 31 };
      await table.write([revised]);
      assert.deepEqual(await table.range('BTC/USD', T0, T0 + MIN + 1), [revised]);
    } finally {
      await table.close();
      await at.drop();
    }
  });

  it('a table made before revisable was stored: migrated at the open (its rows read back as before), then written as any', async () => {
    const at = await fresh();
    try {
      await at.sql(`CREATE TABLE ${name} (${BEFORE_REVISABLE})`);
      await at.sql(
        `INSERT INTO ${name} VALUES ('BTC/USD', ${T0 + MIN}, ${T0}, 'kraken', '1m', 100, 110, 90, 105, 0.3, 3, 101.5, false, 0)`,
      );
      const table = await at.open();
      try {
        const old = candle({
          windowEnd: T0 + MIN,
          exchange: 'kraken',
          pair: 'BTC/USD',
          open: 100,
          high: 110,
          low: 90,
          close: 105,
          volume: 0.3,
          trades: 3,
          vwap: 101.5,
        });
        assert.deepEqual(await table.range('BTC/USD', T0, T0 + 10 * MIN), [old], 'no revisable: it had none');
        await table.write([revisable(T0 + 2 * MIN)]);
        assert.deepEqual(await table.range('BTC/USD', T0, T0 + 10 * MIN), [old, revisable(T0 + 2 * MIN)]);
      } finally {
        await table.close();
      }
      // Opened again (another process, the next start): nothing left to add, the rows as they were.
      const again = await at.open();
      try {
        assert.equal(await again.count(), 2);
        assert.deepEqual(await again.latest('BTC/USD'), revisable(T0 + 2 * MIN));
      } finally {
        await again.close();
      }
    } finally {
      await at.drop();
    }
  });

  it("another version's table that lacks more than the added columns: still refused, and kept as it was", async () => {
    const at = await fresh();
    try {
      await at.sql(`CREATE TABLE ${name} (${BEFORE_REVISABLE.replace('vwap DOUBLE PRECISION, ', '')})`);
      await assert.rejects(at.open(), (e: CryptocastError) => {
        assert.equal(e.code, ERR.STORE_URL.code);
        assert.match(
          e.message,
          new RegExp(`${name} was made by another version of cryptocast: it lacks vwap`),
        );
        return true;
      });
      const columns = await at.sql(
        `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '${name}'`,
      );
      assert.equal(columns.length, 13, 'no column added to a table that is refused');
    } finally {
      await at.drop();
    }
  });
}

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { type CryptocastError, ERR } from '../../src/core/errors.ts';
import {
  type FeatureSetDefinition,
  type FeatureStore,
  newFeatureColumns,
  tableName,
} from '../../src/features/store/store.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';

/** The behaviour every feature-store backend must have; run against DuckDB and a real PostgreSQL. */
export function featureStoreContract(open: () => Promise<FeatureStore>): void {
  let n = 0;
  const set = (): FeatureSetDefinition => ({
    name: `t${process.pid}_${++n}`,
    version: 1,
    columns: ['a', 'b'],
    source: 'test',
  });
  const vec = (
    s: FeatureSetDefinition,
    pair: string,
    windowEnd: number,
    a: number | null,
    ready = true,
  ): FeatureVectorRecord => ({
    v: 1,
    featureSet: s.name,
    featureSetVersion: s.version,
    exchange: 'test',
    pair,
    windowStart: windowEnd - 60_000,
    windowEnd,
    close: 100 + windowEnd / 1e12,
    ready,
    values: [a, a === null ? null : a * 2],
  });
  const T = Date.UTC(2025, 0, 7);

  it('round-trips vectors exactly (nulls included) and keeps pairs apart', async () => {
    const store = await open();
    try {
      const s = set();
      const vs = [
        vec(s, 'BTC/USD', T, 0.1),
        vec(s, 'BTC/USD', T + 60_000, null, false),
        vec(s, 'ETH/USD', T, -3.5e-12),
      ];
      await store.write(s, vs);
      assert.deepEqual(await store.history(s, 'BTC/USD', 0, T + 120_000), vs.slice(0, 2));
      assert.deepEqual(await store.history(s, 'ETH/USD', 0, T + 120_000), [vs[2]]);
      assert.deepEqual(
        await store.latest(s),
        new Map([
          ['BTC/USD', T + 60_000],
          ['ETH/USD', T],
        ]),
      );
    } finally {
      await store.close();
    }
  });

  it('writeColumns stores what write stores (values bit for bit, NaN as empty), fresh or over existing rows', async () => {
    const store = await open();
    try {
      const s = set();
      const vs = [
        vec(s, 'BTC/USD', T, 0.1),
        vec(s, 'BTC/USD', T + 60_000, null, false),
        vec(s, 'BTC/USD', T + 120_000, Math.PI),
        vec(s, 'ETH/USD', T, -3.5e-12),
        vec(s, 'ETH/USD', T + 60_000, 5e300),
      ];
      const cols = newFeatureColumns('test', 2, 8);
      for (const v of vs) {
        const i = cols.length++;
        cols.pair[i] = v.pair;
        cols.windowStart[i] = v.windowStart;
        cols.windowEnd[i] = v.windowEnd;
        cols.close[i] = v.close;
        cols.ready[i] = v.ready ? 1 : 0;
        cols.values[i] = v.values[0] ?? Number.NaN;
        cols.values[cols.capacity + i] = v.values[1] ?? Number.NaN;
      }
      await store.writeColumns(s, cols); // an empty table: the direct path
      const want = [...vs.slice(0, 3), ...vs.slice(3)];
      const got = async () => [
        ...(await store.history(s, 'BTC/USD', 0, T + 180_000)),
        ...(await store.history(s, 'ETH/USD', 0, T + 180_000)),
      ];
      assert.deepEqual(await got(), want);
      assert.equal((await store.online(s, 'BTC/USD'))!.vector.windowEnd, T + 120_000);
      cols.values[0] = 42; // the same rows again, one changed: the upsert path
      await store.writeColumns(s, cols);
      assert.equal(await store.count(s), 5);
      assert.equal((await store.asOf(s, 'BTC/USD', T))!.values[0], 42);
    } finally {
      await store.close();
    }
  });

  it('is idempotent on (pair, windowEnd): writing again replaces, never duplicates', async () => {
    const store = await open();
    try {
      const s = set();
      const vs = Array.from({ length: 50 }, (_, i) => vec(s, 'BTC/USD', T + i * 60_000, i));
      await store.write(s, vs);
      await store.write(s, vs);
      assert.equal(await store.count(s), 50);
      await store.write(s, [vec(s, 'BTC/USD', T, 999)]);
      assert.equal(await store.count(s), 50);
      assert.equal((await store.asOf(s, 'BTC/USD', T))!.values[0], 999);
    } finally {
      await store.close();
    }
  });

  // A candle revised within one batch of the feature writer gives two vectors of one minute in one write.
  it('one minute twice in one write: the last one is kept (history and online), the write does not fail', async () => {
    const store = await open();
    try {
      const s = set();
      await store.write(s, [
        vec(s, 'BTC/USD', T, 1),
        vec(s, 'BTC/USD', T + 60_000, 2),
        vec(s, 'BTC/USD', T, 3),
      ]);
      assert.deepEqual(
        (await store.history(s, 'BTC/USD', T, T + 120_000)).map((v) => [v.windowEnd, v.values[0]]),
        [
          [T, 3],
          [T + 60_000, 2],
        ],
      );
      // Over stored rows too (the upsert path), the online vector taking the last of its minute.
      await store.write(s, [vec(s, 'BTC/USD', T + 60_000, 4), vec(s, 'BTC/USD', T + 60_000, 5)]);
      assert.equal((await store.asOf(s, 'BTC/USD', T + 60_000))!.values[0], 5);
      assert.equal((await store.online(s, 'BTC/USD', T + 60_000))!.vector.values[0], 5);
      assert.equal(await store.count(s), 2);
    } finally {
      await store.close();
    }
  });

  /**
   * A backfill re-run over a later part of a stored range (`features --candles` on the latest week's files) starts
   * with a warm-up: its first vectors are not ready. They replaced the ready vectors the full run had stored for those
   * minutes (60 a re-run, in a check), which training then lacked: "re-runs are harmless" was not so.
   */
  it('a ready vector is not replaced by a not-ready one of the same minute (write and writeColumns)', async () => {
    const store = await open();
    try {
      const s = set();
      const stored = [0, 1, 2].map((i) => vec(s, 'BTC/USD', T + i * 60_000, i));
      await store.write(s, stored);
      // The re-run: its first minute still warming up (not ready), then ready with new values.
      await store.write(s, [vec(s, 'BTC/USD', T, null, false), vec(s, 'BTC/USD', T + 60_000, 11)]);
      const cols = newFeatureColumns('test', 2, 2);
      cols.pair[0] = 'BTC/USD';
      cols.windowStart[0] = T + 60_000;
      cols.windowEnd[0] = T + 2 * 60_000;
      cols.close[0] = 1;
      cols.ready[0] = 0;
      cols.values[0] = Number.NaN;
      cols.values[2] = Number.NaN;
      cols.length = 1;
      await store.writeColumns(s, cols);
      const history = await store.history(s, 'BTC/USD', 0, T + 3 * 60_000);
      assert.deepEqual(
        history.map((v) => [v.ready, v.values[0]]),
        [
          [true, 0],
          [true, 11],
          [true, 2],
        ],
      );
      assert.equal(await store.count(s), 3);
    } finally {
      await store.close();
    }
  });

  it('online: the latest ready vector per pair, never moved back by an older write, with its age', async () => {
    const store = await open();
    try {
      const s = set();
      await store.write(s, [
        vec(s, 'BTC/USD', T, 1),
        vec(s, 'BTC/USD', T + 60_000, 2),
        vec(s, 'BTC/USD', T + 120_000, 3, false),
      ]);
      let o = await store.online(s, 'BTC/USD', T + 180_000);
      assert.equal(o!.vector.windowEnd, T + 60_000, 'not-ready vectors are not served');
      assert.equal(o!.ageMs, 120_000);
      await store.write(s, [vec(s, 'BTC/USD', T, 7)]); // a late re-write of an older minute
      o = await store.online(s, 'BTC/USD');
      assert.equal(o!.vector.values[0], 2);
      assert.equal(await store.online(s, 'ETH/USD'), undefined);
    } finally {
      await store.close();
    }
  });

  it('point in time: online(now) is the latest ready vector with windowEnd ≤ now, never one from after now', async () => {
    const store = await open();
    try {
      const s = set();
      await store.write(s, [
        vec(s, 'BTC/USD', T, 1),
        vec(s, 'BTC/USD', T + 60_000, 2, false),
        vec(s, 'BTC/USD', T + 120_000, 3),
      ]);
      // Asked as of a time before the online row (a replay's clock, a query about the past): what was known then.
      const o = await store.online(s, 'BTC/USD', T + 90_000);
      assert.deepEqual(
        o && { windowEnd: o.vector.windowEnd, ageMs: o.ageMs },
        { windowEnd: T, ageMs: 90_000 },
        'the latest ready vector known at T + 90 s',
      );
      assert.equal(await store.online(s, 'BTC/USD', T - 1), undefined, 'nothing was known before T');
      assert.equal((await store.online(s, 'BTC/USD', T + 120_000))?.vector.windowEnd, T + 120_000);
    } finally {
      await store.close();
    }
  });

  it('point in time: asOf(t) is the latest vector with windowEnd ≤ t, never one from after t (property)', async () => {
    const store = await open();
    try {
      const s = set();
      const ends = [...new Set(Array.from({ length: 300 }, (_, i) => T + ((i * 7919) % 997) * 60_000))].sort(
        (a, b) => a - b,
      );
      await store.write(
        s,
        ends.map((e, i) => vec(s, 'BTC/USD', e, i)),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: T - 3_600_000, max: T + 1000 * 60_000 }), {
            minLength: 1,
            maxLength: 30,
          }),
          async (ts) => {
            const got = await store.asOfMany(s, 'BTC/USD', ts);
            ts.forEach((t, i) => {
              const want = [...ends].reverse().find((e) => e <= t);
              assert.equal(got[i]?.windowEnd, want, `as of ${t}`);
              if (got[i] !== undefined) assert.ok(got[i]!.windowEnd <= t, 'a row from after the as-of time');
            });
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      await store.close();
    }
  });

  it('refuses a changed column list under the same version (schema contract)', async () => {
    const store = await open();
    try {
      const s = set();
      await store.migrate(s);
      await store.close();
      const again = await open();
      try {
        await assert.rejects(
          again.migrate({ ...s, columns: ['a', 'b', 'c'] }),
          /bump the feature set version/,
        );
      } finally {
        await again.close();
      }
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
  });

  it('two stores open on one location at once both keep every write, after both close and a reopen', async () => {
    // The embedded runtime opens several stores on one DuckDB file; two database instances on one file lose
    // whatever the other checkpointed. Interleaved writes from both handles, then both closed: all rows remain.
    const s = set();
    const a = await open();
    const b = await open();
    try {
      for (let i = 0; i < 20; i++) {
        await a.write(s, [vec(s, 'BTC/USD', T + i * 60_000, i)]);
        await b.write(s, [vec(s, 'ETH/USD', T + i * 60_000, -i)]);
      }
      assert.equal(await a.count(s), 40);
      assert.equal(await b.count(s), 40);
    } finally {
      await a.close();
      await b.close();
    }
    const again = await open();
    try {
      assert.equal(await again.count(s), 40);
      assert.equal((await again.history(s, 'ETH/USD', 0, T + 3_600_000)).length, 20);
      assert.equal((await again.online(s, 'BTC/USD'))!.vector.values[0], 19);
    } finally {
      await again.close();
    }
  });
}

/** A place no store has used yet, where statements run outside the store (another version's tables are made). */
export interface FreshFeatureLocation {
  /** Runs `statement` there, outside the store, returning its rows (`types`: how the backend spells them). */
  sql(statement: string): Promise<Record<string, unknown>[]>;
  types: { text: string; double: string };
  open(): Promise<FeatureStore>;
  drop(): Promise<void>;
}

/**
 * A feature table of the set's name whose base columns (the first six: pair … ready) or column types are not this
 * version's (a table another program or version made there) is refused at `migrate` with CC_ERR_STORE_URL naming
 * what differs, and left as it was: the check compared only the feature columns' names, and the writes went into it.
 */
export function otherLayoutFeatureTableContract(fresh: () => Promise<FreshFeatureLocation>): void {
  const set: FeatureSetDefinition = { name: 'layout', version: 1, columns: ['a', 'b'], source: 'test' };
  const t = tableName(set);

  async function refused(at: FreshFeatureLocation, create: string, message: RegExp): Promise<void> {
    await at.sql(create);
    const store = await at.open();
    try {
      await assert.rejects(store.migrate(set), (e: CryptocastError) => {
        assert.equal(e.code, ERR.STORE_URL.code);
        assert.match(e.message, message);
        assert.match(e.hint ?? '', /not changed/);
        return true;
      });
    } finally {
      await store.close();
    }
    // Nothing was written there, and no table of the store's made beside it (read after the close: DuckDB's file).
    const tables = await at.sql(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE '${t}%' ORDER BY table_name`,
    );
    assert.deepEqual(
      tables.map((r) => r.t),
      [t],
    );
    assert.equal(Number((await at.sql(`SELECT count(*) AS n FROM ${t}`))[0]!.n), 0);
  }

  it('a table of other base columns (the feature columns alike): refused at migrate, naming them; not written', async () => {
    const at = await fresh();
    try {
      const { text, double } = at.types;
      await refused(
        at,
        `CREATE TABLE ${t} (symbol ${text}, ts BIGINT, price ${double}, qty ${double}, side ${text}, venue ${text}, a ${double}, b ${double})`,
        new RegExp(`${t} was made by another version of cryptocast: it lacks pair, window_end`),
      );
    } finally {
      await at.drop();
    }
  });

  it('the same column names, one of another type: refused (a feature column of text, close of text)', async () => {
    const at = await fresh();
    try {
      const { text, double } = at.types;
      await refused(
        at,
        `CREATE TABLE ${t} (pair ${text} NOT NULL, window_end BIGINT NOT NULL, window_start BIGINT NOT NULL, exchange ${text} NOT NULL, close ${text} NOT NULL, ready BOOLEAN NOT NULL, a ${double}, b ${text}, PRIMARY KEY (pair, window_end))`,
        /in another order or of other types/,
      );
    } finally {
      await at.drop();
    }
  });
}

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { backfillFeatures } from '../../../src/features/backfill.ts';
import {
  type BulkWrite,
  type FeatureColumns,
  type FeatureStore,
  RowsStoredError,
} from '../../../src/features/store/store.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * The backfill's hand-over to a store that takes overlapping batches (`bulk.overlap`): a buffer is never touched
 * while its write is in flight, every row arrives once and in order, and an error of either side comes out.
 * A fake store (it only takes batches); the real DuckDB path is test/integration/features-backfill.test.ts.
 */
const dir = scratchDir('backfill-unit-');
const T0 = Date.UTC(2022, 0, 1);
/** Headerless Binance klines, `n` minutes from `from`. */
function klines(name: string, from: number, n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = from + i * 60_000;
    const p = 100 + Math.sin(i / 10) * 5;
    lines.push(`${t},${p},${p + 1},${p - 1},${p + 0.5},${10 + (i % 7)},${t + 59_999},1000,5,5,500,0`);
  }
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
const files = [0, 1, 2].map((d) => klines(`BTCUSDT-1m-2022-01-0${d + 1}.csv`, T0 + d * 86_400_000, 1440));

class FakeStore {
  readonly kind = 'duckdb' as const;
  readonly windowEnds: number[] = [];
  readonly touched: string[] = [];
  calls = 0;
  /** Writes that have settled. */
  done = 0;
  /** The most writes running at once. */
  most = 0;
  /** Rows per batch. */
  readonly sizes: number[] = [];
  readonly bulk: BulkWrite;
  private readonly failAt: number;
  private readonly failure: (call: number) => Error;
  constructor(
    bulk: BulkWrite,
    failAt = 0,
    failure = (call: number): Error => new Error(`write ${call} failed`),
  ) {
    this.bulk = bulk;
    this.failAt = failAt;
    this.failure = failure;
  }
  async writeColumns(_set: unknown, rows: FeatureColumns): Promise<void> {
    const call = ++this.calls;
    this.sizes.push(rows.length);
    this.most = Math.max(this.most, call - this.done);
    try {
      await this.take(call, rows);
    } finally {
      this.done++;
    }
  }
  private async take(call: number, rows: FeatureColumns): Promise<void> {
    const before = Array.from(rows.windowEnd.subarray(0, rows.length));
    const length = rows.length;
    // Stay in flight for a while, as DuckDB does (the backfill computes meanwhile).
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    if (rows.length !== length || before.some((w, i) => rows.windowEnd[i] !== w))
      this.touched.push(`batch ${call} changed while being written`);
    if (call === this.failAt) throw this.failure(call);
    this.windowEnds.push(...before);
  }
}
const asStore = (s: FakeStore) => s as unknown as FeatureStore;

describe('backfillFeatures: overlapping batches', () => {
  for (const inFlight of [0, 1, 2]) {
    it(`hands over every row once, in order, never touching a buffer in flight (${inFlight} in flight)`, async () => {
      const store = new FakeStore({ rows: 700, inFlight, mergeTail: false });
      const stats = await backfillFeatures({ files, store: asStore(store), exchange: 'binance' });
      assert.equal(stats.rows, 3 * 1440);
      assert.deepEqual(store.touched, []);
      assert.equal(store.calls, Math.ceil((3 * 1440) / 700));
      assert.ok(store.most <= Math.max(1, inFlight), `${store.most} writes at once`);
      // And they do overlap: the point of handing over more than one.
      if (inFlight === 2) assert.ok(store.most >= 2, `${store.most} writes at once`);
      // Writes settle in order here (each takes as long), so the rows arrive in order.
      assert.deepEqual(
        store.windowEnds,
        Array.from({ length: 3 * 1440 }, (_, i) => T0 + (i + 1) * 60_000),
      );
    });
  }

  it('lets the last batch take the rest rather than write a small batch alone (mergeTail)', async () => {
    const store = new FakeStore({ rows: 700, inFlight: 2, mergeTail: true });
    await backfillFeatures({ files, store: asStore(store), exchange: 'binance' });
    // 4,320 rows: six batches of 700, the last with the 120 after them.
    assert.deepEqual(store.sizes, [700, 700, 700, 700, 700, 820]);
    assert.deepEqual(store.touched, []);
    assert.deepEqual(
      store.windowEnds,
      Array.from({ length: 3 * 1440 }, (_, i) => T0 + (i + 1) * 60_000),
    );
  });

  for (const inFlight of [1, 2]) {
    it(`throws a write's error (${inFlight} in flight)`, async () => {
      const store = new FakeStore({ rows: 700, inFlight, mergeTail: false }, 3);
      await assert.rejects(
        backfillFeatures({ files, store: asStore(store), exchange: 'binance' }),
        /write 3 failed/,
      );
    });

    // DuckDB's overlapping batches commit the rows, then move the online vectors: a failure of the move leaves the
    // rows stored, and `features --json` must report them (it reported one batch fewer than the table held).
    it(`a write that failed after storing its rows (RowsStoredError): counted as stored, its error thrown (${inFlight} in flight)`, async () => {
      const store = new FakeStore(
        { rows: 700, inFlight, mergeTail: false },
        3,
        (call) => new RowsStoredError(`write ${call}: rows stored, online not moved`),
      );
      const reported: number[] = [];
      await assert.rejects(
        backfillFeatures({
          files,
          store: asStore(store),
          exchange: 'binance',
          onStored: (n) => reported.push(n),
        }),
        /write 3: rows stored/,
      );
      // Every batch handed over was stored (the fake takes the one in flight after the failure too), the third as well.
      assert.ok(store.calls >= 3);
      assert.equal(reported.at(-1), store.calls * 700);
    });

    it(`throws the last write's error, no batch after it (${inFlight} in flight)`, async () => {
      const store = new FakeStore({ rows: 700, inFlight, mergeTail: false }, 7);
      await assert.rejects(
        backfillFeatures({ files, store: asStore(store), exchange: 'binance' }),
        /write 7 failed/,
      );
    });

    it(`throws a reading error once the writes in flight have settled, their errors second (${inFlight} in flight)`, async () => {
      // 1,440 rows of the first file: write 2 (rows 700–1,399) is in flight (and write 1 with 2) when the second file fails to read.
      const store = new FakeStore({ rows: 700, inFlight, mergeTail: false }, 2);
      const bad = join(dir, 'not-there', 'BTCUSDT-1m-2022-01-09.csv');
      await assert.rejects(
        backfillFeatures({ files: [files[0]!, bad], store: asStore(store), exchange: 'binance' }),
        (err: Error) => /not-there/.test(err.message),
      );
      assert.equal(store.calls, 2);
      assert.equal(store.done, 2);
    });
  }
});

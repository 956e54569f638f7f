import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { backfillFeatures } from '../../../src/features/backfill.ts';
import type { BulkWrite, FeatureColumns, FeatureStore } from '../../../src/features/store/store.ts';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import { SHARED_DATA } from '../../support/data.ts';

/**
 * The whole output of a backfill over real recorded data — a year of Binance BTCUSDT minutes (2022, 365 daily zips,
 * the input of `./bench/run peers`) — is exactly what it was before the backfill's speed work (the reading ahead of
 * zips, src/features/backfill.ts): every row's pair, times, close, ready flag and 32 values, bit for bit (NaN as one
 * NaN), hashed row by row. The digest was taken at 1985c8d, before those changes. The values themselves are held to
 * trading-signals' by test/unit/features/indicators-bit-identical.test.ts; this holds the whole path (files → zip →
 * lines → candles → checks → indicators → column batches) to what it gave.
 */
const YEAR = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02', 'BTCUSDT');
const DIGEST_AT_1985C8D = 'abb15cec55bd53d894e7b017ce1e115b23d5cd2e8a0732c330fc7109b6d68d1c';

/** Takes the batches as a store would and hashes them row by row (independent of where batches begin and end). */
class HashingStore {
  readonly kind = 'duckdb' as const;
  readonly bulk: BulkWrite = { rows: 100_000, inFlight: 2, mergeTail: true };
  rows = 0;
  private readonly hash = createHash('sha256');
  private readonly row = new Float64Array(4 + FEATURE_COLUMNS.length);
  async writeColumns(_set: unknown, b: FeatureColumns): Promise<void> {
    // Stay in flight for a turn, as DuckDB does (the backfill computes meanwhile).
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < b.length; i++) {
      this.row[0] = b.windowStart[i]!;
      this.row[1] = b.windowEnd[i]!;
      this.row[2] = b.close[i]!;
      this.row[3] = b.ready[i]!;
      for (let k = 0; k < FEATURE_COLUMNS.length; k++) {
        const x = b.values[k * b.capacity + i]!;
        this.row[4 + k] = Number.isNaN(x) ? Number.NaN : x;
      }
      this.hash.update(`${b.exchange}|${b.pair[i]}|`);
      this.hash.update(new Uint8Array(this.row.buffer));
    }
    this.rows += b.length;
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

describe('backfill: the whole output on a year of real minutes', () => {
  it('is bit for bit what it was before the speed work (525,600 rows × 32 columns)', async () => {
    const files = readdirSync(YEAR)
      .filter((f) => /-2022-\d\d-\d\d\.zip$/.test(f))
      .sort()
      .map((f) => join(YEAR, f));
    assert.equal(files.length, 365);
    const store = new HashingStore();
    const stats = await backfillFeatures({
      files,
      store: store as unknown as FeatureStore,
      exchange: 'binance',
    });
    assert.equal(stats.rows, 525_600);
    assert.equal(stats.ready, 525_540);
    assert.equal(stats.rejects, 0);
    assert.equal(store.rows, 525_600);
    assert.equal(store.digest(), DIGEST_AT_1985C8D);
  });
});

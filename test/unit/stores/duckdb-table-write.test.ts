import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DuckDbTable, JSON_WRITE_MAX_ROWS } from '../../../src/stores/duckdb-table.ts';
import type { TableSpec } from '../../../src/stores/table.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * `DuckDbTable.write` has two paths: up to `JSON_WRITE_MAX_ROWS` rows as one JSON parameter, more through the
 * appender. Both must store exactly the values given (every double to the bit, every string as it was) and both must
 * upsert on the key; values JSON cannot carry exactly (NaN, ±Infinity, −0) must still be stored as they are.
 */
interface Row {
  pair: string;
  ts: number;
  x: number;
  y: number | null;
  flag: boolean | null;
  note: string | null;
}

const SPEC: TableSpec<Row> = {
  name: 'write_paths',
  key: ['pair', 'ts'],
  columns: [
    { name: 'pair', type: 'text', get: (r) => r.pair },
    { name: 'ts', type: 'bigint', get: (r) => r.ts },
    { name: 'x', type: 'double', get: (r) => r.x },
    { name: 'y', type: 'double', get: (r) => r.y, nullable: true },
    { name: 'flag', type: 'boolean', get: (r) => r.flag, nullable: true },
    { name: 'note', type: 'text', get: (r) => r.note, nullable: true },
  ],
  fromRow: (r) => ({
    pair: String(r.pair),
    ts: Number(r.ts),
    x: r.x as number,
    y: r.y === null ? null : (r.y as number),
    flag: r.flag === null ? null : Boolean(r.flag),
    note: r.note === null ? null : String(r.note),
  }),
};

const open = () => DuckDbTable.open(SPEC, join(scratchDir('duck-write-'), 'w.duckdb'));

/** Rows as the table gives them back, in key order. */
const all = (t: DuckDbTable<Row>) => t.scan(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);

/** Same bits: -0 is not 0, NaN is NaN. */
function sameRows(got: Row[], want: Row[]): void {
  assert.equal(got.length, want.length);
  want.forEach((w, i) => {
    const g = got[i]!;
    for (const k of Object.keys(w) as (keyof Row)[])
      assert.ok(Object.is(g[k], w[k]), `row ${i} ${k}: stored ${String(g[k])}, written ${String(w[k])}`);
  });
}

const double = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0.1, 0.2 + 0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 123456.789),
);
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom("it's", 'a"b\\c', '\n\t\u0000', ''),
);
const rowsArb = (min: number, max: number) =>
  fc
    .uniqueArray(fc.integer({ min: -1e12, max: 1e12 }), { minLength: min, maxLength: max })
    .chain((ts) =>
      fc.tuple(
        ...ts.map((t) =>
          fc.record({
            pair: fc.constant('BTC/USDT'),
            ts: fc.constant(t),
            x: double,
            y: fc.option(double),
            flag: fc.option(fc.boolean()),
            note: fc.option(text),
          }),
        ),
      ),
    )
    .map((rows) => [...rows].sort((a, b) => a.ts - b.ts));

describe('DuckDbTable.write: the small (JSON) and large (appender) paths', () => {
  it('a small write stores every double to the bit and every string as it was', async () => {
    const t = await open();
    try {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(rowsArb(1, 40), async (generated) => {
          const pair = `P${run++}`; // each run its own series
          const rows = generated.map((r) => ({ ...r, pair }));
          await t.write(rows);
          sameRows(await t.range(pair, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER), rows);
        }),
        { numRuns: 60 },
      );
    } finally {
      await t.close();
    }
  });

  it('both paths store the same rows, and each upserts over the other', async () => {
    const large = JSON_WRITE_MAX_ROWS + 1;
    const rows: Row[] = Array.from({ length: large }, (_, i) => ({
      pair: 'ETH/USDT',
      ts: i,
      x: Math.sin(i) * 1e3,
      y: i % 3 === 0 ? null : 1 / (i + 1),
      flag: i % 2 === 0,
      note: i % 5 === 0 ? null : `n'${i}"`,
    }));
    const a = await open();
    const b = await open();
    try {
      await a.write(rows); // the appender
      for (let i = 0; i < large; i += 50) await b.write(rows.slice(i, i + 50)); // JSON, 50 at a time
      sameRows(await all(a), rows);
      sameRows(await all(b), rows);
      // Upserts: the small path over rows the large path wrote, and the reverse.
      const changed = rows.map((r) => ({ ...r, x: r.x + 1, note: 'changed' }));
      await a.write(changed.slice(0, 10));
      await b.write(changed);
      sameRows(await all(a), [...changed.slice(0, 10), ...rows.slice(10)]);
      sameRows(await all(b), changed);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('values JSON cannot carry exactly (NaN, ±Infinity, −0) are stored as they are', async () => {
    const t = await open();
    try {
      const rows: Row[] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0].map(
        (x, i) => ({
          pair: 'BTC/USDT',
          ts: i,
          x,
          y: x,
          flag: null,
          note: null,
        }),
      );
      for (const r of rows) await t.write([r]); // one at a time: each its own write
      sameRows(await all(t), rows);
    } finally {
      await t.close();
    }
  });

  it('a string with a lone surrogate (no exact UTF-8 form) is stored as the appender stores it, U+FFFD in its place', async () => {
    const t = await open();
    try {
      const row: Row = { pair: 'BTC/USDT', ts: 1, x: 1, y: null, flag: null, note: 'a\ud83db' };
      await t.write([row]);
      sameRows(await all(t), [{ ...row, note: 'a\ufffdb' }]);
    } finally {
      await t.close();
    }
  });

  it('a later value of the same key in one small write wins; a failed write leaves nothing', async () => {
    const t = await open();
    try {
      const r: Row = { pair: 'BTC/USDT', ts: 1, x: 1, y: null, flag: null, note: null };
      await t.write([r, { ...r, x: 2 }]);
      sameRows(await all(t), [{ ...r, x: 2 }]);
      // A NULL in a NOT NULL column fails the statement: none of the batch is stored.
      const bad = { ...r, ts: 3, x: null as unknown as number };
      await assert.rejects(t.write([{ ...r, ts: 2 }, bad]), /NOT NULL/);
      sameRows(await all(t), [{ ...r, x: 2 }]);
    } finally {
      await t.close();
    }
  });
});

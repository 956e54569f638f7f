import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { FeatureColumns } from './store.ts';

/**
 * Column batches into PostgreSQL by `COPY … FROM STDIN (FORMAT binary)` (through `pg-copy-streams`): each row is
 * written straight from the columns into PostgreSQL's binary tuple format, doubles as the 8 bytes they are (so they
 * arrive bit for bit, no decimal text on either side). Columns, in order: pair, window_end, window_start, exchange,
 * close, ready, then the feature columns.
 */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const ROWS_PER_BUFFER = 4096;

export async function copyColumns(
  client: pg.PoolClient,
  table: string,
  columnNames: readonly string[],
  rows: FeatureColumns,
): Promise<void> {
  const k = columnNames.length - 6;
  const sql = `COPY ${table} (${columnNames.join(', ')}) FROM STDIN (FORMAT binary)`;
  await pipeline(Readable.from(tuples(rows, k)), client.query(copyFrom(sql)));
}

function* tuples(rows: FeatureColumns, k: number): Generator<Buffer> {
  const header = Buffer.alloc(SIGNATURE.length + 8);
  SIGNATURE.copy(header);
  yield header; // flags and header extension length: 0
  const exchange = Buffer.from(rows.exchange, 'utf8');
  const pairBytes = new Map<string, Buffer>();
  for (let from = 0; from < rows.length; from += ROWS_PER_BUFFER) {
    const to = Math.min(rows.length, from + ROWS_PER_BUFFER);
    let size = 0;
    for (let i = from; i < to; i++) {
      let p = pairBytes.get(rows.pair[i]!);
      if (p === undefined) {
        p = Buffer.from(rows.pair[i]!, 'utf8');
        pairBytes.set(rows.pair[i]!, p);
      }
      size += 2 + 4 + p.length + 12 + 12 + 4 + exchange.length + 12 + 5 + k * 12;
    }
    const buf = Buffer.allocUnsafe(size + (to === rows.length ? 2 : 0));
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let o = 0;
    const bigint = (x: number) => {
      dv.setInt32(o, 8);
      const hi = Math.floor(x / 4294967296);
      dv.setInt32(o + 4, hi);
      dv.setUint32(o + 8, x - hi * 4294967296);
      o += 12;
    };
    const float8 = (x: number) => {
      if (Number.isNaN(x)) {
        dv.setInt32(o, -1); // NULL
        o += 4;
        return;
      }
      dv.setInt32(o, 8);
      dv.setFloat64(o + 4, x);
      o += 12;
    };
    for (let i = from; i < to; i++) {
      dv.setInt16(o, 6 + k);
      o += 2;
      const p = pairBytes.get(rows.pair[i]!)!;
      dv.setInt32(o, p.length);
      p.copy(buf, o + 4);
      o += 4 + p.length;
      bigint(rows.windowEnd[i]!);
      bigint(rows.windowStart[i]!);
      dv.setInt32(o, exchange.length);
      exchange.copy(buf, o + 4);
      o += 4 + exchange.length;
      float8(rows.close[i]!);
      dv.setInt32(o, 1);
      buf[o + 4] = rows.ready[i] === 1 ? 1 : 0;
      o += 5;
      for (let c = 0; c < k; c++) float8(rows.values[c * rows.capacity + i]!);
    }
    if (to === rows.length) {
      dv.setInt16(o, -1); // end of data
      o += 2;
    }
    yield o === buf.length ? buf : buf.subarray(0, o);
  }
  if (rows.length === 0) {
    const end = Buffer.alloc(2);
    end.writeInt16BE(-1);
    yield end;
  }
}

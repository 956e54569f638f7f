import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBBigIntVector,
  type DuckDBBooleanVector,
  type DuckDBConnection,
  type DuckDBDataChunk,
  type DuckDBDoubleVector,
  DuckDBTableFunction,
} from '@duckdb/node-api';
import type { FeatureColumns, FeatureSetDefinition } from './store.ts';

/**
 * Column batches into DuckDB as a table function that DuckDB scans (`INSERT INTO t SELECT * FROM fn()`): each of
 * DuckDB's 2,048-row chunks is filled by copying whole column slices into its vectors. The appender path it replaces
 * (`appendRow` per row, then the appender's own flushes) took about three times as long for a year of rows, most of
 * it inside the appender.
 *
 * One function per connection and feature set; the batch it reads is set right before the statement and cleared
 * after (the store runs its statements one at a time). A statement covers a run of rows of one pair: the pair and
 * the exchange are constants of the statement rather than a string per row (half the cost of filling a chunk).
 */
export class DuckDbColumnSource {
  readonly name: string;
  private rows: FeatureColumns | undefined;
  private next = 0;
  private end = 0;
  private readonly columns: readonly string[];

  private constructor(name: string, columns: readonly string[]) {
    this.name = name;
    this.columns = columns;
  }

  private static count = 0;

  static register(conn: DuckDBConnection, set: FeatureSetDefinition): DuckDbColumnSource {
    const src = new DuckDbColumnSource(
      `cryptocast_rows_${set.name}_v${set.version}_${++DuckDbColumnSource.count}`,
      set.columns,
    );
    const names = ['window_end', 'window_start', 'close', 'ready', ...set.columns];
    const types = [BIGINT, BIGINT, DOUBLE, BOOLEAN, ...set.columns.map(() => DOUBLE)];
    const fn = DuckDBTableFunction.create({
      name: src.name,
      bindFunction: (bind) => {
        names.forEach((n, i) => {
          bind.addResultColumn(n, types[i]!);
        });
      },
      initFunction: () => {},
      mainFunction: (info, chunk) => {
        try {
          src.fill(chunk, set.columns.length);
        } catch (err) {
          info.setError((err as Error).message);
        }
      },
    });
    conn.registerTableFunction(fn);
    return src;
  }

  /** Inserts `rows` into `table` (the feature table's column order), one statement per run of one pair. */
  async insert(conn: DuckDBConnection, rows: FeatureColumns, table: string): Promise<void> {
    const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
    const cols = this.columns.map((c) => `"${c}"`).join(', ');
    let from = 0;
    while (from < rows.length) {
      const pair = rows.pair[from]!;
      let to = from + 1;
      while (to < rows.length && rows.pair[to] === pair) to++;
      this.rows = rows;
      this.next = from;
      this.end = to;
      try {
        await conn.run(
          `INSERT INTO ${table} SELECT ${lit(pair)}, window_end, window_start, ${lit(rows.exchange)}, close, ready, ${cols} FROM ${this.name}()`,
        );
      } finally {
        this.rows = undefined;
      }
      from = to;
    }
  }

  private fill(chunk: DuckDBDataChunk, k: number): void {
    const rows = this.rows;
    const from = this.next;
    const n = rows === undefined ? 0 : Math.min(2048, this.end - from);
    chunk.rowCount = n;
    if (rows === undefined || n === 0) return;
    this.next = from + n;
    setBigInts(chunk.getColumnVector(0) as DuckDBBigIntVector, rows.windowEnd, from, n);
    setBigInts(chunk.getColumnVector(1) as DuckDBBigIntVector, rows.windowStart, from, n);
    const ready = chunk.getColumnVector(3) as DuckDBBooleanVector;
    for (let i = 0; i < n; i++) ready.setItem(i, rows.ready[from + i] === 1);
    ready.flush();
    setDoubles(chunk.getColumnVector(2) as DuckDBDoubleVector, rows.close.subarray(from, from + n));
    for (let c = 0; c < k; c++) {
      const at = c * rows.capacity + from;
      setDoubles(chunk.getColumnVector(4 + c) as DuckDBDoubleVector, rows.values.subarray(at, at + n));
    }
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const TWO_32 = 2 ** 32;

/**
 * Whole numbers (epoch milliseconds) into a BIGINT vector without a BigInt per value: each int64 written as its two
 * 32-bit halves into the vector's buffer (`items`, as `setDoubles`). The same int64 as `BigInt(x)` for every safe
 * integer; anything else (and a big-endian machine, or a buffer that looks different) goes through `setItem`, which
 * throws for a non-integer as before. A BigInt per value was a million allocations for a year of rows.
 */
function setBigInts(v: DuckDBBigIntVector, col: Float64Array, from: number, n: number): void {
  const items = (v as unknown as { items?: unknown }).items;
  const fast = LITTLE_ENDIAN && items instanceof BigInt64Array && items.length >= n;
  const words = fast ? new Int32Array(items.buffer, items.byteOffset, 2 * n) : undefined;
  for (let i = 0; i < n; i++) {
    const x = col[from + i]!;
    if (words !== undefined && Number.isSafeInteger(x)) {
      const hi = Math.floor(x / TWO_32);
      words[2 * i] = (x - hi * TWO_32) | 0;
      words[2 * i + 1] = hi;
    } else v.setItem(i, BigInt(x));
  }
  v.flush();
}

/**
 * A column slice into a DOUBLE vector: one copy into the vector's buffer (`items`: private in @duckdb/node-api's
 * types, but where its own `setItem` writes), NaN as NULL (only warm-up rows have any,
 * so the validity mask is touched only for them). Falls back to `setItem` should that buffer ever look different.
 */
function setDoubles(v: DuckDBDoubleVector, col: Float64Array): void {
  const items = (v as unknown as { items?: unknown }).items;
  if (items instanceof Float64Array && items.length === col.length) items.set(col);
  else for (let i = 0; i < col.length; i++) v.setItem(i, col[i]!);
  for (let i = 0; i < col.length; i++) if (Number.isNaN(col[i]!)) v.setItem(i, null);
  v.flush();
}

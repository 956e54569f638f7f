import type { DuckDBValue } from '@duckdb/node-api';
import { appendRows, type DuckDbSession, inTransaction, openDuckDb } from '../core/duckdb.ts';
import {
  checkedColumn,
  checkTableLayout,
  columnsToAdd,
  dedupe,
  onConflictUpdate,
  type PageQuery,
  pageLimit,
  seriesColumn,
  type Table,
  type TableSpec,
  timeColumn,
  trimPage,
} from './table.ts';

const SQL_TYPE = { bigint: 'BIGINT', double: 'DOUBLE', text: 'VARCHAR', boolean: 'BOOLEAN' } as const;

/**
 * Writes of up to this many rows go as one JSON parameter in one statement; larger ones through the appender. Why:
 * the appender's close runs on the main thread and commits a staging table, and the upsert after it is three more
 * statements; the JSON statement is parsed and run off the main thread. Measured per write (`./bench/run
 * duckdb-writes`, docs/benchmarks.md): at 1–50 rows, a quarter of the main thread's time and 5–25 % less CPU; past
 * ~100 rows the appender costs less CPU (at 1,000 rows, half) while the JSON path still spares the main thread.
 */
export const JSON_WRITE_MAX_ROWS = 100;

/**
 * A `TableSpec` in a DuckDB file (embedded default), sharing the file's one database with the other stores of the
 * process (`openDuckDb`). Writes are `INSERT OR REPLACE` on the primary key, atomic and idempotent: small ones as
 * one statement with the rows in a JSON parameter, large ones through DuckDB's appender into a staging table and an
 * upsert from it in one transaction (`JSON_WRITE_MAX_ROWS`).
 */
export class DuckDbTable<T> implements Table<T> {
  readonly spec: TableSpec<T>;
  private readonly session: DuckDbSession;
  private migrated = false;
  /** `INSERT OR REPLACE` of the rows given as a JSON array of objects, columns named (one statement: atomic). */
  private readonly jsonUpsert: string;
  private readonly jsonMaxRows: number;

  private constructor(spec: TableSpec<T>, session: DuckDbSession, jsonMaxRows: number) {
    this.spec = spec;
    this.session = session;
    this.jsonMaxRows = jsonMaxRows;
    const { name, columns } = spec;
    const shape = JSON.stringify([Object.fromEntries(columns.map((c) => [c.name, SQL_TYPE[c.type]]))]);
    const rows = `SELECT unnest(from_json($1, '${shape}'), recursive := true)`;
    const names = columns.map((c) => c.name).join(', ');
    // A plain upsert is `INSERT OR REPLACE`; a spec that keeps some stored rows says when (`keepHeldWhen`).
    this.jsonUpsert =
      spec.keepHeldWhen === undefined
        ? `INSERT OR REPLACE INTO ${name} (${names}) ${rows}`
        : `INSERT INTO ${name} (${names}) ${rows} ${onConflictUpdate(spec)}`;
  }

  /** `path` is a file (created if missing) or `:memory:`; `jsonMaxRows` is for benchmarks (both paths, one size). */
  static async open<T>(
    spec: TableSpec<T>,
    path: string,
    o: { jsonMaxRows?: number } = {},
  ): Promise<DuckDbTable<T>> {
    const t = new DuckDbTable(spec, await openDuckDb(path), o.jsonMaxRows ?? JSON_WRITE_MAX_ROWS);
    await t.migrate();
    return t;
  }

  private get conn() {
    return this.session.conn;
  }

  migrate(): Promise<void> {
    return this.session.serial(() => this._migrate());
  }

  private async _migrate(): Promise<void> {
    if (this.migrated) return;
    const { name, columns, key } = this.spec;
    const cols = columns
      .map((c) => `${c.name} ${SQL_TYPE[c.type]}${c.nullable ? '' : ' NOT NULL'}`)
      .join(', ');
    await this.conn.run(`CREATE TABLE IF NOT EXISTS ${name} (${cols}, PRIMARY KEY (${key.join(', ')}))`);
    const layout = async () =>
      (
        await this.conn.runAndReadAll(
          `SELECT column_name AS name, data_type AS type FROM information_schema.columns
       WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = $1 ORDER BY ordinal_position`,
          [name],
        )
      )
        .getRowObjects()
        .map((r) => ({ name: String(r.name), type: String(r.type) }));
    let have = await layout();
    // A table an earlier version made, without the columns added since: they are added (NULL in its rows).
    const added = columnsToAdd(this.spec, have);
    for (const c of added)
      await this.conn.run(`ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${c.name} ${SQL_TYPE[c.type]}`);
    if (added.length > 0) have = await layout();
    checkTableLayout(this.spec, have, SQL_TYPE);
    await this.conn.run(
      `CREATE TEMP TABLE IF NOT EXISTS ${name}_staging AS SELECT * FROM ${name} WITH NO DATA`,
    );
    this.migrated = true;
  }

  write(values: readonly T[]): Promise<void> {
    return this.session.serial(async () => {
      if (values.length === 0) return;
      await this._migrate();
      const rows = dedupe(this.spec, values);
      const json = rows.length <= this.jsonMaxRows ? this.asJson(rows) : undefined;
      if (json !== undefined) await this.conn.run(this.jsonUpsert, [json]);
      else await this.appendAndUpsert(rows);
    });
  }

  /**
   * The rows as one JSON text, or undefined when a value has no exact JSON form (a NaN or an infinity, which JSON
   * would turn into null; −0, which it writes as 0; a fraction in an integer column, which the appender refuses; a
   * string with a lone surrogate, which DuckDB's JSON parser refuses and the appender stores as U+FFFD):
   * those go through the appender. Every other double is exact both ways (shortest round-trip text, parsed back
   * correctly rounded: a property test holds the two paths to the same bits).
   */
  private asJson(rows: readonly T[]): string | undefined {
    const { columns } = this.spec;
    const objects: Record<string, unknown>[] = [];
    for (const v of rows) {
      const o: Record<string, unknown> = {};
      for (const c of columns) {
        const x = c.get(v);
        if (
          typeof x === 'number'
            ? !(c.type === 'bigint' ? Number.isSafeInteger(x) : Number.isFinite(x)) || Object.is(x, -0)
            : typeof x === 'string' && !x.isWellFormed()
        )
          return undefined;
        o[c.name] = x;
      }
      objects.push(o);
    }
    return JSON.stringify(objects);
  }

  /**
   * The appender into the staging table, then `INSERT OR REPLACE` from it, in one transaction: an appender on its own
   * commits what it appended, so a failure part-way would leave rows in staging for the next write to store.
   */
  private async appendAndUpsert(rows: readonly T[]): Promise<void> {
    const { name, columns } = this.spec;
    await inTransaction(
      this.conn,
      async () => {
        await appendRows(
          this.conn,
          `${name}_staging`,
          (function* () {
            for (const v of rows)
              yield columns.map((c) => {
                const x = c.get(v);
                return c.type === 'bigint' && x !== null ? BigInt(x as number) : x;
              });
          })(),
          'temp',
        );
        await this.conn.run(
          this.spec.keepHeldWhen === undefined
            ? `INSERT OR REPLACE INTO ${name} SELECT * FROM ${name}_staging`
            : `INSERT INTO ${name} SELECT * FROM ${name}_staging ${onConflictUpdate(this.spec)}`,
        );
      },
      `${name}_staging`,
    );
  }

  page(q: PageQuery): Promise<T[]> {
    return this.session.serial(async () => {
      const limit = pageLimit(q.limit);
      await this._migrate();
      const time = timeColumn(this.spec);
      const where = [`${seriesColumn(this.spec)} = $1`, `${time} >= $2`, `${time} < $3`];
      const params: DuckDBValue[] = [q.series, BigInt(q.from), BigInt(q.to)];
      if (q.after !== undefined) {
        params.push(BigInt(q.after));
        where.push(`${time} > $${params.length}`);
      }
      for (const [col, value] of Object.entries(q.where ?? {})) {
        params.push(typeof value === 'number' ? BigInt(value) : value);
        where.push(`${checkedColumn(this.spec, col)} = $${params.length}`);
      }
      const order = this.spec.key.slice(1).join(', ');
      const sql = `SELECT * FROM ${this.spec.name} WHERE ${where.join(' AND ')}`;
      const r = await this.conn.runAndReadAll(`${sql} ORDER BY ${order} LIMIT ${limit + 1}`, params);
      const rows = r.getRowObjects().map(this.spec.fromRow);
      const timeOf = (v: T) => Number(this.spec.columns.find((c) => c.name === time)!.get(v));
      return trimPage(rows, limit, timeOf, async (t) => {
        const g = await this.conn.runAndReadAll(
          `${sql} AND ${time} = ${BigInt(t)} ORDER BY ${order}`,
          params,
        );
        return g.getRowObjects().map(this.spec.fromRow);
      });
    });
  }

  /** Every row with time in [from, to), all series, in time order (rebuilding state after a restart). */
  scan(from: number, to: number): Promise<T[]> {
    return this.session.serial(async () => {
      await this._migrate();
      const time = timeColumn(this.spec);
      const r = await this.conn.runAndReadAll(
        `SELECT * FROM ${this.spec.name} WHERE ${time} >= $1 AND ${time} < $2 ORDER BY ${this.spec.key.slice(1).join(', ')}`,
        [BigInt(from), BigInt(to)],
      );
      return r.getRowObjects().map(this.spec.fromRow);
    });
  }

  range(series: string, from: number, to: number): Promise<T[]> {
    return this.session.serial(async () => {
      await this._migrate();
      const time = timeColumn(this.spec);
      const r = await this.conn.runAndReadAll(
        `SELECT * FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 AND ${time} >= $2 AND ${time} < $3 ORDER BY ${this.spec.key.slice(1).join(', ')}`,
        [series, BigInt(from), BigInt(to)],
      );
      return r.getRowObjects().map(this.spec.fromRow);
    });
  }

  columns(
    series: string,
    from: number,
    to: number,
    names: readonly string[],
  ): Promise<Record<string, (number | null)[]>> {
    return this.session.serial(async () => {
      await this._migrate();
      const time = timeColumn(this.spec);
      const cols = names.map((n) => checkedColumn(this.spec, n));
      // Numbers cast to DOUBLE (BIGINT would come back as BigInt), read column by column: no object per row.
      const select = cols.map((c) => `CAST(${c} AS DOUBLE) AS ${c}`).join(', ');
      const r = await this.conn.runAndReadAll(
        `SELECT ${select} FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 AND ${time} >= $2 AND ${time} < $3 ORDER BY ${this.spec.key.slice(1).join(', ')}`,
        [series, BigInt(from), BigInt(to)],
      );
      return r.getColumnsObjectJS() as Record<string, (number | null)[]>;
    });
  }

  latest(series: string): Promise<T | undefined> {
    return this.session.serial(async () => {
      await this._migrate();
      const order = this.spec.key
        .slice(1)
        .map((k) => `${k} DESC`)
        .join(', ');
      const r = await this.conn.runAndReadAll(
        `SELECT * FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 ORDER BY ${order} LIMIT 1`,
        [series],
      );
      const row = r.getRowObjects()[0];
      return row === undefined ? undefined : this.spec.fromRow(row);
    });
  }

  deleteBefore(series: string, before: number): Promise<void> {
    return this.session.serial(async () => {
      await this._migrate();
      await this.conn.run(
        `DELETE FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 AND ${timeColumn(this.spec)} < $2`,
        [series, BigInt(before)],
      );
    });
  }

  /** The distinct series (pairs) in the table. */
  series(): Promise<string[]> {
    return this.session.serial(async () => {
      await this._migrate();
      const col = seriesColumn(this.spec);
      const r = await this.conn.runAndReadAll(
        `SELECT DISTINCT ${col} AS s FROM ${this.spec.name} ORDER BY s`,
      );
      return r.getRowObjects().map((x) => String(x.s));
    });
  }

  /** The largest value of a numeric column (undefined when the table is empty). */
  max(column: string): Promise<number | undefined> {
    return this.session.serial(async () => {
      await this._migrate();
      const r = await this.conn.runAndReadAll(
        `SELECT max(${checkedColumn(this.spec, column)}) AS m FROM ${this.spec.name}`,
      );
      const m = r.getRowObjects()[0]!.m;
      return m === null ? undefined : Number(m);
    });
  }

  count(): Promise<number> {
    return this.session.serial(async () => {
      await this._migrate();
      const r = await this.conn.runAndReadAll(`SELECT count(*) AS n FROM ${this.spec.name}`);
      return Number(r.getRowObjects()[0]!.n);
    });
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

import type pg from 'pg';
import { untilAvailable } from '../core/dependency.ts';
import { permanentPgError, pgConnectError, pgConnectionConfig } from './pg-connection.ts';
import { inTransaction, pgPool } from './pg-pool.ts';
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

const SQL_TYPE = { bigint: 'BIGINT', double: 'DOUBLE PRECISION', text: 'TEXT', boolean: 'BOOLEAN' } as const;
const ARRAY_TYPE = { bigint: 'bigint[]', double: 'float8[]', text: 'text[]', boolean: 'boolean[]' } as const;

/**
 * A `TableSpec` in PostgreSQL (distributed runtime). Writes send columns as arrays and upsert with
 * `INSERT … SELECT FROM unnest(…) ON CONFLICT (key) DO UPDATE` (idempotent, one round trip per chunk). BIGINTs
 * travel as strings, doubles in their shortest exact decimal form.
 */
export class PostgresTable<T> implements Table<T> {
  readonly spec: TableSpec<T>;
  private readonly pool: pg.Pool;
  private migrated = false;

  private constructor(spec: TableSpec<T>, pool: pg.Pool) {
    this.spec = spec;
    this.pool = pool;
  }

  /** `postgres://user[:password]@host:port/db` — put a password in the URL only from the environment. */
  static async open<T>(
    spec: TableSpec<T>,
    url: string,
    o: { signal?: AbortSignal } = {},
  ): Promise<PostgresTable<T>> {
    // The stop cuts a connection attempt short too, not only the wait between attempts.
    const connection = pgConnectionConfig(url);
    const pool = pgPool(connection, { signal: o.signal });
    const t = new PostgresTable(spec, pool);
    // A database that is late or restarting is waited for (readiness says so), never a reason to exit.
    try {
      await untilAvailable('postgresql', () => t.migrate(), {
        // A table of another version's layout stays so however long it is waited for, as an untrusted certificate.
        permanent: (err) => permanentPgError(err, connection),
        signal: o.signal,
      });
    } catch (err) {
      // Nobody will close a table that was never returned: its pool's sockets and timers would keep the process up.
      await pool.end().catch(() => {});
      throw pgConnectError(err, connection);
    }
    return t;
  }

  /**
   * The key after the series (time first), text compared by its bytes (`COLLATE "C"`), as DuckDB does: by the
   * database's collation (ICU or glibc en-US on many servers: 'a' < 'B', punctuation ignored) rows of one minute, and
   * the series, came in another order than from DuckDB.
   */
  private timeOrder(direction: '' | 'DESC' = ''): string {
    return this.spec.key
      .slice(1)
      .map((k) => {
        const text = this.spec.columns.find((c) => c.name === k)!.type === 'text';
        return `${k}${text ? ' COLLATE "C"' : ''}${direction ? ` ${direction}` : ''}`;
      })
      .join(', ');
  }

  async migrate(): Promise<void> {
    if (this.migrated) return;
    const { name, columns, key } = this.spec;
    const cols = columns
      .map((c) => `${c.name} ${SQL_TYPE[c.type]}${c.nullable ? '' : ' NOT NULL'}`)
      .join(', ');
    await this.pool.query(`CREATE TABLE IF NOT EXISTS ${name} (${cols}, PRIMARY KEY (${key.join(', ')}))`);
    const layout = async () =>
      (
        await this.pool.query(
          `SELECT column_name AS name, data_type AS type FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
          [name],
        )
      ).rows as { name: string; type: string }[];
    let have = await layout();
    // A table an earlier version made, without the columns added since: they are added (NULL in its rows). IF NOT
    // EXISTS: another service opening the same table may add them first.
    const added = columnsToAdd(this.spec, have);
    for (const c of added)
      await this.pool.query(`ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${c.name} ${SQL_TYPE[c.type]}`);
    if (added.length > 0) have = await layout();
    checkTableLayout(this.spec, have, SQL_TYPE);
    this.migrated = true;
  }

  async write(values: readonly T[]): Promise<void> {
    if (values.length === 0) return;
    await this.migrate();
    const { name, columns } = this.spec;
    const names = columns.map((c) => c.name);
    const unnest = `SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${ARRAY_TYPE[c.type]}`).join(', ')})`;
    const rows = dedupe(this.spec, values);
    await inTransaction(this.pool, async (client) => {
      for (let i = 0; i < rows.length; i += 10_000) {
        const chunk = rows.slice(i, i + 10_000);
        const params = columns.map((c) =>
          chunk.map((v) => {
            const x = c.get(v);
            return c.type === 'bigint' && x !== null ? String(x) : x;
          }),
        );
        await client.query(
          `INSERT INTO ${name} (${names.join(', ')}) ${unnest} ${onConflictUpdate(this.spec)}`,
          params,
        );
      }
    });
  }

  async page(q: PageQuery): Promise<T[]> {
    const limit = pageLimit(q.limit);
    await this.migrate();
    const time = timeColumn(this.spec);
    const where = [`${seriesColumn(this.spec)} = $1`, `${time} >= $2`, `${time} < $3`];
    const params: unknown[] = [q.series, String(q.from), String(q.to)];
    if (q.after !== undefined) {
      params.push(String(q.after));
      where.push(`${time} > $${params.length}`);
    }
    for (const [col, value] of Object.entries(q.where ?? {})) {
      params.push(String(value));
      where.push(`${checkedColumn(this.spec, col)} = $${params.length}`);
    }
    const order = this.timeOrder();
    const sql = `SELECT * FROM ${this.spec.name} WHERE ${where.join(' AND ')}`;
    const r = await this.pool.query(`${sql} ORDER BY ${order} LIMIT ${limit + 1}`, params);
    const timeOf = (v: T) => Number(this.spec.columns.find((c) => c.name === time)!.get(v));
    return trimPage(r.rows.map(this.spec.fromRow), limit, timeOf, async (t) => {
      const g = await this.pool.query(`${sql} AND ${time} = $${params.length + 1} ORDER BY ${order}`, [
        ...params,
        String(t),
      ]);
      return g.rows.map(this.spec.fromRow);
    });
  }

  async scan(from: number, to: number): Promise<T[]> {
    await this.migrate();
    const time = timeColumn(this.spec);
    const r = await this.pool.query(
      `SELECT * FROM ${this.spec.name} WHERE ${time} >= $1 AND ${time} < $2 ORDER BY ${this.timeOrder()}`,
      [String(from), String(to)],
    );
    return r.rows.map(this.spec.fromRow);
  }

  async range(series: string, from: number, to: number): Promise<T[]> {
    await this.migrate();
    const time = timeColumn(this.spec);
    const r = await this.pool.query(
      `SELECT * FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 AND ${time} >= $2 AND ${time} < $3 ORDER BY ${this.timeOrder()}`,
      [series, String(from), String(to)],
    );
    return r.rows.map(this.spec.fromRow);
  }

  async columns(
    series: string,
    from: number,
    to: number,
    names: readonly string[],
  ): Promise<Record<string, (number | null)[]>> {
    await this.migrate();
    const time = timeColumn(this.spec);
    const cols = names.map((n) => checkedColumn(this.spec, n));
    // PostgreSQL has no cast from boolean to float8 (DuckDB has): a boolean goes through int, true 1 and false 0.
    const asNumber = (c: string) =>
      this.spec.columns.find((x) => x.name === c)!.type === 'boolean' ? `${c}::int::float8` : `${c}::float8`;
    const r = await this.pool.query({
      text: `SELECT ${cols.map((c) => `${asNumber(c)} AS ${c}`).join(', ')} FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 AND ${time} >= $2 AND ${time} < $3 ORDER BY ${this.timeOrder()}`,
      values: [series, String(from), String(to)],
      rowMode: 'array',
    });
    const out: Record<string, (number | null)[]> = Object.fromEntries(cols.map((c) => [c, []]));
    for (const row of r.rows as (number | null)[][])
      for (let i = 0; i < cols.length; i++) out[cols[i]!]!.push(row[i] ?? null);
    return out;
  }

  async latest(series: string): Promise<T | undefined> {
    await this.migrate();
    const order = this.timeOrder('DESC');
    const r = await this.pool.query(
      `SELECT * FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 ORDER BY ${order} LIMIT 1`,
      [series],
    );
    return r.rows.length === 0 ? undefined : this.spec.fromRow(r.rows[0]);
  }

  async deleteBefore(series: string, before: number): Promise<void> {
    await this.migrate();
    await this.pool.query(
      `DELETE FROM ${this.spec.name} WHERE ${seriesColumn(this.spec)} = $1 AND ${timeColumn(this.spec)} < $2`,
      [series, before],
    );
  }

  async series(): Promise<string[]> {
    await this.migrate();
    const col = seriesColumn(this.spec);
    const r = await this.pool.query(
      `SELECT DISTINCT ${col} COLLATE "C" AS s FROM ${this.spec.name} ORDER BY s`,
    );
    return r.rows.map((x: { s: string }) => x.s);
  }

  /** The largest value of a numeric column (undefined when the table is empty). */
  async max(column: string): Promise<number | undefined> {
    await this.migrate();
    const r = await this.pool.query(
      `SELECT max(${checkedColumn(this.spec, column)}) AS m FROM ${this.spec.name}`,
    );
    const m = r.rows[0].m;
    return m === null ? undefined : Number(m);
  }

  async count(): Promise<number> {
    await this.migrate();
    const r = await this.pool.query(`SELECT count(*) AS n FROM ${this.spec.name}`);
    return Number(r.rows[0].n);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

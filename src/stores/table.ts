import { ERR, fail } from '../core/errors.ts';

/**
 * A keyed time-series table, described once and stored by either backend (`DuckDbTable`, `PostgresTable`): the
 * predictions and the monitoring pipeline's error records are both such tables. A spec names the columns (how to
 * read each from a value, its SQL type), the primary key (writes are idempotent upserts on it), the series column
 * reads are filtered on (the pair) and the time column pages are ordered by.
 */
export type ColumnType = 'bigint' | 'double' | 'text' | 'boolean';

export interface Column<T> {
  readonly name: string;
  readonly type: ColumnType;
  readonly get: (v: T) => string | number | boolean | null;
  /** May hold NULL (e.g. the actual close of an unscorable prediction). */
  readonly nullable?: boolean;
  /**
   * Added to the spec after stores were made without it (nullable, after every column of that earlier layout):
   * `migrate` adds it to such a table (`columnsToAdd`), whose rows read back with NULL there, instead of refusing the
   * table as another version's (`checkTableLayout`).
   */
  readonly added?: boolean;
}

export interface TableSpec<T> {
  readonly name: string;
  readonly columns: readonly Column<T>[];
  /** Primary key columns: the first is the series, the second the time. */
  readonly key: readonly string[];
  readonly fromRow: (row: Record<string, unknown>) => T;
  /**
   * When the row stored under a key is kept rather than replaced by the one written: an SQL condition on the stored
   * row (its columns qualified by `held`, the table's name) and the written one (`EXCLUDED.<column>`). Absent: the
   * written row always replaces it (a plain upsert). For rows two writers may write in either order (the monitor's
   * verdicts across a rebalance: `ERRORS_SPEC`).
   */
  readonly keepHeldWhen?: (held: string) => string;
  /**
   * The same rule between two rows of one write (`dedupe`, before the upsert): whether the earlier is kept over the
   * later. A write-behind merges what was queued while a write was in flight, so a score and a later time-out of the
   * same prediction can meet in one write, where the last row of a key won.
   */
  readonly keepEarlier?: (earlier: T, later: T) => boolean;
}

/**
 * The upsert's conflict clause for `spec` (both backends): every non-key column taken from the written row, unless
 * `keepHeldWhen` says the stored one stays.
 */
export function onConflictUpdate<T>(spec: TableSpec<T>): string {
  const update = spec.columns
    .map((c) => c.name)
    .filter((n) => !spec.key.includes(n))
    .map((n) => `${n} = EXCLUDED.${n}`)
    .join(', ');
  const keep = spec.keepHeldWhen?.(spec.name);
  return `ON CONFLICT (${spec.key.join(', ')}) DO UPDATE SET ${update}${keep === undefined ? '' : ` WHERE NOT (${keep})`}`;
}

/** Filters of a page read: the series, [from, to) on the time column, after a cursor, and equalities. */
export interface PageQuery {
  series: string;
  from: number;
  to: number;
  limit?: number;
  /** The time of the last row of the previous page. */
  after?: number;
  /** Extra equality filters on columns (e.g. model_version = 3). */
  where?: Record<string, string | number>;
}

/** Largest page a read returns. */
export const MAX_PAGE = 1000;

export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_PAGE;
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error(`limit must be a positive integer, got ${limit}`);
  return Math.min(limit, MAX_PAGE);
}

export const seriesColumn = <T>(spec: TableSpec<T>) => spec.key[0]!;
export const timeColumn = <T>(spec: TableSpec<T>) => spec.key[1]!;

/**
 * One row per key, the last one of the batch winning unless the spec keeps the earlier (`keepEarlier`): an upsert cannot
 * touch one row twice in a statement.
 */
export function dedupe<T>(spec: TableSpec<T>, values: readonly T[]): T[] {
  const getters = spec.key.map((k) => spec.columns.find((c) => c.name === k)!.get);
  const byKey = new Map<string, T>();
  for (const v of values) {
    const key = getters.map((g) => String(g(v))).join('\u0000');
    const earlier = byKey.get(key);
    if (earlier !== undefined && spec.keepEarlier?.(earlier, v)) continue;
    byKey.set(key, v);
  }
  return [...byKey.values()];
}

/**
 * Refuses a table of the spec's name whose columns (names, order, types as the backend spells them, `sqlType`) are not
 * the spec's: one made by another version of cryptocast. `CREATE TABLE IF NOT EXISTS` keeps such a table as it is, and
 * then every write failed with an error of the database's (DuckDB's "INTERNAL Error: Column … does not exist", which
 * also invalidates the whole database: the run ended saying the file was damaged), or, with the same columns in
 * another order, the appender (which fills columns by position) stored values in the wrong columns.
 */
export function checkTableLayout(
  spec: { readonly name: string; readonly columns: readonly Pick<Column<unknown>, 'name' | 'type'>[] },
  have: readonly { name: string; type: string }[],
  sqlType: Record<ColumnType, string>,
): void {
  const want = spec.columns.map((c) => ({ name: c.name, type: sqlType[c.type].toLowerCase() }));
  const same =
    have.length === want.length &&
    want.every((w, i) => have[i]!.name === w.name && have[i]!.type.toLowerCase() === w.type);
  if (same) return;
  const names = new Set(have.map((h) => h.name));
  const missing = want.filter((w) => !names.has(w.name)).map((w) => w.name);
  const extra = have.filter((h) => !want.some((w) => w.name === h.name)).map((h) => h.name);
  const how = [
    missing.length > 0 ? `lacks ${missing.join(', ')}` : '',
    extra.length > 0 ? `has ${extra.join(', ')} besides` : '',
  ].filter((x) => x !== '');
  throw fail(
    ERR.STORE_URL,
    `the store's table ${spec.name} was made by another version of cryptocast: it ${how.length > 0 ? how.join(' and ') : 'has the columns in another order or of other types'} (this version writes ${want.map((w) => `${w.name} ${w.type}`).join(', ')})`,
    {
      hint:
        'the table was not changed: give this version a store of its own (another duckdb:PATH, or another ' +
        'PostgreSQL database or schema), or run the version that made it',
    },
  );
}

/**
 * The columns a table made by an earlier version lacks and `migrate` adds (`ALTER TABLE … ADD COLUMN`), in order: when
 * the table has the spec's first columns, by name, and every one after them is `added`. Otherwise none: a table of
 * another layout is left to `checkTableLayout` to refuse, unchanged.
 */
export function columnsToAdd<T>(spec: TableSpec<T>, have: readonly { name: string }[]): Column<T>[] {
  const { columns } = spec;
  if (have.length >= columns.length || !have.every((h, i) => h.name === columns[i]!.name)) return [];
  const missing = columns.slice(have.length);
  return missing.every((c) => c.added === true && c.nullable === true) ? [...missing] : [];
}

/** Only column names of the spec reach SQL text. */
export function checkedColumn<T>(spec: TableSpec<T>, name: string): string {
  if (!spec.columns.some((c) => c.name === name)) throw new Error(`${spec.name} has no column ${name}`);
  return name;
}

/**
 * A page of `limit` rows read as `limit + 1` (ordered by time, then the rest of the key): several rows may share a
 * time, and the next page starts after the last time, so a page never ends inside a time's group. If the whole
 * page is one time, the group is completed by `rest` (the rows of that time).
 */
export async function trimPage<T>(
  rows: T[],
  limit: number,
  timeOf: (v: T) => number,
  rest: (time: number) => Promise<T[]>,
): Promise<T[]> {
  if (rows.length <= limit) return rows;
  const last = timeOf(rows[limit - 1]!);
  if (timeOf(rows[limit]!) !== last) return rows.slice(0, limit);
  const kept = rows.slice(0, limit).filter((p) => timeOf(p) !== last);
  return kept.length > 0 ? kept : rest(last);
}

/** What both backends of a table offer (DuckDbTable, PostgresTable). */
export interface Table<T> {
  readonly spec: TableSpec<T>;
  migrate(): Promise<void>;
  /** Idempotent upsert on the primary key. */
  write(values: readonly T[]): Promise<void>;
  page(q: PageQuery): Promise<T[]>;
  /** Every row with time in [from, to), all series, in time order. */
  scan(from: number, to: number): Promise<T[]>;
  /** Every row of one series with time in [from, to), in time order, unpaged (bounded ranges only). */
  range(series: string, from: number, to: number): Promise<T[]>;
  /** The same rows as columns of plain numbers (booleans 1 or 0, or null), only the columns named: cheap for charts. */
  columns(
    series: string,
    from: number,
    to: number,
    names: readonly string[],
  ): Promise<Record<string, (number | null)[]>>;
  latest(series: string): Promise<T | undefined>;
  /** Deletes the rows of one series whose time is before `before`: a table that keeps only what a restart reads. */
  deleteBefore(series: string, before: number): Promise<void>;
  series(): Promise<string[]>;
  max(column: string): Promise<number | undefined>;
  count(): Promise<number>;
  close(): Promise<void>;
}

import { ERR, fail } from '../../core/errors.ts';
import type { FeatureVectorRecord } from '../../schemas/feature.ts';
import { type ColumnType, checkTableLayout } from '../../stores/table.ts';

/**
 * The feature store: one interface, two backends (DuckDB: embedded default, one file; PostgreSQL: distributed).
 *
 * - offline: the full history of a feature set, written idempotently (a row is identified by feature set,
 *   version, pair and windowEnd: writing it again replaces it), read point-in-time;
 * - online: the latest **ready** vector per pair, with its windowEnd so staleness is visible; asked as of a `now`
 *   before it, the latest ready vector with windowEnd ≤ now (never one from after the time asked about);
 * - the store creates and migrates its own schema (`migrate`), and registers each feature-set definition.
 *
 * Point-in-time: a vector describes the candle that closed at `windowEnd`, so it is usable at `windowEnd` and
 * after; `asOf(t)` returns the latest vector with windowEnd ≤ t, never one from after t.
 */
export interface FeatureSetDefinition {
  name: string;
  version: number;
  columns: readonly string[];
  /** Where the values come from (human readable), e.g. "candles 1m → src/features/technical.ts". */
  source: string;
}

export interface OnlineVector {
  vector: FeatureVectorRecord;
  /** Age of the vector when read: now − windowEnd. */
  ageMs: number;
}

export interface FeatureStore {
  readonly kind: 'duckdb' | 'postgres';
  /** Creates or migrates the tables of a feature set and records its definition (idempotent). */
  migrate(set: FeatureSetDefinition): Promise<void>;
  /** Upserts vectors (offline) and advances the online vector of each pair to its latest ready one. */
  write(set: FeatureSetDefinition, vectors: readonly FeatureVectorRecord[]): Promise<void>;
  /** `write` for a backfill's batch in columns: the same rows, without an object per row on the way. */
  writeColumns(set: FeatureSetDefinition, rows: FeatureColumns): Promise<void>;
  /** How a backfill hands this store its batches (`BulkWrite`); absent: `BULK_WRITE_DEFAULT`. */
  readonly bulk?: BulkWrite;
  /** The latest vector of `pair` with windowEnd ≤ `ts` (ready or not), or undefined. */
  asOf(set: FeatureSetDefinition, pair: string, ts: number): Promise<FeatureVectorRecord | undefined>;
  /** For each timestamp, the latest vector with windowEnd ≤ it (an ASOF join), in the input order. */
  asOfMany(
    set: FeatureSetDefinition,
    pair: string,
    ts: readonly number[],
  ): Promise<(FeatureVectorRecord | undefined)[]>;
  /** Vectors of `pair` with fromTs ≤ windowEnd < toTs, ordered by windowEnd. */
  history(
    set: FeatureSetDefinition,
    pair: string,
    fromTs: number,
    toTs: number,
  ): Promise<FeatureVectorRecord[]>;
  online(set: FeatureSetDefinition, pair: string, now?: number): Promise<OnlineVector | undefined>;
  /** The latest windowEnd stored per pair (where a restarted writer or backfill resumes). */
  latest(set: FeatureSetDefinition): Promise<Map<string, number>>;
  count(set: FeatureSetDefinition): Promise<number>;
  close(): Promise<void>;
}

/**
 * A `writeColumns` that failed after its rows were committed: the online vectors are moved in a transaction of their
 * own after the rows (DuckDB's overlapping batches, duckdb-overlapping.ts), and that step failed. The rows count as
 * stored (a backfill reports them, as the file holds them); the write still failed.
 */
export class RowsStoredError extends Error {}

/**
 * How a backfill (src/features/backfill.ts) feeds `writeColumns`: `rows` per call, and how many calls may still be
 * running while it computes the next batch (`inFlight`; 0: it awaits each). It keeps `inFlight` + 1 buffers and never
 * touches one until the call that took it has settled; while a call is running it lets the event loop turn every
 * millisecond or so, for a store that pulls the rows from the JavaScript thread.
 */
export interface BulkWrite {
  rows: number;
  inFlight: number;
  /** The last batch takes the rest (up to twice `rows`) rather than leaving a batch smaller than `rows` alone. */
  mergeTail: boolean;
}

/** One large batch at a time (2^20 rows, about 300 MB of columns at most; pages are only touched as rows arrive). */
export const BULK_WRITE_DEFAULT: BulkWrite = { rows: 1 << 20, inFlight: 0, mergeTail: false };

/**
 * Feature rows in columns, as a backfill computes them (`TechnicalFeatures.updateInto`): row i < `length` has
 * `pair[i]`, `windowStart[i]`, …, and the value of column k at `values[k · capacity + i]` (NaN = empty).
 */
export interface FeatureColumns {
  exchange: string;
  length: number;
  capacity: number;
  pair: string[];
  windowStart: Float64Array;
  windowEnd: Float64Array;
  close: Float64Array;
  ready: Uint8Array;
  values: Float64Array;
}

export function newFeatureColumns(exchange: string, columns: number, capacity: number): FeatureColumns {
  return {
    exchange,
    length: 0,
    capacity,
    pair: new Array<string>(capacity),
    windowStart: new Float64Array(capacity),
    windowEnd: new Float64Array(capacity),
    close: new Float64Array(capacity),
    ready: new Uint8Array(capacity),
    values: new Float64Array(columns * capacity),
  };
}

/** Row i of a column batch as a vector record (for the few rows a store handles one by one). */
export function recordOfRow(set: FeatureSetDefinition, rows: FeatureColumns, i: number): FeatureVectorRecord {
  const values: (number | null)[] = new Array(set.columns.length);
  for (let k = 0; k < set.columns.length; k++) {
    const x = rows.values[k * rows.capacity + i]!;
    values[k] = Number.isNaN(x) ? null : x;
  }
  return {
    v: 1,
    featureSet: set.name,
    featureSetVersion: set.version,
    exchange: rows.exchange,
    pair: rows.pair[i]!,
    windowStart: rows.windowStart[i]!,
    windowEnd: rows.windowEnd[i]!,
    close: rows.close[i]!,
    ready: rows.ready[i] === 1,
    values,
  };
}

/** The latest ready row of each pair in a column batch, as records: what may become the online vector. */
export function latestReadyRowPerPair(
  set: FeatureSetDefinition,
  rows: FeatureColumns,
): FeatureVectorRecord[] {
  const best = new Map<string, number>();
  for (let i = 0; i < rows.length; i++) {
    if (rows.ready[i] !== 1) continue;
    const b = best.get(rows.pair[i]!);
    if (b === undefined || rows.windowEnd[i]! > rows.windowEnd[b]!) best.set(rows.pair[i]!, i);
  }
  return [...best.values()].map((i) => recordOfRow(set, rows, i));
}

/** Table names are derived from the set's name and version; both are checked so SQL stays safe. */
/** The columns of every feature table before its feature columns (doubles, in the set's order). */
const BASE_COLUMNS: readonly { name: string; type: ColumnType }[] = [
  { name: 'pair', type: 'text' },
  { name: 'window_end', type: 'bigint' },
  { name: 'window_start', type: 'bigint' },
  { name: 'exchange', type: 'text' },
  { name: 'close', type: 'double' },
  { name: 'ready', type: 'boolean' },
];

/**
 * Refuses the feature table of `set` as found (`have`: its columns in order, types as the backend spells them,
 * `sqlType`) unless it is this version's: the base columns, then the set's feature columns, all of their types.
 * Only the feature columns' names used to be compared, so a table of another layout of the same name was written
 * into. One that differs only in its feature columns' names (all doubles) is the set changed under the same version:
 * CC_ERR_FEATURE_SET, bump the version; anything else is another program's or version's table: CC_ERR_STORE_URL
 * (`checkTableLayout`), as the other stores' tables.
 */
export function checkFeatureTable(
  set: FeatureSetDefinition,
  have: readonly { name: string; type: string }[],
  sqlType: Record<ColumnType, string>,
): void {
  const t = tableName(set);
  const is = (h: { name: string; type: string } | undefined, name: string | undefined, type: ColumnType) =>
    h !== undefined &&
    (name === undefined || h.name === name) &&
    h.type.toLowerCase() === sqlType[type].toLowerCase();
  const features = have.slice(BASE_COLUMNS.length);
  const ours =
    BASE_COLUMNS.every((b, i) => is(have[i], b.name, b.type)) &&
    features.every((f) => is(f, undefined, 'double'));
  if (ours) {
    const names = features.map((f) => f.name);
    if (names.join(',') !== set.columns.join(','))
      throw fail(
        ERR.FEATURE_SET,
        `${t} has columns ${names.join(',')}, the code expects ${set.columns.join(',')}: bump the feature set version`,
      );
    return;
  }
  checkTableLayout(
    {
      name: t,
      columns: [...BASE_COLUMNS, ...set.columns.map((name) => ({ name, type: 'double' as const }))],
    },
    have,
    sqlType,
  );
}

export function tableName(set: FeatureSetDefinition): string {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(set.name))
    throw new Error(`feature set name must be snake_case: ${set.name}`);
  if (!Number.isInteger(set.version) || set.version < 1)
    throw new Error(`feature set version must be a positive integer: ${set.version}`);
  for (const c of set.columns)
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(c)) throw new Error(`column name must be snake_case: ${c}`);
  return `fs_${set.name}_v${set.version}`;
}

/**
 * One vector per (pair, windowEnd), the last of the batch winning, in the order of each key's first appearance. A
 * batch may hold a minute twice (a publish retried after a partial failure is at-least-once): PostgreSQL's upsert
 * refuses a statement that touches a row twice ("ON CONFLICT DO UPDATE command cannot affect row a second time"), so
 * the write failed on every retry and the feature writer's partition was held for ever; DuckDB's kept the first.
 */
export function lastPerMinute(vectors: readonly FeatureVectorRecord[]): readonly FeatureVectorRecord[] {
  const byKey = new Map<string, FeatureVectorRecord>();
  for (const v of vectors) byKey.set(`${v.pair}\u0000${v.windowEnd}`, v);
  return byKey.size === vectors.length ? vectors : [...byKey.values()];
}

/** The latest ready vector of each pair in a batch: what may become the online vector. */
export function latestReadyPerPair(vectors: readonly FeatureVectorRecord[]): FeatureVectorRecord[] {
  const best = new Map<string, FeatureVectorRecord>();
  for (const v of vectors) {
    if (!v.ready) continue;
    const b = best.get(v.pair);
    if (b === undefined || v.windowEnd > b.windowEnd) best.set(v.pair, v);
  }
  return [...best.values()];
}

/** A stored row (snake_case columns, one column per feature) back into a vector; shared by every backend. */
export function vectorFromRow(set: FeatureSetDefinition, row: Record<string, unknown>): FeatureVectorRecord {
  return {
    v: 1,
    featureSet: set.name,
    featureSetVersion: set.version,
    exchange: String(row.exchange),
    pair: String(row.pair),
    windowStart: Number(row.window_start),
    windowEnd: Number(row.window_end),
    close: Number(row.close),
    ready: Boolean(row.ready),
    values: set.columns.map((c) => (row[c] === null ? null : Number(row[c]))),
  };
}

import type { FeatureVectorRecord } from '../../schemas/feature.ts';

/**
 * The feature store: one interface, two backends (DuckDB: embedded default, one file; PostgreSQL: distributed).
 *
 * - offline: the full history of a feature set, written idempotently (a row is identified by feature set,
 *   version, pair and windowEnd: writing it again replaces it), read point-in-time;
 * - online: the latest **ready** vector per pair, with its windowEnd so staleness is visible;
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

/** Table names are derived from the set's name and version; both are checked so SQL stays safe. */
export function tableName(set: FeatureSetDefinition): string {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(set.name))
    throw new Error(`feature set name must be snake_case: ${set.name}`);
  if (!Number.isInteger(set.version) || set.version < 1)
    throw new Error(`feature set version must be a positive integer: ${set.version}`);
  for (const c of set.columns)
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(c)) throw new Error(`column name must be snake_case: ${c}`);
  return `fs_${set.name}_v${set.version}`;
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

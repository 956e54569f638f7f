import type { PredictionError } from '../../schemas/prediction-error.ts';

/**
 * The error records of the monitoring pipeline: one per (pair, windowEnd, modelName, modelVersion), written by
 * idempotent upserts, read in pages by windowEnd like the predictions (`/v1/errors`), and scanned by target time to
 * rebuild the rolling quality after a restart. Same URLs as the other stores (`duckdb:PATH`, `postgres://…`).
 */
export interface ErrorsStore {
  readonly kind: 'duckdb' | 'postgres';
  write(records: readonly PredictionError[]): Promise<void>;
  history(
    pair: string,
    fromTs: number,
    toTs: number,
    opts?: { limit?: number; after?: number; modelVersion?: number },
  ): Promise<PredictionError[]>;
  /** Every record with targetTs in [fromTs, toTs), all pairs. */
  byTargetTime(fromTs: number, toTs: number): Promise<PredictionError[]>;
  /** Every record of `pair` with windowEnd in [fromTs, toTs), unpaged (bounded ranges: the dashboard). */
  range(pair: string, fromTs: number, toTs: number): Promise<PredictionError[]>;
  /** The same records as columns of numbers (or null), only the columns named (snake_case): cheap for charts. */
  columns(
    pair: string,
    fromTs: number,
    toTs: number,
    names: readonly string[],
  ): Promise<Record<string, (number | null)[]>>;
  /** The newest target time stored (where a replay's rolling windows end after a restart). */
  maxTargetTs(): Promise<number | undefined>;
  pairs(): Promise<string[]>;
  count(): Promise<number>;
  close(): Promise<void>;
}

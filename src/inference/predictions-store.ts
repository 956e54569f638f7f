import type { Prediction } from '../schemas/prediction.ts';

/**
 * The predictions store: every prediction, for history queries and for scoring when it matures. One interface, two
 * backends, selected by the same URLs as the feature store (`duckdb:PATH` embedded, `postgres://…` distributed).
 *
 * - `write` upserts by (pair, windowEnd, modelVersion): a replayed or re-published prediction replaces itself, so a
 *   predictor killed and restarted anywhere leaves neither gaps nor duplicates;
 * - `history` pages by windowEnd (ascending), `after` being the windowEnd of the last row of the previous page;
 * - `latest` is the newest prediction per pair (any model version), for a cold start of the API.
 */
export interface PredictionsStore {
  readonly kind: 'duckdb' | 'postgres';
  migrate(): Promise<void>;
  write(predictions: readonly Prediction[]): Promise<void>;
  history(
    pair: string,
    fromTs: number,
    toTs: number,
    opts?: { limit?: number; after?: number; modelVersion?: number },
  ): Promise<Prediction[]>;
  latest(pair: string): Promise<Prediction | undefined>;
  /** Every prediction of `pair` with windowEnd in [fromTs, toTs), unpaged (bounded ranges: the dashboard). */
  range(pair: string, fromTs: number, toTs: number): Promise<Prediction[]>;
  /** The same records as columns of numbers (or null), only the columns named (snake_case): cheap for charts. */
  columns(
    pair: string,
    fromTs: number,
    toTs: number,
    names: readonly string[],
  ): Promise<Record<string, (number | null)[]>>;
  count(): Promise<number>;
  close(): Promise<void>;
}

import type { Prediction } from '../../schemas/prediction.ts';

/**
 * What both predictions-store backends share: the table's columns (snake_case, in order), a stored row back into a
 * Prediction, the page-size rule and the in-batch dedupe.
 */
export const PREDICTIONS_TABLE = 'predictions_v1';

/** Column name → how to read it from a Prediction. The key is (pair, window_end, model_version). */
export const PREDICTION_COLUMNS = [
  ['pair', (p: Prediction) => p.pair],
  ['window_end', (p: Prediction) => p.windowEnd],
  ['model_version', (p: Prediction) => p.modelVersion],
  ['exchange', (p: Prediction) => p.exchange],
  ['horizon_ms', (p: Prediction) => p.horizonMs],
  ['target_ts', (p: Prediction) => p.targetTs],
  ['close', (p: Prediction) => p.close],
  ['predicted_return_bps', (p: Prediction) => p.predictedReturnBps],
  ['predicted_close', (p: Prediction) => p.predictedClose],
  ['p10', (p: Prediction) => p.p10],
  ['p90', (p: Prediction) => p.p90],
  ['model_name', (p: Prediction) => p.modelName],
  ['feature_set', (p: Prediction) => p.featureSet],
  ['feature_set_version', (p: Prediction) => p.featureSetVersion],
  ['created_at', (p: Prediction) => p.createdAt],
  ['latency_ms', (p: Prediction) => p.latencyMs],
] as const;

/** Integer columns stored as BIGINT (the rest of the numbers are doubles, the strings text). */
export const BIGINT_COLUMNS = new Set([
  'window_end',
  'model_version',
  'horizon_ms',
  'target_ts',
  'feature_set_version',
  'created_at',
]);
export const TEXT_COLUMNS = new Set(['pair', 'exchange', 'model_name', 'feature_set']);

/** Largest page `history` returns. */
export const MAX_PAGE = 1000;

export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_PAGE;
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error(`limit must be a positive integer, got ${limit}`);
  return Math.min(limit, MAX_PAGE);
}

export function predictionFromRow(row: Record<string, unknown>): Prediction {
  return {
    v: 1,
    exchange: String(row.exchange),
    pair: String(row.pair),
    windowEnd: Number(row.window_end),
    horizonMs: Number(row.horizon_ms),
    targetTs: Number(row.target_ts),
    close: Number(row.close),
    predictedReturnBps: Number(row.predicted_return_bps),
    predictedClose: Number(row.predicted_close),
    p10: Number(row.p10),
    p90: Number(row.p90),
    modelName: String(row.model_name),
    modelVersion: Number(row.model_version),
    featureSet: String(row.feature_set),
    featureSetVersion: Number(row.feature_set_version),
    createdAt: Number(row.created_at),
    latencyMs: Number(row.latency_ms),
  };
}

/** One row per key, the last one of the batch winning (an upsert cannot touch one row twice in a statement). */
export function dedupe(predictions: readonly Prediction[]): Prediction[] {
  const byKey = new Map<string, Prediction>();
  for (const p of predictions) byKey.set(`${p.pair}|${p.windowEnd}|${p.modelVersion}`, p);
  return [...byKey.values()];
}

/**
 * A page of `limit` rows read as `limit + 1` (ordered by window_end, model_version): several model versions may
 * share a windowEnd, and the next page starts after the last windowEnd, so a page never ends inside a windowEnd's
 * group. If the whole page is one windowEnd, the group is completed by `rest` (rows of that windowEnd).
 */
export async function trimPage(
  rows: Prediction[],
  limit: number,
  rest: (windowEnd: number) => Promise<Prediction[]>,
): Promise<Prediction[]> {
  if (rows.length <= limit) return rows;
  const last = rows[limit - 1]!.windowEnd;
  if (rows[limit]!.windowEnd !== last) return rows.slice(0, limit);
  const kept = rows.slice(0, limit).filter((p) => p.windowEnd !== last);
  return kept.length > 0 ? kept : rest(last);
}

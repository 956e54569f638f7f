import type { PredictionError } from '../../schemas/prediction-error.ts';
import type { Column, TableSpec } from '../../stores/table.ts';

const col = (
  name: string,
  type: Column<PredictionError>['type'],
  get: (e: PredictionError) => string | number | boolean | null,
  nullable = false,
): Column<PredictionError> => ({ name, type, get, nullable });

const num = (x: unknown) => (x === null || x === undefined ? null : Number(x));
const bool = (x: unknown) => (x === null || x === undefined ? null : Boolean(x));

/** The error records table (key: pair, window_end, model_name, model_version). */
export const ERRORS_SPEC: TableSpec<PredictionError> = {
  name: 'prediction_errors_v1',
  key: ['pair', 'window_end', 'model_name', 'model_version'],
  // Nothing replaces a scored record (`supersedes`: only a scored record a time-out). A member that lost its partitions
  // in a rebalance may store a time-out it held after the next owner stored the prediction's score: the upsert kept
  // the last row written, the time-out.
  keepHeldWhen: (held) => `${held}.status = 'scored' AND EXCLUDED.status <> 'scored'`,
  keepEarlier: (earlier, later) => earlier.status === 'scored' && later.status !== 'scored',
  columns: [
    col('pair', 'text', (e) => e.pair),
    col('window_end', 'bigint', (e) => e.windowEnd),
    col('model_name', 'text', (e) => e.modelName),
    col('model_version', 'bigint', (e) => e.modelVersion),
    col('exchange', 'text', (e) => e.exchange),
    col('status', 'text', (e) => e.status),
    col('horizon_ms', 'bigint', (e) => e.horizonMs),
    col('target_ts', 'bigint', (e) => e.targetTs),
    col('close', 'double', (e) => e.close),
    col('predicted_close', 'double', (e) => e.predictedClose),
    col('p10', 'double', (e) => e.p10),
    col('p90', 'double', (e) => e.p90),
    col('actual_close', 'double', (e) => e.actualClose, true),
    col('error', 'double', (e) => e.error, true),
    col('abs_error', 'double', (e) => e.absError, true),
    col('pct_error', 'double', (e) => e.pctError, true),
    col('persistence_abs_error', 'double', (e) => e.persistenceAbsError, true),
    col('direction_hit', 'boolean', (e) => e.directionHit, true),
    col('direction_tie', 'boolean', (e) => e.directionTie),
    col('in_band', 'boolean', (e) => e.inBand, true),
    col('scored_at', 'bigint', (e) => e.scoredAt),
    col('lateness_ms', 'double', (e) => e.latenessMs),
    col('reason', 'text', (e) => e.reason, true),
  ],
  fromRow: (r) => ({
    v: 1,
    status: String(r.status) as PredictionError['status'],
    exchange: String(r.exchange),
    pair: String(r.pair),
    windowEnd: Number(r.window_end),
    modelName: String(r.model_name),
    modelVersion: Number(r.model_version),
    horizonMs: Number(r.horizon_ms),
    targetTs: Number(r.target_ts),
    close: Number(r.close),
    predictedClose: Number(r.predicted_close),
    p10: Number(r.p10),
    p90: Number(r.p90),
    actualClose: num(r.actual_close),
    error: num(r.error),
    absError: num(r.abs_error),
    pctError: num(r.pct_error),
    persistenceAbsError: num(r.persistence_abs_error),
    directionHit: bool(r.direction_hit),
    directionTie: Boolean(r.direction_tie),
    inBand: bool(r.in_band),
    scoredAt: Number(r.scored_at),
    latenessMs: Number(r.lateness_ms),
    reason:
      r.reason === null || r.reason === undefined ? null : (String(r.reason) as PredictionError['reason']),
  }),
};

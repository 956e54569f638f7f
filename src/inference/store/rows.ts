import type { Prediction } from '../../schemas/prediction.ts';
import type { Column, TableSpec } from '../../stores/table.ts';

/** The predictions table, the same in both backends. The key is (pair, window_end, model_version). */
const col = (
  name: string,
  type: Column<Prediction>['type'],
  get: (p: Prediction) => string | number,
): Column<Prediction> => ({ name, type, get });

export const PREDICTIONS_SPEC: TableSpec<Prediction> = {
  name: 'predictions_v1',
  key: ['pair', 'window_end', 'model_version'],
  columns: [
    col('pair', 'text', (p) => p.pair),
    col('window_end', 'bigint', (p) => p.windowEnd),
    col('model_version', 'bigint', (p) => p.modelVersion),
    col('exchange', 'text', (p) => p.exchange),
    col('horizon_ms', 'bigint', (p) => p.horizonMs),
    col('target_ts', 'bigint', (p) => p.targetTs),
    col('close', 'double', (p) => p.close),
    col('predicted_return_bps', 'double', (p) => p.predictedReturnBps),
    col('predicted_close', 'double', (p) => p.predictedClose),
    col('p10', 'double', (p) => p.p10),
    col('p90', 'double', (p) => p.p90),
    col('model_name', 'text', (p) => p.modelName),
    col('feature_set', 'text', (p) => p.featureSet),
    col('feature_set_version', 'bigint', (p) => p.featureSetVersion),
    col('created_at', 'bigint', (p) => p.createdAt),
    col('latency_ms', 'double', (p) => p.latencyMs),
  ],
  fromRow: (row) => ({
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
  }),
};

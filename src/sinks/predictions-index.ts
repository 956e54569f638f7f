import type { Prediction } from '../schemas/prediction.ts';
import { errorKey, type PredictionError } from '../schemas/prediction-error.ts';

/**
 * How predictions (and their error records, below) are kept in OpenSearch (or Elasticsearch) for dashboards: one
 * index per calendar month of the prediction's `windowEnd` (`<prefix>predictions-2026.12`), an index template with explicit mappings (dynamic:
 * strict — a field the schema does not have is refused, not guessed), and an ISM policy that deletes a month's index
 * once it is older than the retention.
 *
 * The month comes from the prediction, not from the clock, and the document id from what identifies a prediction
 * (pair, windowEnd, model name and version): writing the same prediction again, after a crash or a replay, lands
 * on the same document of the same index. That is what makes the sink idempotent.
 */

export const PREDICTIONS_INDEX_VERSION = 1;

/** Default retention of the prediction indices (ISM), in days. */
export const DEFAULT_RETENTION_DAYS = 400;

export function predictionsIndexPattern(prefix: string): string {
  return `${prefix}predictions-*`;
}

/** The month index a prediction belongs to, by its windowEnd (UTC). */
export function predictionsIndex(prefix: string, p: Pick<Prediction, 'windowEnd'>): string {
  const d = new Date(p.windowEnd);
  return `${prefix}predictions-${d.getUTCFullYear()}.${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The document id: what identifies a prediction. `|` never occurs in a pair or a model name's usual form. */
export function predictionDocId(
  p: Pick<Prediction, 'pair' | 'windowEnd' | 'modelName' | 'modelVersion'>,
): string {
  return `${p.pair}|${p.windowEnd}|${p.modelName}|${p.modelVersion}`;
}

const epochMillis = { type: 'date', format: 'epoch_millis' } as const;

/** Explicit mappings for every field of PredictionSchema (a unit test checks the two agree). */
export const PREDICTION_MAPPINGS = {
  dynamic: 'strict',
  _meta: { schema: 'cryptocast.prediction', schemaVersion: 1, indexVersion: PREDICTIONS_INDEX_VERSION },
  properties: {
    v: { type: 'byte' },
    exchange: { type: 'keyword' },
    pair: { type: 'keyword' },
    windowEnd: epochMillis,
    horizonMs: { type: 'long' },
    targetTs: epochMillis,
    close: { type: 'double' },
    predictedReturnBps: { type: 'double' },
    predictedClose: { type: 'double' },
    p10: { type: 'double' },
    p90: { type: 'double' },
    modelName: { type: 'keyword' },
    modelVersion: { type: 'integer' },
    featureSet: { type: 'keyword' },
    featureSetVersion: { type: 'integer' },
    createdAt: epochMillis,
    latencyMs: { type: 'double' },
  },
} as const;

/** The composable index template (PUT _index_template/<prefix>predictions). */
export function predictionsIndexTemplate(prefix: string): Record<string, unknown> {
  return indexTemplate(predictionsIndexPattern(prefix), PREDICTION_MAPPINGS);
}

/** A composable index template of one pattern: one shard, a replica where there is a second node, these mappings. */
function indexTemplate(pattern: string, mappings: unknown): Record<string, unknown> {
  return {
    index_patterns: [pattern],
    priority: 100,
    version: PREDICTIONS_INDEX_VERSION,
    template: {
      settings: {
        'index.number_of_shards': 1,
        // One replica where the cluster has a second node; none on a single node (which stays green).
        'index.auto_expand_replicas': '0-1',
        'index.refresh_interval': '5s',
      },
      mappings,
    },
    _meta: { managedBy: 'cryptocast index-sink' },
  };
}

/**
 * The ISM policy (PUT _plugins/_ism/policies/<prefix>predictions-retention): a month index is deleted once it is
 * older than the retention. `ism_template` attaches it to every new index of the pattern.
 */
export function predictionsIsmPolicy(
  prefix: string,
  retentionDays = DEFAULT_RETENTION_DAYS,
): Record<string, unknown> {
  return {
    policy: {
      description: `cryptocast predictions: delete a month index ${retentionDays} days after its creation`,
      default_state: 'hot',
      states: [
        {
          name: 'hot',
          actions: [],
          transitions: [{ state_name: 'delete', conditions: { min_index_age: `${retentionDays}d` } }],
        },
        { name: 'delete', actions: [{ delete: {} }], transitions: [] },
      ],
      ism_template: [{ index_patterns: [predictionsIndexPattern(prefix)], priority: 100 }],
    },
  };
}

// ---- errors (the monitoring pipeline's verdict on each prediction, topic predictions.errors) ----

export function errorsIndexPattern(prefix: string): string {
  return `${prefix}errors-*`;
}

/** The month index of an error record, by its prediction's windowEnd (UTC): re-scoring lands on the same one. */
export function errorsIndex(prefix: string, e: Pick<PredictionError, 'windowEnd'>): string {
  const d = new Date(e.windowEnd);
  return `${prefix}errors-${d.getUTCFullYear()}.${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The document id of an error record: the monitor's own key (exchange, pair, windowEnd, model name and version). */
export function errorDocId(e: Parameters<typeof errorKey>[0]): string {
  return errorKey(e);
}

/**
 * The rank of an error record among the records of its prediction (its document's external version): a scored record
 * outranks a time-out, so the index keeps a score over a time-out read after it (two monitors across a rebalance, a
 * crash's re-score, a replay of the topic), as the errors store does (`ERRORS_SPEC.keepHeldWhen`); a time-out scored
 * late still replaces the time-out, and records of one rank replace each other (the last read wins). Ranks far above
 * the internal versions of a document indexed before (one per write of it, from 1), so that such a document is
 * replaced as before.
 */
export function errorDocVersion(e: Pick<PredictionError, 'status'>): number {
  return e.status === 'scored' ? 2_000_000_000 : 1_000_000_000;
}

/** Explicit mappings for every field of PredictionErrorSchema (a unit test checks the two agree). */
export const ERROR_MAPPINGS = {
  dynamic: 'strict',
  _meta: { schema: 'cryptocast.prediction-error', schemaVersion: 1, indexVersion: PREDICTIONS_INDEX_VERSION },
  properties: {
    v: { type: 'byte' },
    status: { type: 'keyword' },
    exchange: { type: 'keyword' },
    pair: { type: 'keyword' },
    windowEnd: epochMillis,
    modelName: { type: 'keyword' },
    modelVersion: { type: 'integer' },
    horizonMs: { type: 'long' },
    targetTs: epochMillis,
    close: { type: 'double' },
    predictedClose: { type: 'double' },
    p10: { type: 'double' },
    p90: { type: 'double' },
    actualClose: { type: 'double' },
    error: { type: 'double' },
    absError: { type: 'double' },
    pctError: { type: 'double' },
    persistenceAbsError: { type: 'double' },
    directionHit: { type: 'boolean' },
    directionTie: { type: 'boolean' },
    inBand: { type: 'boolean' },
    scoredAt: epochMillis,
    latenessMs: { type: 'double' },
    reason: { type: 'keyword' },
  },
} as const;

export function errorsIndexTemplate(prefix: string): Record<string, unknown> {
  return indexTemplate(errorsIndexPattern(prefix), ERROR_MAPPINGS);
}

/** The same retention as the predictions, for the error indices. */
export function errorsIsmPolicy(
  prefix: string,
  retentionDays = DEFAULT_RETENTION_DAYS,
): Record<string, unknown> {
  const p = predictionsIsmPolicy(prefix, retentionDays) as { policy: Record<string, unknown> };
  return {
    policy: {
      ...p.policy,
      description: `cryptocast prediction errors: delete a month index ${retentionDays} days after its creation`,
      ism_template: [{ index_patterns: [errorsIndexPattern(prefix)], priority: 100 }],
    },
  };
}

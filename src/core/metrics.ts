import client from 'prom-client';

/**
 * Every Prometheus metric cryptocast exports, in one catalogue (names are a contract: the alert rules in
 * deploy/prometheus and the Grafana dashboard query them, and a test checks they all exist in a real scrape).
 * Conventions: `cryptocast_` prefix, base units (seconds, not ms), `_total` for counters.
 *
 * Services increment these where things happen; state that is cheaper to read than to track (consumer lag, the
 * rolling quality, waiting predictions) is read at scrape time through `onScrape` callbacks.
 */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'cryptocast_' });

const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
  new client.Counter<L>({ name, help, labelNames, registers: [registry] });
const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
  new client.Gauge<L>({ name, help, labelNames, registers: [registry] });
const histogram = <L extends string>(
  name: string,
  help: string,
  buckets: number[],
  labelNames: readonly L[] = [],
) => new client.Histogram<L>({ name, help, buckets, labelNames, registers: [registry] });

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export const metrics = {
  // ---- transport (every service, through the metered bus) ----
  recordsPublished: counter('cryptocast_records_published_total', 'Records published, per topic', ['topic']),
  recordsConsumed: counter('cryptocast_records_consumed_total', 'Records handed to a service, per topic', [
    'topic',
    'service',
  ]),
  deadLetters: counter(
    'cryptocast_dead_letters_total',
    'Records sent to the dead-letter topic, per origin and kind',
    ['origin', 'kind'],
  ),
  consumerLag: gauge('cryptocast_consumer_lag_records', 'Records not yet consumed, per topic and group', [
    'topic',
    'group',
  ]),
  // ---- market data ----
  trades: counter('cryptocast_trades_total', 'Trades accepted, per exchange and pair', ['exchange', 'pair']),
  lastTrade: gauge('cryptocast_last_trade_timestamp_seconds', 'Event time of the newest trade, per pair', [
    'exchange',
    'pair',
  ]),
  candles: counter('cryptocast_candles_total', 'Candles closed, per pair; filled = idle minutes', [
    'pair',
    'filled',
  ]),
  lastCandle: gauge('cryptocast_last_candle_timestamp_seconds', 'windowEnd of the newest candle, per pair', [
    'exchange',
    'pair',
  ]),
  candleClose: gauge('cryptocast_candle_close', 'Close of the newest candle, per pair (quote currency)', [
    'pair',
  ]),
  lateTrades: counter('cryptocast_late_trades_total', 'Trades that arrived after their window closed', [
    'policy',
  ]),
  candleCloseDelay: histogram(
    'cryptocast_candle_close_delay_seconds',
    'Wall time from a candle window end to its emission',
    [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
  ),
  // ---- features ----
  featureVectors: counter('cryptocast_feature_vectors_total', 'Feature vectors computed, per readiness', [
    'ready',
  ]),
  featureAge: gauge('cryptocast_feature_age_seconds', 'Age of the newest feature vector seen, per pair', [
    'pair',
  ]),
  // ---- inference ----
  predictions: counter('cryptocast_predictions_total', 'Predictions stored and published, per pair', [
    'pair',
  ]),
  predictionsSkipped: counter(
    'cryptocast_predictions_skipped_total',
    'Vectors without a prediction, per reason',
    ['reason'],
  ),
  predictorImputed: counter(
    'cryptocast_predictor_imputed_total',
    'Missing inputs the model never saw missing in training, filled with their training mean, per column',
    ['column'],
  ),
  predictedClose: gauge(
    'cryptocast_predicted_close',
    'The newest prediction of the close at its target time, per pair and quantile (0.5 = the point forecast)',
    ['pair', 'quantile'],
  ),
  shrinkageLambda: gauge(
    'cryptocast_predictor_shrinkage_lambda',
    'The shrinkage gate: λ applied to the next predicted return, per pair (1 = the model, 0 = persistence; with --shrinkage)',
    ['pair'],
  ),
  predictionLatency: histogram(
    'cryptocast_prediction_latency_seconds',
    'Candle close to prediction stored',
    LATENCY_BUCKETS,
  ),
  championVersion: gauge('cryptocast_champion_version', 'Version of the champion serving predictions', [
    'model',
  ]),
  championLoadFailures: counter(
    'cryptocast_champion_load_failures_total',
    'Attempts to load a champion that failed (bad files, unservable columns, a version missing): the previous one serves',
    ['model'],
  ),
  championAge: gauge('cryptocast_champion_age_seconds', 'Time since the serving champion was trained', [
    'model',
  ]),
  // ---- monitoring ----
  // Records, not predictions: what the topic carries. A time-out scored late is a second record of one prediction
  // (`revision="true"`), and a prediction judged again after a crash or a rebalance is counted again by the process
  // that judged it. Predictions judged by this process: the sum less the revisions (docs/monitoring.md).
  errorRecords: counter(
    'cryptocast_error_records_total',
    'Error records published to predictions.errors, per pair and status; revision="true": a scored record superseding a time-out of the same prediction (one prediction, two records)',
    ['pair', 'status', 'revision'],
  ),
  predictionsWaiting: gauge('cryptocast_predictions_waiting', 'Predictions waiting for their target minute'),
  latePolicyMismatch: gauge(
    'cryptocast_monitor_late_policy_mismatch',
    "1 while the candle service's candles show another late policy than the monitor's (monitoring/late-policy-check.ts)",
  ),
  qualityCount: gauge('cryptocast_quality_count', 'Scored predictions in the rolling window', [
    'pair',
    'window',
  ]),
  qualityMae: gauge('cryptocast_quality_mae', 'Rolling MAE of the predicted close (quote currency)', [
    'pair',
    'window',
  ]),
  qualityRmse: gauge('cryptocast_quality_rmse', 'Rolling RMSE of the predicted close', ['pair', 'window']),
  qualityBias: gauge('cryptocast_quality_bias', 'Rolling mean error, predicted − actual', ['pair', 'window']),
  qualityPersistenceMae: gauge(
    'cryptocast_quality_persistence_mae',
    'Rolling MAE of the persistence baseline',
    ['pair', 'window'],
  ),
  qualitySkill: gauge('cryptocast_quality_skill_ratio', 'Rolling skill: 1 − MAE / persistence MAE', [
    'pair',
    'window',
  ]),
  qualityDirection: gauge('cryptocast_quality_directional_accuracy_ratio', 'Rolling directional accuracy', [
    'pair',
    'window',
  ]),
  qualityCoverage: gauge(
    'cryptocast_quality_coverage_ratio',
    'Rolling share of actual closes in [p10, p90]',
    ['pair', 'window'],
  ),
  // ---- alerts ----
  alertsActive: gauge('cryptocast_alerts_active', 'Alerts firing now, per rule', ['rule']),
  alertNotifications: counter(
    'cryptocast_alert_notifications_total',
    'Alert notifications, per channel and result (sent, failed)',
    ['channel', 'result'],
  ),
  // ---- API ----
  httpDuration: histogram(
    'cryptocast_http_request_duration_seconds',
    'HTTP request durations, per route and status class',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    ['method', 'route', 'status'],
  ),
  wsClients: gauge('cryptocast_websocket_clients', 'Open WebSocket connections'),
  // ---- sentiment ----
  sentimentLatency: histogram(
    'cryptocast_sentiment_scoring_seconds',
    'Time to score one text, per backend',
    [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    ['backend'],
  ),
  sentimentFallbacks: counter(
    'cryptocast_sentiment_fallbacks_total',
    'Texts scored by the baseline instead',
    ['reason'],
  ),
  sentimentCircuitOpen: gauge(
    'cryptocast_sentiment_circuit_open',
    'Whether the scorer sends every text to the baseline without asking the model (1: its circuit breaker is open ' +
      'after consecutive failures or time-outs; 0: the model answers), per backend',
    ['backend'],
  ),
  // ---- training ----
  trainerRuns: counter(
    'cryptocast_trainer_runs_total',
    'Training runs, per result (promoted, refused, failed)',
    ['result'],
  ),
  gateDecisions: counter('cryptocast_gate_decisions_total', 'Promotion gate decisions', ['decision']),
  // ---- the OpenSearch index sink ----
  indexedDocuments: counter(
    'cryptocast_indexed_documents_total',
    'Documents written to OpenSearch by the index sink, per stream (predictions, errors)',
    ['stream'],
  ),
  indexRetries: counter(
    'cryptocast_index_retries_total',
    'Bulk attempts the index sink retried (OpenSearch unreachable or overloaded), per stream',
    ['stream'],
  ),
  indexBulkDuration: histogram(
    'cryptocast_index_bulk_duration_seconds',
    'Duration of one bulk request of the index sink',
    LATENCY_BUCKETS,
  ),
  // ---- dependencies ----
  dependencyUp: gauge(
    'cryptocast_dependency_up',
    '1 when a dependency answers, 0 while it is being retried',
    ['dependency'],
  ),
};

const scrapeHooks = new Set<() => void>();

/** Runs `fn` before every scrape (to set gauges from state); returns the function that removes it. */
export function onScrape(fn: () => void): () => void {
  scrapeHooks.add(fn);
  return () => scrapeHooks.delete(fn);
}

/** The Prometheus text exposition of every metric. */
export async function metricsText(): Promise<string> {
  for (const fn of scrapeHooks) {
    try {
      fn();
    } catch {
      // a broken hook must not break the scrape
    }
  }
  return registry.metrics();
}

export const METRICS_CONTENT_TYPE = registry.contentType;

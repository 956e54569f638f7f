import type { z } from 'zod';
import { ACI_WARM_UP_REACH_MS } from '../inference/adaptive-conformal.ts';
import { defineTopic, type Topic } from '../runtime/topic.ts';
import { decodeTradeEvent, encodeTradeEvent, isBinaryTrade } from '../runtime/trade-codec.ts';
import { type AlertNotification, AlertNotificationSchema } from './alert.ts';
import { type Candle, CandleSchema } from './candle.ts';
import { type DeadLetter, DeadLetterSchema } from './dlq.ts';
import { type FeatureVectorRecord, FeatureVectorSchema } from './feature.ts';
import { type NewsItem, NewsItemSchema } from './news.ts';
import { type NewsSignal, NewsSignalSchema } from './news-signal.ts';
import { type Prediction, PredictionSchema } from './prediction.ts';
import { type PredictionError, PredictionErrorSchema } from './prediction-error.ts';
import { type AciState, AciStateSchema } from './predictor-state.ts';
import { type ResumePointRecord, ResumePointRecordSchema } from './resume-point.ts';
import { type TradeEvent, TradeEventSchema } from './trade.ts';

/**
 * `retention.ms` of the topics a restarted predictor reads back (`predictions`, `predictor.aci`) when cryptocast
 * creates them: 8 days, the ACI warm-up's reach (a week and an hour, ACI_WARM_UP_REACH_MS) with most of a day to spare
 * for an outage. A broker default of 7 days was an hour short of it: the oldest states the warm-up restores α_t
 * from could be gone (Kafka deletes whole segments, so a small topic often kept more: nothing to rely on).
 */
export const RESTORE_RETENTION_MS = 8 * 86_400_000;

/** `segment.ms` of `trades.resume` (compacted): see its declaration below. */
export const RESUME_SEGMENT_MS = 3_600_000;

/** The least `retention.ms` a topic a restarted predictor reads back may be created with (`topics create --retention`). */
export const MIN_RESTORE_RETENTION_MS = ACI_WARM_UP_REACH_MS;

/**
 * The topic table: every topic between the pipelines, with what flows on it (its description is required: the
 * AsyncAPI document of `cryptocast schemas` is generated from it), its schema, key and partitions. The transports
 * (`runtime/`) keep the `Topic` type and move any topic; of this table they name only `dlq`, where they put what
 * fails its schema.
 */
export const topics = {
  trades: defineTopic<TradeEvent>({
    name: 'trades',
    description:
      'Normalised trades and per-pair watermarks (event-time progress) from every source. Key: pair.',
    schema: TradeEventSchema as z.ZodType<TradeEvent>,
    key: (t) => t.pair,
    partitions: 4,
    codec: { matches: isBinaryTrade, encode: encodeTradeEvent, decode: decodeTradeEvent },
  }),
  tradesResume: defineTopic<ResumePointRecord>({
    name: 'trades.resume',
    description:
      "Where each (exchange, pair) stood in `trades` as of its source's last watermark (about a second behind; also written at a stop): newest trade id and time, last watermark, the ids of the last second's trades. Compacted (the latest per key); read whole by a restarted trades stage, so a pair quiet for longer than the part of `trades` it reads back is refilled from there. Key: exchange|pair.",
    schema: ResumePointRecordSchema,
    key: (r) => `${r.exchange}|${r.pair}`,
    partitions: 1,
    compacted: true,
    // A point is written about once a second per pair that trades (at its source's watermarks): rolled hourly, the part compaction has not reached yet
    // (the active segment) stays about an hour of writes, and a restart's whole read stays short.
    segmentMs: RESUME_SEGMENT_MS,
  }),
  candles: defineTopic<Candle>({
    name: 'candles',
    description: 'OHLCV candles of closed event-time windows (filled = idle minute). Key: pair.',
    schema: CandleSchema as z.ZodType<Candle>,
    key: (c) => c.pair,
    partitions: 4,
  }),
  features: defineTopic<FeatureVectorRecord>({
    name: 'features',
    description: 'Feature vectors of closed candles, per versioned feature set. Key: pair.',
    schema: FeatureVectorSchema,
    key: (f) => f.pair,
    partitions: 4,
  }),
  news: defineTopic<NewsItem>({
    name: 'news',
    description:
      'Normalised, deduplicated news items (publishedAt as claimed, fetchedAt when first seen). Key: news id.',
    schema: NewsItemSchema,
    key: (n) => n.id,
    partitions: 1,
  }),
  newsSignals: defineTopic<NewsSignal>({
    name: 'news.signals',
    description:
      'Sentiment of a news item per coin it mentions (score, label, confidence, reason, model, prompt version; baseline = lexicon). availableAt = when it could first be used. Key: coin.',
    schema: NewsSignalSchema,
    key: (s) => s.coin,
    partitions: 1,
  }),
  predictions: defineTopic<Prediction>({
    name: 'predictions',
    description:
      'Predictions of the champion model: the close of a pair at targetTs = windowEnd + horizon, with its p10–p90 interval, model name and version. Key: pair.',
    schema: PredictionSchema,
    key: (p) => p.pair,
    partitions: 4,
    retentionMs: RESTORE_RETENTION_MS,
  }),
  predictorAci: defineTopic<AciState>({
    name: 'predictor.aci',
    description:
      "The predictor's adaptive conformal state for each prediction it publishes with an adjusted band: α_t of the band's lower and upper side when the band of (exchange, pair, windowEnd) was made, and the champion's own p10/p90 (bps) it was made from. Written before the prediction; a restarted predictor reads it back (whole) to restore α_t exactly. Key: pair.",
    schema: AciStateSchema,
    key: (s) => s.pair,
    partitions: 4,
    retentionMs: RESTORE_RETENTION_MS,
  }),
  predictionErrors: defineTopic<PredictionError>({
    name: 'predictions.errors',
    description:
      "The monitoring pipeline's verdict on each prediction once its target minute closed: actual close, signed/absolute/percent error, the persistence baseline's error, direction hit (ties counted), p10–p90 hit — or unscorable with the reason. One per (exchange, pair, windowEnd, modelName, modelVersion), except that a prediction timed out (target_not_closed_in_time) whose candle came late after all gets a second, scored record that supersedes the first. Key: pair.",
    schema: PredictionErrorSchema,
    key: (e) => e.pair,
    partitions: 4,
  }),
  alerts: defineTopic<AlertNotification>({
    name: 'alerts',
    description:
      'Alert notifications of the monitor: firing (first or reminder) and resolved, with the rule, severity, series, value and message. Key: rule|series.',
    schema: AlertNotificationSchema,
    key: (a) => `${a.rule}|${a.key}`,
    partitions: 1,
  }),
  dlq: defineTopic<DeadLetter>({
    name: 'dlq',
    description: 'Rejected input: reason, origin and the original payload. Key: origin.',
    schema: DeadLetterSchema,
    key: (d) => d.origin,
    partitions: 1,
  }),
} as const;

/** The consumer groups of the pipeline's stages, per input topic: whose lag the monitor watches. */
export const PIPELINE_GROUPS: readonly { topic: Topic<unknown>; group: string }[] = [
  { topic: topics.trades as Topic<unknown>, group: 'candles' },
  { topic: topics.candles as Topic<unknown>, group: 'features' },
  { topic: topics.features as Topic<unknown>, group: 'predictor' },
  { topic: topics.features as Topic<unknown>, group: 'feature-writer' },
  { topic: topics.candles as Topic<unknown>, group: 'monitor.candles' },
  { topic: topics.predictions as Topic<unknown>, group: 'monitor.predictions' },
  // The OpenSearch index sink, where it is deployed (an unknown group has no lag to report).
  { topic: topics.predictions as Topic<unknown>, group: 'index-sink.predictions' },
  { topic: topics.predictionErrors as Topic<unknown>, group: 'index-sink.predictions.errors' },
];

import type { z } from 'zod';
import { type Candle, CandleSchema } from '../schemas/candle.ts';
import { type DeadLetter, DeadLetterSchema } from '../schemas/dlq.ts';
import { type FeatureVectorRecord, FeatureVectorSchema } from '../schemas/feature.ts';
import { type NewsItem, NewsItemSchema } from '../schemas/news.ts';
import { type NewsSignal, NewsSignalSchema } from '../schemas/news-signal.ts';
import { type Prediction, PredictionSchema } from '../schemas/prediction.ts';
import { type TradeEvent, TradeEventSchema } from '../schemas/trade.ts';

/**
 * A typed topic: a name, a runtime schema (validated on every consume from an untrusted transport and on
 * every publish), and the record key (the pair, so one pair always lands in one partition, in order).
 */
export interface Topic<T> {
  readonly name: string;
  readonly schema: z.ZodType<T>;
  key(value: T): string;
  /** Kafka partitions when the topic is created by cryptocast. */
  readonly partitions: number;
  /** Log compaction (latest value per key kept) instead of time retention. */
  readonly compacted?: boolean;
}

export function defineTopic<T>(t: Topic<T>): Topic<T> {
  return Object.freeze(t);
}

export const topics = {
  trades: defineTopic<TradeEvent>({
    name: 'trades',
    schema: TradeEventSchema as z.ZodType<TradeEvent>,
    key: (t) => t.pair,
    partitions: 4,
  }),
  candles: defineTopic<Candle>({
    name: 'candles',
    schema: CandleSchema as z.ZodType<Candle>,
    key: (c) => c.pair,
    partitions: 4,
  }),
  features: defineTopic<FeatureVectorRecord>({
    name: 'features',
    schema: FeatureVectorSchema,
    key: (f) => f.pair,
    partitions: 4,
  }),
  news: defineTopic<NewsItem>({
    name: 'news',
    schema: NewsItemSchema,
    key: (n) => n.id,
    partitions: 1,
  }),
  newsSignals: defineTopic<NewsSignal>({
    name: 'news.signals',
    schema: NewsSignalSchema,
    key: (s) => s.coin,
    partitions: 1,
  }),
  predictions: defineTopic<Prediction>({
    name: 'predictions',
    schema: PredictionSchema,
    key: (p) => p.pair,
    partitions: 4,
  }),
  dlq: defineTopic<DeadLetter>({
    name: 'dlq',
    schema: DeadLetterSchema,
    key: (d) => d.origin,
    partitions: 1,
  }),
} as const;

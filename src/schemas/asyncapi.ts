import { z } from 'zod';
import { topics } from '../runtime/topic.ts';

/**
 * The topic contracts as an AsyncAPI 3.0 document, generated from the zod schemas the services validate with, so
 * the documentation cannot drift from the code (`cryptocast schemas`).
 */
const DESCRIPTIONS: Record<string, string> = {
  trades: 'Normalised trades and per-pair watermarks (event-time progress) from every source. Key: pair.',
  candles: 'OHLCV candles of closed event-time windows (filled = idle minute). Key: pair.',
  features: 'Feature vectors of closed candles, per versioned feature set. Key: pair.',
  news: 'Normalised, deduplicated news items (publishedAt as claimed, fetchedAt when first seen). Key: news id.',
  'news.signals':
    'Sentiment of a news item per coin it mentions (score, label, confidence, reason, model, prompt version; baseline = lexicon). availableAt = when it could first be used. Key: coin.',
  dlq: 'Rejected input: reason, origin and the original payload. Key: origin.',
};

export function asyncApiDocument(version: string): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  for (const t of Object.values(topics)) {
    const schema = z.toJSONSchema(t.schema as z.ZodType, { unrepresentable: 'any' });
    delete (schema as { $schema?: string }).$schema;
    messages[t.name] = { name: t.name, contentType: 'application/json', payload: schema };
    channels[t.name] = {
      address: t.name,
      description: `${DESCRIPTIONS[t.name] ?? ''} Partitions: ${t.partitions}.`,
      messages: { [t.name]: { $ref: `#/components/messages/${t.name}` } },
    };
    operations[`publish-${t.name}`] = { action: 'send', channel: { $ref: `#/channels/${t.name}` } };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'cryptocast topics',
      version,
      description:
        'Every topic between the pipelines. Values are JSON; timestamps are epoch milliseconds UTC.',
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages },
  };
}

import { z } from 'zod';
import { TRADES_BINARY_LAYOUT } from '../runtime/trade-codec.ts';
import { topics } from '../schemas/topics.ts';

/**
 * The topic contracts as an AsyncAPI 3.0 document, generated from the zod schemas the services validate with, so
 * the documentation cannot drift from the code (`cryptocast schemas`).
 */

export function asyncApiDocument(version: string): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  for (const t of Object.values(topics)) {
    const schema = z.toJSONSchema(t.schema as z.ZodType, { unrepresentable: 'any' });
    delete (schema as { $schema?: string }).$schema;
    messages[t.name] = { name: t.name, contentType: 'application/json', payload: schema };
    const channelMessages: Record<string, unknown> = {
      [t.name]: { $ref: `#/components/messages/${t.name}` },
    };
    if (t.name === topics.trades.name) {
      // The compact encoding of the same events (src/runtime/trade-codec.ts).
      const binary = `${t.name}.binary`;
      messages[binary] = {
        name: binary,
        contentType: 'application/octet-stream',
        description: TRADES_BINARY_LAYOUT.description,
        payload: { type: 'string', format: 'binary' },
        'x-layout': TRADES_BINARY_LAYOUT,
      };
      channelMessages[binary] = { $ref: `#/components/messages/${binary}` };
    }
    channels[t.name] = {
      address: t.name,
      description: `${t.description} Partitions: ${t.partitions}.`,
      messages: channelMessages,
    };
    operations[`publish-${t.name}`] = { action: 'send', channel: { $ref: `#/channels/${t.name}` } };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'cryptocast topics',
      version,
      description:
        'Every topic between the pipelines. Values are JSON, except that `trades` is written in a compact binary ' +
        'encoding by default (message trades.binary; JSON records stay valid there); timestamps are epoch milliseconds UTC.',
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages },
  };
}

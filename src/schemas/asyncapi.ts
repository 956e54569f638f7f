import { z } from 'zod';
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
    channels[t.name] = {
      address: t.name,
      description: `${t.description} Partitions: ${t.partitions}.`,
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

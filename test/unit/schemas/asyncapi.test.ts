import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asyncApiDocument } from '../../../src/schemas/asyncapi.ts';
import { topics } from '../../../src/schemas/topics.ts';

describe('the AsyncAPI document of the topics', () => {
  it('has every topic, with the schema its services validate against', () => {
    const doc = asyncApiDocument('1.2.3') as {
      asyncapi: string;
      channels: Record<string, unknown>;
      components: {
        messages: Record<string, { payload: { oneOf?: { required?: string[] }[]; required?: string[] } }>;
      };
    };
    assert.equal(doc.asyncapi, '3.0.0');
    assert.deepEqual(
      Object.keys(doc.channels).sort(),
      Object.values(topics)
        .map((t) => t.name)
        .sort(),
    );
    const trade = doc.components.messages.trades!.payload.oneOf![0]!;
    for (const f of ['exchange', 'pair', 'price', 'qty', 'side', 'tradeId', 'tradeTs', 'receivedTs'])
      assert.ok(trade.required!.includes(f), f);
    assert.ok(doc.components.messages.candles!.payload.required!.includes('windowStart'));
  });

  it('describes every topic (what flows on it and its key)', () => {
    for (const t of Object.values(topics)) assert.match(t.description, /\S.{20,}Key: /s, t.name);
  });
});

describe('docs/asyncapi.json', () => {
  it('is up to date with the code (regenerate: ./bin/cryptocast schemas --output docs/asyncapi.json)', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const committed = JSON.parse(
      readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'asyncapi.json'), 'utf8'),
    );
    assert.deepEqual(committed, asyncApiDocument('0.1.0'));
  });
});

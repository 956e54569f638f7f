import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Producer } from '@platformatic/kafka';
import { type Delivered, partitionFor } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { decodeTradeEvent, isBinaryTrade } from '../../src/runtime/trade-codec.ts';
import { topics } from '../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../src/schemas/trade.ts';

/**
 * The `trades` topic on a real broker: producers write the binary encoding by default and JSON when told to;
 * a consumer reads both, mixed in one partition, in offset order; a broken binary record goes to the dead-letter
 * topic with its reason and its bytes (base64).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const URL = process.env.CRYPTOCAST_TEST_KAFKA ?? 'kafka://127.0.0.1:9092';
const BROKER = URL.replace(/^kafka:\/\//, '').split(',')[0]!;

const trade = (n: number): Trade => ({
  v: 1,
  type: 'trade',
  exchange: 'bench',
  pair: 'BTC/USD',
  price: 60_000 + n / 100,
  qty: 0.5 + n,
  side: n % 2 ? 'buy' : 'sell',
  tradeId: String(n),
  tradeTs: Date.UTC(2024, 7, 9) + n,
  receivedTs: Date.UTC(2024, 7, 9) + n + 5,
});

describe('trades topic: binary by default, JSON still readable', () => {
  const prefix = `test.te.${process.pid}.${randomBytes(4).toString('hex')}.`;
  const buses: KafkaBus[] = [];
  let raw: Producer;
  before(() => {
    execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), 'start'], {
      env: { ...process.env, KAFKA_PORT: BROKER.split(':')[1] ?? '9092' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    raw = new Producer({ clientId: 'te-raw', bootstrapBrokers: [BROKER] }); // Buffers as they are
  });
  after(async () => {
    for (const b of buses) await b.close();
    await raw.close();
  });
  const bus = (encoding?: 'binary' | 'json') => {
    const b = KafkaBus.connect(URL, { topicPrefix: prefix, encoding });
    buses.push(b);
    return b;
  };

  it('reads binary and JSON records of one partition in order, and dead-letters a broken binary one', async () => {
    const bin = bus();
    const json = bus('json');
    await bin.ensureTopics([topics.trades, topics.dlq]);
    const p = partitionFor('BTC/USD', topics.trades.partitions);
    await bin.publish(topics.trades, [trade(0), trade(1)]);
    await json.publish(topics.trades, [trade(2)]);
    const broken = Buffer.from([0xcc, 1, 0, 9]); // binary, truncated
    await raw.send({
      messages: [
        { topic: bin.name(topics.trades), key: Buffer.from('BTC/USD'), value: broken, partition: p },
      ],
    });
    await bin.publish(topics.trades, [trade(3)]);

    // What is on the topic: binary, JSON, (broken), binary.
    const tail = await json.readTail(topics.trades, 10);
    assert.deepEqual(
      tail.map((r) => (r.value as Trade).tradeId),
      ['0', '1', '2', '3'],
    );

    const seen: Delivered<TradeEvent>[] = [];
    const sub = await bin.subscribe<TradeEvent>({
      topic: topics.trades,
      group: 'g',
      service: 'te',
      handle: (b) => {
        seen.push(...b.records);
        return undefined;
      },
    });
    await sub.caughtUp();
    await sub.stop();
    assert.deepEqual(
      seen.map((r) => r.value),
      [trade(0), trade(1), trade(2), trade(3)],
    );
    assert.deepEqual(
      seen.map((r) => Number(r.offset)),
      [0, 1, 2, 4],
    );
    const dead = (await bin.readTail(topics.dlq, 10)).map((r) => r.value);
    assert.equal(dead.length, 1);
    assert.match(dead[0]!.reason, /truncated|binary/);
    const payload = Buffer.from(dead[0]!.payload.replace(/^base64:/, ''), 'base64');
    assert.ok(isBinaryTrade(payload));
    assert.equal(typeof decodeTradeEvent(payload), 'string');
  });
});

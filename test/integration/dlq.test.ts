import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Producer } from '@platformatic/kafka';
import { partitionFor } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { deadLetter } from '../../src/schemas/dlq.ts';
import { topics } from '../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../src/schemas/trade.ts';
import { CLI } from '../support/cli.ts';
import { T0, trade } from '../support/factories.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { waitFor } from '../support/wait.ts';

/**
 * `cryptocast dlq list|replay` on a real broker. The dead letters are made the way services make them: records that
 * fail the trades topic's check are dead-lettered by a real subscription; a late trade as the candle service
 * dead-letters it; a raw exchange message as a connector does.
 */
const exec = promisify(execFile);
const BROKER = KAFKA_URL.replace(/^kafka:\/\//, '').split(',')[0]!;

describe('cryptocast dlq', () => {
  const prefix = uniquePrefix('dlq');
  const env = {
    ...process.env,
    CRYPTOCAST_TOPIC_PREFIX: prefix,
    CRYPTOCAST_BUS: KAFKA_URL,
    CRYPTOCAST_LOG_LEVEL: 'warn',
  };
  const cli = async (...args: string[]) => {
    const r = await exec(CLI, ['dlq', ...args], { env });
    return r.stdout;
  };
  let bus: KafkaBus;
  let raw: Producer;
  const late = trade({ ts: T0, price: 60_000, exchange: 'kraken', pair: 'BTC/USD', tradeId: 'late-1' });

  before(async () => {
    await ensureKafka();
    bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    raw = new Producer({ clientId: 'dlq-raw', bootstrapBrokers: [BROKER] });
    await bus.ensureTopics([topics.trades, topics.dlq]);
    // Two records the trades topic refuses, dead-lettered by a real consumer.
    const p = partitionFor('BTC/USD', topics.trades.partitions);
    await raw.send({
      messages: [
        {
          topic: bus.name(topics.trades),
          key: Buffer.from('BTC/USD'),
          value: Buffer.from('{oops'),
          partition: p,
        },
        {
          topic: bus.name(topics.trades),
          key: Buffer.from('BTC/USD'),
          value: Buffer.from(JSON.stringify({ ...late, price: -5, tradeId: 'neg' })),
          partition: p,
        },
      ],
    });
    const sub = await bus.subscribe<TradeEvent>({
      topic: topics.trades,
      group: 'reader',
      service: 'reader',
      handle: () => undefined,
    });
    await sub.caughtUp();
    await sub.stop();
    await bus.publish(topics.dlq, [
      deadLetter({
        service: 'candles',
        origin: 'trades',
        kind: 'late',
        reason: 'late by 9 s',
        payload: late,
      }),
      deadLetter({
        service: 'trades',
        origin: 'kraken-ws',
        kind: 'parse',
        reason: 'unknown event',
        payload: '{"x":1}',
      }),
    ]);
    await waitFor(
      'four dead letters',
      () => bus.readTail(topics.dlq, 10),
      (t) => t.length === 4,
    );
  });
  after(async () => {
    await bus?.close();
    await raw?.close();
  });

  it('lists dead letters grouped by service, origin and kind', async () => {
    const out = JSON.parse(await cli('list', '--json')) as {
      read: number;
      groups: { service: string; origin: string; kind: string; count: number; latestReason: string }[];
    };
    assert.equal(out.read, 4);
    const byKey = Object.fromEntries(out.groups.map((g) => [`${g.service}/${g.origin}/${g.kind}`, g]));
    assert.equal(byKey['reader/trades/invalid']?.count, 2);
    assert.equal(byKey['candles/trades/late']?.count, 1);
    assert.equal(byKey['trades/kraken-ws/parse']?.latestReason, 'unknown event');
    const text = await cli('list', '--service', 'reader', '--records');
    assert.match(text, /^2 dead letters \(service reader\) among the latest 4 on dlq/);
    assert.match(text, /not JSON/);
    assert.match(text, /price/);
  });

  it('replays what its topic now accepts, after a dry run that publishes nothing', async () => {
    const before = (await bus.readTail(topics.trades, 100)).length;
    const dry = JSON.parse(await cli('replay', '--origin', 'trades', '--dry-run', '--json')) as {
      matching: number;
      replayable: number;
      published: number;
      notReplayable: { reason: string; count: number }[];
    };
    assert.equal(dry.matching, 3);
    assert.equal(dry.replayable, 1);
    assert.equal(dry.published, 0);
    assert.deepEqual(
      dry.notReplayable.map((r) => r.count),
      [1, 1],
    );
    assert.equal((await bus.readTail(topics.trades, 100)).length, before);

    const text = await cli('replay', '--origin', 'trades', '--kind', 'late');
    assert.match(
      text,
      /1 dead letters \(origin trades, kind late\) among the latest 4 on dlq: 1 published to trades/,
    );
    const tail = await bus.readTail<TradeEvent>(topics.trades, 100);
    assert.equal(tail.length, before + 1);
    assert.deepEqual(tail.find((r) => (r.value as Trade).tradeId === 'late-1')?.value, late);
  });

  it('refuses what it cannot do, in one line', async () => {
    const refused = async (args: string[], code: RegExp) => {
      const r = await exec(CLI, ['dlq', ...args], { env }).then(
        () => assert.fail('expected a refusal'),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(r.code, 2);
      assert.match(r.stderr, code);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    };
    await refused(['replay'], /needs --origin TOPIC.*\[CC_ERR_USAGE\]/);
    await refused(
      ['replay', '--origin', 'kraken-ws'],
      /not a topic dead letters can go back to.*\[CC_ERR_USAGE\]/,
    );
    await refused(['list', '--bus', 'memory'], /read from Kafka.*\[CC_ERR_CONFIG\]/);
    await refused(['list', '--limit', '0'], /--limit must be a positive integer.*\[CC_ERR_USAGE\]/);
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Admin, Producer } from '@platformatic/kafka';
import { TradeService } from '../../src/ingestion/trade-service.ts';
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
 * fail the trades topic's check are dead-lettered by a real subscription; an implausible trade by the real trades
 * service (its origin is the connector); a late trade as the candle service dead-letters it, twice (a re-read); a raw
 * exchange message as a connector does.
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
  const cli = async (...args: string[]) => (await exec(CLI, ['dlq', ...args], { env })).stdout;
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
    const rawRecord = (value: string) => ({
      topic: bus.name(topics.trades),
      key: Buffer.from('BTC/USD'),
      value: Buffer.from(value),
      partition: p,
    });
    await raw.send({
      messages: [rawRecord('{oops'), rawRecord(JSON.stringify({ ...late, price: -5, tradeId: 'neg' }))],
    });
    const sub = await bus.subscribe<TradeEvent>({
      topic: topics.trades,
      group: 'reader',
      service: 'reader',
      handle: () => undefined,
    });
    await sub.caughtUp();
    await sub.stop();
    const lateLetter = deadLetter({
      service: 'candles',
      origin: 'trades',
      kind: 'late',
      reason: 'late by 9 s',
      payload: late,
      partition: p,
      offset: 7,
    });
    await bus.publish(topics.dlq, [
      lateLetter,
      { ...lateLetter, ts: lateLetter.ts + 1 }, // the same record dead-lettered again after a re-read: a copy
      deadLetter({
        service: 'trades',
        origin: 'kraken-ws',
        kind: 'parse',
        reason: 'unknown event',
        payload: '["heartbeat"]',
      }),
    ]);
    // A trade the trades service refuses as implausible, through the real service.
    const sink = new TradeService(bus, { priceGuard: { maxFactor: 10, minHistory: 1 } }).sink('kraken-ws');
    await sink.trades([trade({ ts: T0, price: 60_000, tradeId: 'ok-1' })]);
    await sink.trades([trade({ ts: T0 + 1, price: 6_000_000, tradeId: 'absurd' })]);
    await waitFor(
      'six dead letters',
      async () => (await bus.readTail(topics.dlq, 10)).length,
      (n) => n === 6,
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
    assert.equal(out.read, 6);
    const byKey = Object.fromEntries(out.groups.map((g) => [`${g.service}/${g.origin}/${g.kind}`, g]));
    assert.equal(byKey['reader/trades/invalid']?.count, 2);
    assert.equal(byKey['candles/trades/late']?.count, 2);
    assert.equal(byKey['trades/kraken-ws/implausible']?.count, 1);
    assert.equal(byKey['trades/kraken-ws/parse']?.latestReason, 'unknown event');
    const text = await cli('list', '--service', 'reader', '--records');
    assert.match(text, /^2 dead letters \(service reader\) among the latest 6 on dlq/);
    assert.match(text, /not JSON/);
    assert.match(text, /price/);
  });

  it('lists nothing where nothing was ever dead-lettered, and creates no topic to say so', async () => {
    const empty = uniquePrefix('dlq-none');
    const { stdout } = await exec(CLI, ['dlq', 'list'], { env: { ...env, CRYPTOCAST_TOPIC_PREFIX: empty } });
    assert.match(stdout, /^no dead letters among the latest 0 on dlq/);
    const admin = new Admin({ clientId: 'dlq-test-admin', bootstrapBrokers: [BROKER] });
    const names = await admin.listTopics().finally(() => admin.close());
    assert.equal(
      names.filter((n) => n.startsWith(empty)).length,
      0,
      `a read created ${names.filter((n) => n.startsWith(empty))}`,
    );
  });

  it('replays what the topic now accepts, once per record, after a dry run that publishes nothing', async () => {
    const before = (await bus.readTail(topics.trades, 100)).length;
    const dry = JSON.parse(await cli('replay', '--to', 'trades', '--dry-run', '--json')) as {
      matching: number;
      copies: number;
      replayable: number;
      published: number;
      notReplayable: { reason: string; count: number }[];
    };
    // 2 refused by the topic's check, a late trade and its copy, a raw exchange message, an implausible trade.
    assert.equal(dry.matching, 6);
    assert.equal(dry.copies, 1);
    assert.equal(dry.replayable, 2, 'the late trade (once) and the implausible one');
    assert.equal(dry.published, 0);
    assert.equal(
      dry.notReplayable.reduce((a, r) => a + r.count, 0),
      3,
    );
    assert.equal((await bus.readTail(topics.trades, 100)).length, before);

    const text = await cli('replay', '--to', 'trades', '--kind', 'late');
    assert.match(
      text,
      /2 dead letters \(kind late\) among the latest 6 on dlq \(1 copies of others, skipped\): 1 published to trades/,
    );
    const tail = await bus.readTail<TradeEvent>(topics.trades, 100);
    assert.equal(tail.length, before + 1);
    assert.deepEqual(tail.find((r) => (r.value as Trade).tradeId === 'late-1')?.value, late);

    // The guard was too tight: the refused trade goes to trades, though its origin is the connector.
    const implausible = await cli(
      'replay',
      '--to',
      'trades',
      '--origin',
      'kraken-ws',
      '--kind',
      'implausible',
    );
    assert.match(implausible, /1 published to trades/);
    const after = await bus.readTail<TradeEvent>(topics.trades, 100);
    assert.equal(after.length, before + 2);
    assert.ok(after.some((r) => (r.value as Trade).tradeId === 'absurd'));
  });

  it('refuses what it cannot do, in one line; gives up on a broker that does not answer', async () => {
    const refused = async (args: string[], exit: number, code: RegExp) => {
      const r = await exec(CLI, ['dlq', ...args], { env }).then(
        () => assert.fail('expected a refusal'),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(r.code, exit);
      assert.match(r.stderr, code);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    };
    await refused(['replay'], 2, /needs --to TOPIC.*\[CC_ERR_USAGE\]/);
    await refused(['replay', '--to', 'dlq'], 2, /not a topic dead letters can go to.*\[CC_ERR_USAGE\]/);
    await refused(['list', '--bus', 'memory'], 2, /read from Kafka.*\[CC_ERR_CONFIG\]/);
    await refused(['list', '--limit', '0'], 2, /--limit must be a positive integer.*\[CC_ERR_USAGE\]/);
    await refused(
      ['list', '--bus', 'kafka://127.0.0.1:1', '--timeout', '2s'],
      1,
      /did not answer within 2s.*\[CC_ERR_BUS\]/,
    );
  });
});

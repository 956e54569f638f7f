import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { topics } from '../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../src/schemas/trade.ts';
import { krakenRecordedTrades } from '../support/exchanges/fixtures.ts';
import { range } from '../support/exchanges/harness.ts';
import { KrakenServer } from '../support/exchanges/kraken.ts';
import { ensureKafka, KAFKA_URL, serviceLauncher, uniquePrefix } from '../support/kafka.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The live trades service on a real Kafka broker, killed with SIGKILL and started again while the market trades on
 * (a local Kraken server): the restarted service refills from where the killed one left the `trades` log, so the log
 * holds every trade once, in order, with no hole where the service was down.
 */
const PAIR = 'BTC/USDT';
const real = krakenRecordedTrades(); // 1,000 real trades, consecutive ids

describe('trades service: kill -9 while live on Kafka, restart', () => {
  before(ensureKafka);
  const prefix = uniquePrefix('trades-restart');
  const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
  const children: ChildProcess[] = [];
  let srv: KrakenServer | undefined;
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await bus.close();
    await srv?.close();
  });

  it('publishes what traded while it was down, each trade once, in order', async () => {
    srv = await new KrakenServer().listen();
    const kraken = srv;
    const start = serviceLauncher(prefix, children, {
      CRYPTOCAST_EXCHANGES: 'kraken',
      CRYPTOCAST_KRAKEN_WS_URL: kraken.wsUrl,
      CRYPTOCAST_KRAKEN_REST_URL: kraken.restUrl,
    });
    const tradeIds = async () =>
      (await bus.readTail<TradeEvent>(topics.trades, 10_000))
        .map((r) => r.value)
        .filter((v): v is Trade => v.type === 'trade')
        .map((t) => Number(t.tradeId) - real[0]!.id);
    // Subscribed, not only connected: Kraken streams a pair only to connections subscribed to it.
    const subscribed = (what: string) =>
      waitFor(
        what,
        async () => kraken.subscribers(PAIR),
        (n) => n === 1,
        { timeoutMs: 60_000, everyMs: 50 },
      );
    const args = ['trades', '--source', 'live', '--pairs', PAIR];

    const first = start(args);
    await subscribed('the first service to connect');
    kraken.publish(PAIR, real.slice(0, 100));
    await waitFor('the first 100 trades on the topic', tradeIds, (ids) => ids.length === 100, {
      timeoutMs: 60_000,
    });
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    await waitFor(
      'the killed connection to close',
      async () => kraken.sockets.size,
      (n) => n === 0,
      {
        timeoutMs: 30_000,
      },
    );

    kraken.record(PAIR, real.slice(100, 700)); // traded while the service was down
    start(args);
    await subscribed('the restarted service to connect');
    kraken.publish(PAIR, real.slice(700, 750));
    const ids = await waitFor('750 trades on the topic', tradeIds, (ids) => ids.length >= 750, {
      timeoutMs: 60_000,
    });
    assert.deepEqual(ids, range(0, 749));
  });
});

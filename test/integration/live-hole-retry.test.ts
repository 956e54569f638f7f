import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { CoinbaseWsSource } from '../../src/ingestion/live/coinbase-ws.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { DeadLetter } from '../../src/schemas/dlq.ts';
import { topics } from '../../src/schemas/topics.ts';
import type { Trade } from '../../src/schemas/trade.ts';
import { until } from '../support/exchanges/base.ts';
import { CoinbaseServer } from '../support/exchanges/coinbase.ts';
import { coinbaseTradesFromRecording } from '../support/exchanges/fixtures.ts';
import { FAST_CONNECTOR } from '../support/exchanges/harness.ts';
import { waitFor } from '../support/wait.ts';

const PAIR = 'BTC/USD';
const MIN = 60_000;
const GRACE_MS = 5_000;

/**
 * End to end: a Coinbase refill fails (the REST API down) and the stream goes on, so the hole's minute closes without
 * its trades. The REST API back, the hole is fetched — late for that minute: what the late policy makes of it is what
 * the candles and the dead letters show. The trades are stamped on the wall clock; the connector's clock (its
 * watermarks) is moved past the minute and its grace instead of waiting for up to 67 s of real time.
 */
async function holeFetchedAfterItsMinuteClosed(latePolicy: 'dlq' | 'revise') {
  const srv = new CoinbaseServer();
  srv.heartbeatMs = 200;
  await srv.listen();
  const bus = new InProcessBus();
  let ahead = 0; // how far the connector's clock is ahead of the wall clock
  const source = new CoinbaseWsSource({
    pairs: [PAIR],
    wsUrl: srv.wsUrl,
    restUrl: srv.restUrl,
    ...FAST_CONNECTOR,
    restRetries: 0,
    // Asked again every 50-200 ms for as long as the test keeps the REST API down.
    holeRetry: { backoff: { initialMs: 50, maxMs: 200 }, attempts: 100_000 },
    now: () => Date.now() + ahead,
  });
  const pipeline = await startMarketDataPipeline({
    bus,
    sources: [source],
    config: { interval: '1m', graceMs: GRACE_MS, latePolicy },
  });
  // Real trades (prices, sizes, sides), traded now.
  const recorded = coinbaseTradesFromRecording(5);
  const now = () => new Date().toISOString();
  const at = (i: number) => ({ ...recorded[i]!, time: now() });
  try {
    await until(() => source.subscribed.includes(PAIR), 10_000, 'subscribed');
    srv.publish([at(0)]);
    srv.failNext = 1_000_000; // the REST API down
    srv.muted = true;
    const lost = [at(1), at(2), at(3)];
    srv.publish(lost); // lost on the stream
    srv.muted = false;
    srv.publish([at(4)]); // its sequence_num jump starts a refill, which fails
    await until(() => source.stats.unrecoverable === 1, 30_000, 'the refill to fail');
    const minute = Math.floor(Date.parse(lost[0]!.time) / MIN) * MIN;
    const candles = async () => (await bus.readTail<Candle>(topics.candles, 1_000)).map((r) => r.value);
    // The stream goes on: its watermarks, a minute and the grace later, close the hole's minute without its trades.
    ahead = MIN + GRACE_MS;
    const first = await waitFor(
      "the hole's minute to close",
      candles,
      (cs) => cs.some((c) => c.windowStart === minute),
      { timeoutMs: 30_000 },
    );
    const published = first.find((c) => c.windowStart === minute)!;
    assert.equal(published.revision, 0);
    srv.failNext = 0; // the REST API back: the next attempt fetches the hole
    await until(() => source.stats.holesRefilled === 1, 30_000, 'the hole fetched');
    // Delivered to the candle stage; it handles its input in order, so this marker's watermark comes after them.
    await pipeline.candles.caughtUp();
    const lostIds = lost.map((t) => t.trade_id);
    const dead = async () => (await bus.readTail<DeadLetter>(topics.dlq, 1_000)).map((r) => r.value);
    return { published, lostIds, candles, dead, minute };
  } finally {
    await pipeline.stop();
    await bus.close();
    await srv.close();
  }
}

describe('Coinbase: a hole left by a failed refill, fetched after its minute closed', () => {
  it('late policy dlq (default): the fetched trades are dead-lettered as late, the candle stays as published', async () => {
    const r = await holeFetchedAfterItsMinuteClosed('dlq');
    const late = (await r.dead()).filter((d) => d.kind === 'late');
    assert.deepEqual(late.map((d) => (JSON.parse(d.payload) as Trade).tradeId).sort(), [...r.lostIds].sort());
    const mine = (await r.candles()).filter((c) => c.windowStart === r.minute);
    assert.deepEqual(
      mine.map((c) => c.revision),
      [0],
      'no revision',
    );
  });

  it('late policy revise: the minute is published again with its trades (revision 1)', async () => {
    const r = await holeFetchedAfterItsMinuteClosed('revise');
    const mine = (await r.candles()).filter((c) => c.windowStart === r.minute);
    const last = mine.at(-1)!;
    assert.ok(last.revision >= 1, `revisions ${mine.map((c) => c.revision)}`);
    assert.equal(last.trades, r.published.trades! + r.lostIds.length, 'the revision holds the hole trades');
    assert.equal((await r.dead()).filter((d) => d.kind === 'late').length, 0);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CandleService } from '../../../../src/candles/candle-service.ts';
import { type Bus, partitionFor } from '../../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../../src/schemas/candle.ts';
import type { DeadLetter } from '../../../../src/schemas/dlq.ts';
import type { ResumePointRecord } from '../../../../src/schemas/resume-point.ts';
import { topics } from '../../../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../../../src/schemas/trade.ts';
import { collectValues } from '../../../support/collect.ts';
import { until } from '../../../support/exchanges/base.ts';
import { krakenRecordedTrades } from '../../../support/exchanges/fixtures.ts';
import { range } from '../../../support/exchanges/harness.ts';
import { KrakenServer, type KrakenTrade } from '../../../support/exchanges/kraken.ts';
import { krakenTradesStage } from '../../../support/exchanges/kraken-trades-stage.ts';
import { waitFor } from '../../../support/wait.ts';

/**
 * The trades stage killed in the middle of a long restart refill of its only pair (a crash: nothing written at a
 * stop), then restarted. While the refill goes on the pair's watermarks are held, and its point on `trades.resume` was
 * written only at its source's watermarks: a single-pair source wrote none until the refill ended. How far the next
 * restart reads the refill again depends on what it finds of it: the `trades` log's tail and last hour (restarted soon)
 * or, for a pair quiet for longer than that, `trades.resume` alone.
 */
const PAIR = 'BTC/USDT';
/** Another exchange's pair on the same `trades` partition, busy while PAIR is quiet. */
const BUSY = 'SOL/USD';
const real = krakenRecordedTrades(); // 1,000 real trades, consecutive ids
const firstId = real[0]!.id;
const PAGE = 20;
/** The crash comes as the refill asks for this page of its 45 (ids 100..999, 20 a page). */
const CRASH_AT_PAGE = 30;
/** The stretch of `trades` a restart reads back, small so the test need not wait an hour. */
const READ_BACK = { resumeTailRecords: 50, resumeReachMs: 300 };
/**
 * A source's points are written at its trades once its watermarks have been held this long (the default is 2 s of a
 * 1-s watermark; here the connector's watermarks come every 25 ms and its pages every 20 ms).
 */
const HELD_MS = 100;
/** Pages of the refill that can come in HELD_MS, and one more whose point was in flight at the crash. */
const MOST_PAGES_REREAD = HELD_MS / 20 + 2;

/**
 * An in-process bus (the log outlives the stage, as Kafka's) that refuses every publish once `crashed.now`: the dead
 * process's; the restarted one publishes on the log itself.
 */
function crashableBus(crashed: { now: boolean }): { bus: Bus; log: InProcessBus } {
  const log = new InProcessBus();
  const bus = new Proxy(log, {
    get(target, prop, receiver) {
      if (prop === 'publish')
        return async (t: never, values: never) => {
          if (crashed.now) throw new Error('the process is dead (injected)');
          return target.publish(t, values);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { bus, log };
}

/** `afterPointMs`: how long after a quiet pair's point the restart reads the log (0: not at all, the held writes alone). */
const tradesStage = (bus: Bus, srv: KrakenServer, afterPointMs?: number) =>
  krakenTradesStage(bus, srv, PAIR, {
    service: { ...READ_BACK, resumePointHeldMs: HELD_MS, resumePointLagMs: afterPointMs },
    restMinIntervalMs: 20,
  });

const tradeIds = (values: readonly TradeEvent[]) =>
  values.filter((v): v is Trade => v.type === 'trade').map((t) => Number(t.tradeId) - firstId);

/** Ids that are on the topic more than once. */
const repeated = (ids: readonly number[]) => ids.filter((id, i) => ids.indexOf(id) !== i);

async function crashInLongRefill(quiet: boolean) {
  const srv = await new KrakenServer().listen();
  srv.pageSize = PAGE;
  const crashed = { now: false };
  const { bus, log } = crashableBus(crashed);
  try {
    const onTopic = await collectValues(log, topics.trades);
    const first = tradesStage(bus, srv);
    await until(() => first.source.subscribed.includes(PAIR));
    srv.publish(PAIR, real.slice(0, 100));
    await until(() => tradeIds(onTopic).length === 100, 10_000, 'the first 100 trades');
    await first.stop();

    // Down while 900 trades were made: the restart's refill is 45 pages; the process dies as it asks for the 30th.
    srv.record(PAIR, real.slice(100, 1_000));
    const pagesBefore = srv.pagesServed.length;
    const push = srv.pagesServed.push.bind(srv.pagesServed);
    srv.pagesServed.push = (...rows) => {
      const n = push(...rows);
      if (n - pagesBefore === CRASH_AT_PAGE) crashed.now = true;
      return n;
    };
    const second = tradesStage(bus, srv);
    await until(() => crashed.now, 30_000, 'the crash in the refill');
    void second.stop(); // a dead process: its stop's writes are refused as every publish is
    const beforeCrash = tradeIds(onTopic).length;
    // Pages overlap by the trades of their boundary instant (Kraken's `since` is a time): fewer than 20 new a page.
    assert.ok(
      beforeCrash > 400 && beforeCrash < 1_000,
      `the pages before the crash are on the log: ${beforeCrash}`,
    );

    if (quiet) {
      // PAIR quiet for longer than the reach (its stage down); meanwhile BUSY goes on, more records than the tail.
      const stoppedAt = Date.now();
      await until(() => Date.now() > stoppedAt + 2 * READ_BACK.resumeReachMs, 10_000, 'the reach passed');
      const t0 = Date.now();
      assert.equal(
        partitionFor(BUSY, topics.trades.partitions),
        partitionFor(PAIR, topics.trades.partitions),
      );
      await log.publish(
        topics.trades,
        Array.from(
          { length: 200 },
          (_, i): TradeEvent => ({ v: 1, type: 'watermark', exchange: 'coinbase', pair: BUSY, ts: t0 + i }),
        ),
      );
    }

    const pagesAtRestart = srv.pagesServed.length;
    // The refill ran within a minute of the point written at the first stage's stop, so the read after it would find
    // its pages too: off, the points written during the refill are what the restart has.
    const third = tradesStage(log, srv, 0);
    await until(() => tradeIds(onTopic).includes(999), 30_000, 'the rest of the refill');
    await third.stop();
    const ids = tradeIds(onTopic);
    const reread = srv.pagesServed
      .slice(pagesAtRestart)
      .filter((p) => (p.lastId ?? 0) - firstId < beforeCrash);
    return {
      ids,
      repeated: repeated(ids),
      pagesReread: reread.length,
      recovered: third.source.stats.recovered,
    };
  } finally {
    await log.close();
    await srv.close();
  }
}

describe('a crash late in a long refill of a single-pair source', () => {
  it('restarted soon: the log read back knows where the refill stood (nothing published twice)', async () => {
    const r = await crashInLongRefill(false);
    assert.deepEqual(r.repeated, []);
    assert.deepEqual(r.ids, range(0, 999), 'every trade once, in order');
    assert.ok(r.pagesReread <= 1, `pages of the refill read again: ${r.pagesReread}`);
  });

  it('quiet for longer than the log read back: restarted from where the refill stood, not from its start', async () => {
    const r = await crashInLongRefill(true);
    const said = `${r.pagesReread} pages of the refill read again, ${r.repeated.length} trades published twice`;
    assert.ok(r.pagesReread <= MOST_PAGES_REREAD, said);
    assert.ok(r.repeated.length <= r.pagesReread * PAGE, said);
    assert.deepEqual(
      [...new Set(r.ids)].sort((a, b) => a - b),
      range(0, 999),
      'every trade, none lost',
    );
  });
});

/**
 * The case the resume point's doc named: the stage killed between a batch published and its source's next watermark,
 * the point a batch behind, and the pair then quiet for longer than the log read back: the restart's refill published
 * that batch again on `trades`. The candle stage dropped it by trade id: its windows still open (no watermark came
 * after the batch, and a batch of a live stream spans less than the grace), it holds their trades' ids in memory, or,
 * restarted itself, reads them again from its commit (never past the oldest trade of an open window). The restart now
 * reads the log just after the point's write (RESUME_POINT_LAG_MS), and the batch is not published again at all.
 */
describe('a crash between a batch and the next watermark: the batch is not published again, and no candle counts it twice', () => {
  for (const candlesRestarted of [false, true])
    it(
      candlesRestarted ? 'the candle stage restarted meanwhile' : 'the candle stage running on',
      async () => {
        const t0 = Date.now();
        const now = (i: number): KrakenTrade => ({ ...real[i]!, time: ((t0 + i * 10) / 1_000).toFixed(6) });
        const srv = await new KrakenServer().listen();
        const crashed = { now: false };
        const { bus, log } = crashableBus(crashed);
        // Killed once the batch holding trade 109 is on the log: its next watermark, and its point, never written.
        const publish = log.publish.bind(log);
        log.publish = (async (t: never, values: readonly TradeEvent[]) => {
          await publish(t, values as never);
          if (values.some((v) => v.type === 'trade' && Number(v.tradeId) === firstId + 109))
            crashed.now = true;
        }) as InProcessBus['publish'];
        let candles = new CandleService({ bus: log, latePolicy: 'revise' });
        try {
          await candles.start();
          const onTopic = await collectValues(log, topics.trades);
          const first = tradesStage(bus, srv);
          await until(() => first.source.subscribed.includes(PAIR));
          srv.publish(
            PAIR,
            range(0, 99).map((i) => now(i)),
          );
          const points = async () =>
            (await log.readTail<ResumePointRecord>(topics.tradesResume, 100)).map((r) => r.value);
          let written: ResumePointRecord[] = [];
          await until(
            () => {
              void points().then((p) => {
                written = p;
              });
              return written.some((p) => p.lastId === firstId + 99);
            },
            10_000,
            'the point of the first 100 at a watermark',
          );
          srv.publish(
            PAIR,
            range(100, 109).map((i) => now(i)),
          );
          await until(() => crashed.now, 10_000, 'the batch on the log, then the crash');
          void first.stop();
          assert.ok(
            (await points()).every((p) => (p.lastId ?? 0) < firstId + 100),
            'the point is a batch behind',
          );

          if (candlesRestarted) {
            await candles.caughtUp();
            await candles.stop();
            candles = new CandleService({ bus: log, latePolicy: 'revise' });
            await candles.start();
          }
          // Quiet for longer than the reach, while another exchange's pair on its partition goes on.
          const stoppedAt = Date.now();
          await until(() => Date.now() > stoppedAt + 2 * READ_BACK.resumeReachMs, 10_000, 'the reach passed');
          await log.publish(
            topics.trades,
            Array.from(
              { length: 200 },
              (_, i): TradeEvent => ({
                v: 1,
                type: 'watermark',
                exchange: 'coinbase',
                pair: BUSY,
                ts: t0 + i,
              }),
            ),
          );
          const second = tradesStage(log, srv);
          await until(() => second.source.subscribed.includes(PAIR));
          srv.publish(PAIR, [{ ...real[110]!, time: (Date.now() / 1_000).toFixed(6) }]);
          await until(() => tradeIds(onTopic).includes(110), 10_000, 'a trade after the restart');
          await second.stop();
          // Before the restart read the log after a point it had only on trades.resume, the batch was on `trades`
          // twice here (ids 100-109), and the candle stage dropped the copies by id (one candle, 110 trades).
          assert.deepEqual(repeated(tradeIds(onTopic)), [], 'the batch behind the point not published again');
          // The minutes closed (a watermark past them and their grace), and every candle out.
          await log.publish<TradeEvent>(topics.trades, [
            { v: 1, type: 'watermark', exchange: 'kraken', pair: PAIR, ts: Date.now() + 2 * 60_000 },
          ]);
          await candles.caughtUp();
          const out = (await log.readTail<Candle>(topics.candles, 100))
            .map((r) => r.value)
            .filter((c) => c.pair === PAIR && !c.filled);
          assert.ok(
            out.every((c) => c.revision === 0),
            'never revised',
          );
          assert.equal(
            out.reduce((n, c) => n + (c.trades ?? 0), 0),
            111,
            'each of the 111 trades counted once',
          );
          const late = (await log.readTail<DeadLetter>(topics.dlq, 100)).filter(
            (r) => r.value.kind === 'late',
          );
          assert.deepEqual(late, [], 'none taken for a late trade');
        } finally {
          await candles.stop();
          await log.close();
          await srv.close();
        }
      },
    );
});

/**
 * What the candle stage cannot drop: a stretch behind the point whose own trades closed a window (a refill's pages,
 * delivered oldest first while the pair's watermarks are held, span minutes), and a candle stage restarted since, which
 * holds no ids of a closed window. The batch published again on the restart is late for that minute: under `revise` a
 * revision counting its trades twice. Here the refill writes no point at all (`resumePointHeldMs` an hour): the same
 * as a crash within RESUME_POINT_HELD_MS of its last write.
 */
describe('a crash behind the point in a refill whose pages closed a minute: the restart publishes none of it again', () => {
  it('the candle stage restarted twice meanwhile, under revise: every minute counts each trade once', async () =>
    refillClosingAMinute(undefined));

  // The restart's refill began longer than the read after a point (`resumePointLagMs`, 2 min by default; here 400 ms)
  // after the pair's last point was written: its first seconds, published before the source's first write, are in no
  // stretch the next restart reads.
  it("the refill begun longer after the pair's last point than the read after it: the same", async () =>
    refillClosingAMinute(400));
});

/** `lagMs`: the stages' `resumePointLagMs`; given, the refill begins twice that after the first stage's stop. */
async function refillClosingAMinute(lagMs: number | undefined): Promise<void> {
  // A minute boundary ahead: the refill's trades, made while the stage was down, span it and 10 s past it, no more
  // than 60 s after they are received (later would be refused as implausible): at most 50 s ahead.
  await waitFor(
    'a minute with 10 s of it gone',
    () => Date.now() % 60_000,
    (ms) => ms >= 10_000,
    {
      timeoutMs: 30_000,
      everyMs: 200,
    },
  );
  const boundary = Math.ceil(Date.now() / 60_000) * 60_000;
  const srv = await new KrakenServer().listen();
  srv.pageSize = PAGE;
  const crashed = { now: false };
  const { bus, log } = crashableBus(crashed);
  const stage = (on: Bus, heldMs: number) =>
    krakenTradesStage(on, srv, PAIR, {
      service: { ...READ_BACK, resumePointHeldMs: heldMs, resumePointLagMs: lagMs },
      restMinIntervalMs: 20,
    });
  let candles = new CandleService({ bus: log, latePolicy: 'revise' });
  try {
    await candles.start();
    const onTopic = await collectValues(log, topics.trades);
    const t0 = Date.now();
    const first = stage(bus, HELD_MS);
    await until(() => first.source.subscribed.includes(PAIR));
    srv.publish(
      PAIR,
      range(0, 99).map((i) => ({ ...real[i]!, time: ((t0 + i) / 1_000).toFixed(6) })),
    );
    await until(() => tradeIds(onTopic).length === 100, 10_000, 'the first 100 trades');
    await first.stop();

    // 900 trades from now to 10 s past the boundary: the refill's 45 pages; the stage dies as it asks for the last.
    const from = Date.now() + 100;
    const step = (boundary + 10_000 - from) / 900;
    srv.record(
      PAIR,
      range(100, 999).map((i) => ({ ...real[i]!, time: ((from + (i - 100) * step) / 1_000).toFixed(6) })),
    );
    const pagesBefore = srv.pagesServed.length;
    const push = srv.pagesServed.push.bind(srv.pagesServed);
    srv.pagesServed.push = (...rows) => {
      const n = push(...rows);
      if (n - pagesBefore === 45) crashed.now = true;
      return n;
    };
    if (lagMs !== undefined) {
      const stoppedAt = Date.now();
      await until(() => Date.now() > stoppedAt + 2 * lagMs, 10_000, 'the read after the point passed');
    }
    const second = stage(bus, 60 * 60_000);
    await until(() => crashed.now, 30_000, 'the crash in the refill');
    void second.stop();
    await candles.caughtUp();
    const closed = (await log.readTail<Candle>(topics.candles, 100)).map((r) => r.value);
    assert.ok(
      closed.some((c) => c.pair === PAIR && c.windowEnd === boundary),
      'the minute before the boundary closed by the refill',
    );
    // Quiet for longer than the reach, while another exchange's pair on its partition goes on. The candle stage is
    // restarted twice meanwhile: under `revise` it commits behind the windows it closed itself (a restart reads
    // their trades again, and knows their ids), not behind those it took back from what it had published.
    await candles.stop();
    candles = new CandleService({ bus: log, latePolicy: 'revise' });
    await candles.start();
    const stoppedAt = Date.now();
    await until(() => Date.now() > stoppedAt + 2 * READ_BACK.resumeReachMs, 10_000, 'the reach passed');
    await log.publish(
      topics.trades,
      Array.from(
        { length: 200 },
        (_, i): TradeEvent => ({ v: 1, type: 'watermark', exchange: 'coinbase', pair: BUSY, ts: t0 + i }),
      ),
    );
    await candles.caughtUp();
    await candles.stop();
    candles = new CandleService({ bus: log, latePolicy: 'revise' });
    await candles.start();
    const third = stage(log, HELD_MS);
    await until(() => tradeIds(onTopic).includes(999), 30_000, 'the rest of the refill');
    await third.stop();
    await log.publish<TradeEvent>(topics.trades, [
      { v: 1, type: 'watermark', exchange: 'kraken', pair: PAIR, ts: boundary + 3 * 60_000 },
    ]);
    await candles.caughtUp();

    const latest = new Map<number, Candle>();
    for (const r of await log.readTail<Candle>(topics.candles, 1_000))
      if (r.value.pair === PAIR && r.value.revision >= (latest.get(r.value.windowEnd)?.revision ?? -1))
        latest.set(r.value.windowEnd, r.value);
    const counted = [...latest.values()].reduce((n, c) => n + (c.trades ?? 0), 0);
    const ids = tradeIds(onTopic);
    assert.equal(
      counted,
      1_000,
      `trades counted in the minutes' latest revisions (${repeated(ids).length} published twice; revised: ${[...latest.values()].filter((c) => c.revision > 0).length} minutes)`,
    );
    assert.deepEqual(repeated(ids), [], 'nothing published twice');
  } finally {
    await candles.stop();
    await log.close();
    await srv.close();
  }
}

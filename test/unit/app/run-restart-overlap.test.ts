import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type MarketDataPipeline, startMarketDataPipeline } from '../../../src/app/pipeline.ts';
import type { LatePolicy } from '../../../src/candles/aggregator.ts';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../../src/candles/store/candles-table.ts';
import { resumeFromStore } from '../../../src/cli/commands/run.ts';
import { type KrakenWsOptions, KrakenWsSource } from '../../../src/ingestion/live/kraken-ws.ts';
import { MonitorService } from '../../../src/monitoring/monitor-service.ts';
import { openErrorsStore } from '../../../src/monitoring/store/open.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../../src/schemas/trade.ts';
import { collectValues } from '../../support/collect.ts';
import { FAST_CONNECTOR } from '../../support/exchanges/harness.ts';
import { KrakenServer, type KrakenTrade } from '../../support/exchanges/kraken.ts';
import { scratchDir } from '../../support/scratch.ts';
import { waitFor } from '../../support/wait.ts';

const PAIR = 'BTC/USDT';
/** 12:00 of a day in the past: the connector's clock (its watermarks) is the test's, so minutes close when it says. */
const T0 = Date.parse('2025-11-10T12:00:00Z');
const MIN = 60_000;

/** A Kraken trade at `ms` (epoch), as the stand-in keeps it. */
const kt = (id: number, ms: number, price: number, qty: number): KrakenTrade => ({
  id,
  price: String(price),
  qty: String(qty),
  time: (ms / 1000).toFixed(3),
  side: 'b',
  ordType: 'l',
});

// 12:00 traded 1001-1004, the last three in its last second: the restart refill's overlap (REFILL_OVERLAP_MS).
const early = kt(1001, T0 + 10_000, 100, 0.1);
const lastSecond = [kt(1002, T0 + 59_200, 101, 0.2), kt(1003, T0 + 59_500, 102, 0.3)];
/** Traded in 12:00's last second, its frame lost: the connector sees it only as an id gap at the next trade. */
const unseen = kt(1004, T0 + 59_800, 103, 0.4);
const next = kt(1005, T0 + MIN + 30_000, 104, 0.5);

/**
 * `cryptocast run --source live` (in-process bus, DuckDB store, a Kraken connector on a local stand-in) stopped once
 * 12:00 is stored and started again on its store. A trade of 12:00's last second that the first process never took (its
 * frame was lost; the exchange lists it) reaches the restarted one through the restart refill, which asks from a second
 * before the resume point: it is the same late trade an uninterrupted run gets through the id gap's refill, and must
 * be treated as that run treats it (revised into 12:00, or dead-lettered), not dropped as one the earlier process took.
 */
describe('cryptocast run --source live restarted on its store: the refill overlap second', () => {
  for (const latePolicy of ['revise', 'dlq'] as const)
    it(`--late-policy ${latePolicy}: a trade of the last stored second the earlier process never took is late, as without the restart; those it took are not taken twice`, async () => {
      // One exchange for the uninterrupted run, another for the one restarted: each starts with no trade.
      const srv = await new KrakenServer().listen();
      const srvRestarted = await new KrakenServer().listen();
      try {
        // Uninterrupted: 12:00 closes, then 1005 shows 1004 as an id gap, whose refill brings it (late for 12:00).
        const once = await (async () => {
          const p = await startRun(
            join(scratchDir('cc-overlap-once-'), 'cryptocast.duckdb'),
            srv,
            latePolicy,
            T0,
          );
          await firstMinute(p, srv);
          srv.publish(PAIR, [next]);
          await waitFor(
            '1004 and 1005',
            () => p.trades().length,
            (n) => n === 5,
            { timeoutMs: 20_000 },
          );
          p.clock.t = T0 + 2 * MIN + 8_000; // closes 12:01
          await waitFor(
            '12:01',
            () => p.published.length,
            (n) => n >= (latePolicy === 'revise' ? 3 : 2),
          );
          return p.stop();
        })();

        // With a restart once 12:00 is stored; 1005 traded while the process was down.
        const file = join(scratchDir('cc-overlap-restart-'), 'cryptocast.duckdb');
        const first = await (async () => {
          const p = await startRun(file, srvRestarted, latePolicy, T0);
          await firstMinute(p, srvRestarted);
          return p.stop();
        })();
        srvRestarted.record(PAIR, [next]);
        const second = await (async () => {
          const p = await startRun(file, srvRestarted, latePolicy, T0 + MIN + 40_000);
          await waitFor(
            'the refill',
            () => p.trades().map((t) => t.tradeId),
            (ids) => ids.includes('1005'),
            {
              timeoutMs: 20_000,
            },
          );
          p.clock.t = T0 + 2 * MIN + 8_000;
          await waitFor('12:01', () => p.published.some((c) => c.windowStart === T0 + MIN), Boolean);
          return p.stop();
        })();

        assert.deepEqual(
          [...first.published, ...second.published],
          once.published,
          'the candles published, revisions included',
        );
        assert.deepEqual(
          [...first.dead, ...second.dead].map((d) => (JSON.parse(d.payload) as Trade).tradeId),
          once.dead.map((d) => (JSON.parse(d.payload) as Trade).tradeId),
          'the same trades dead-lettered',
        );
        assert.deepEqual(second.stored, once.stored, 'the stored candles');
        assert.equal(
          second.trades.filter((t) => t.tradeId === '1002' || t.tradeId === '1003').length,
          0,
          "12:00's last-second trades the earlier process took are not published again",
        );
      } finally {
        await srv.close();
        await srvRestarted.close();
      }
    });
});

/**
 * A trade the first process lost itself and had not yet got back when it stopped, in a stored minute before the last
 * second: its frame lost with nothing traded after it (the connector notices a lost Kraken frame only at the pair's
 * next trade), or an id gap it noticed whose refill failed, waiting for its retry (kept in memory). The restart refill
 * used to start a second before the newest stored minute's end, so it was lost for good; an uninterrupted run gets it
 * late (the next trade's gap, the hole's retry): revised into 12:00 under `revise`, dead-lettered under `dlq`.
 */
describe('cryptocast run --source live restarted on its store: what the earlier process had not yet got back', () => {
  const lost = kt(1002, T0 + 30_000, 101, 0.2);
  const after = kt(1003, T0 + 45_000, 102, 0.3);
  const whileDown = kt(1004, T0 + 2 * MIN + 30_000, 103, 0.4);
  /** The hole's retry (the connector's clock) never comes before the stop: the test's clock jumps by minutes. */
  const noRetryBeforeTheStop = {
    holeRetry: { backoff: { initialMs: 60 * MIN, maxMs: 60 * MIN }, attempts: 8 },
  };
  for (const pending of ['a frame lost, not yet noticed', 'an id gap waiting for its retry'] as const)
    for (const latePolicy of ['revise', 'dlq'] as const)
      it(`${pending}, --late-policy ${latePolicy}: the restart gets it, late for its stored minute; the rest once`, async () => {
        const srv = await new KrakenServer().listen();
        try {
          const file = join(scratchDir('cc-pending-restart-'), 'cryptocast.duckdb');
          const first = await (async () => {
            const p = await startRun(file, srv, latePolicy, T0, noRetryBeforeTheStop);
            await waitFor(
              'subscribed',
              () => p.source.subscribed,
              (s) => s.includes(PAIR),
              { timeoutMs: 20_000 },
            );
            srv.publish(PAIR, [early]);
            srv.record(PAIR, [lost]);
            if (pending === 'an id gap waiting for its retry') {
              srv.failNext = 1_000; // the gap's refill fails: a hole, asked for again later
              srv.publish(PAIR, [after]);
              await waitFor(
                'the hole',
                () => p.source.stats.unrecoverable,
                (n) => n >= 1,
                { timeoutMs: 20_000 },
              );
              srv.failNext = 0;
            }
            await waitFor(
              'the streamed trades',
              () => p.trades().length,
              (n) => n === (pending === 'an id gap waiting for its retry' ? 2 : 1),
              { timeoutMs: 20_000 },
            );
            p.clock.t = T0 + 2 * MIN + 8_000; // closes 12:00 and 12:01 (filled)
            await waitFor(
              '12:01 stored',
              () => p.storedCount(),
              (n) => n === 2,
              { timeoutMs: 20_000 },
            );
            return p.stop();
          })();
          srv.record(PAIR, [whileDown]);
          const second = await (async () => {
            const p = await startRun(file, srv, latePolicy, T0 + 2 * MIN + 40_000, noRetryBeforeTheStop);
            await waitFor(
              'the refill',
              () => p.trades().map((t) => t.tradeId),
              (ids) => ids.includes('1004'),
              {
                timeoutMs: 20_000,
              },
            );
            p.clock.t = T0 + 3 * MIN + 8_000; // closes 12:02
            await waitFor('12:02', () => p.published.some((c) => c.windowStart === T0 + 2 * MIN), Boolean, {
              timeoutMs: 20_000,
            });
            if (pending === 'an id gap waiting for its retry')
              await waitFor(
                '1002',
                () => p.trades().map((t) => t.tradeId),
                (ids) => ids.includes('1002'),
                {
                  timeoutMs: 20_000,
                },
              ).catch(() => {});
            return p.stop();
          })();
          const ids = (trades: readonly Trade[]) => trades.map((t) => t.tradeId).sort();
          assert.deepEqual(
            [...ids(first.trades), ...ids(second.trades)].sort(),
            ['1001', '1002', '1003', '1004'].filter(
              (id) => pending !== 'a frame lost, not yet noticed' || id !== '1003',
            ),
            'every trade published once: the lost one by the restarted process, none of the first again',
          );
          const noon = second.stored.find((c) => c.windowStart === T0)!;
          if (latePolicy === 'revise')
            assert.equal(
              noon.trades,
              pending === 'an id gap waiting for its retry' ? 3 : 2,
              '12:00 revised with it',
            );
          else
            assert.deepEqual(
              second.dead.map((d) => (JSON.parse(d.payload) as Trade).tradeId),
              ['1002'],
              'dead-lettered as late for 12:00, as an uninterrupted run does',
            );
        } finally {
          await srv.close();
        }
      });

  it('a gap whose retry got it after the newest stored minute closed, --late-policy revise: not asked for again (12:00 counts it once)', async () => {
    const srv = await new KrakenServer().listen();
    try {
      const file = join(scratchDir('cc-pending-got-'), 'cryptocast.duckdb');
      // The hole is asked for again a second (the connector's clock) after it opened: once the clock moves.
      const retrySoon = { holeRetry: { backoff: { initialMs: 1_000, maxMs: 1_000 }, attempts: 8 } };
      const first = await (async () => {
        const p = await startRun(file, srv, 'revise', T0, retrySoon);
        await waitFor(
          'subscribed',
          () => p.source.subscribed,
          (s) => s.includes(PAIR),
          { timeoutMs: 20_000 },
        );
        srv.publish(PAIR, [early]);
        srv.record(PAIR, [lost]);
        srv.failNext = 1_000;
        srv.publish(PAIR, [after]);
        await waitFor(
          'the hole',
          () => p.source.stats.unrecoverable,
          (n) => n >= 1,
          { timeoutMs: 20_000 },
        );
        srv.failNext = 0;
        await waitFor(
          '1003',
          () => p.trades().length,
          (n) => n === 2,
          { timeoutMs: 20_000 },
        );
        // 12:00 and 12:01 close with the ids not yet got said; the retry then gets 1002: 12:00 revised.
        p.clock.t = T0 + 2 * MIN + 8_000;
        await waitFor(
          '1002 got',
          () => p.source.stats.holesRefilled,
          (n) => n === 1,
          { timeoutMs: 20_000 },
        );
        await waitFor(
          '12:00 revised in the store',
          async () =>
            (await p.storedCount()) === 2 && p.published.some((c) => c.windowStart === T0 && c.trades === 3),
          Boolean,
          { timeoutMs: 20_000 },
        );
        return p.stop();
      })();
      srv.record(PAIR, [whileDown]);
      const second = await (async () => {
        const p = await startRun(file, srv, 'revise', T0 + 2 * MIN + 40_000, retrySoon);
        await waitFor(
          'the refill',
          () => p.trades().map((t) => t.tradeId),
          (ids) => ids.includes('1004'),
          {
            timeoutMs: 20_000,
          },
        );
        // The hole said by the stored minutes is asked for again (after the refill, at the connector's next tick).
        await waitFor(
          'the hole asked for again',
          () => p.source.stats.holesRefilled,
          (n) => n === 1,
          {
            timeoutMs: 20_000,
          },
        );
        p.clock.t = T0 + 3 * MIN + 8_000;
        await waitFor('12:02', () => p.published.some((c) => c.windowStart === T0 + 2 * MIN), Boolean, {
          timeoutMs: 20_000,
        });
        return p.stop();
      })();
      assert.deepEqual(
        first.trades.map((t) => t.tradeId).sort(),
        ['1001', '1002', '1003'],
        'the first process got all three',
      );
      assert.deepEqual(
        second.trades.map((t) => t.tradeId),
        ['1004'],
        'the restarted one publishes 1002 no more',
      );
      assert.equal(second.stored.find((c) => c.windowStart === T0)?.trades, 3, '12:00 counts 1002 once');
    } finally {
      await srv.close();
    }
  });
});

/** 12:00 traded and closed: 1001-1003 streamed, 1004's frame lost; the clock past 12:01 + grace; 12:00 stored. */
async function firstMinute(p: RunProcess, srv: KrakenServer): Promise<void> {
  await waitFor(
    'subscribed',
    () => p.source.subscribed,
    (s) => s.includes(PAIR),
    { timeoutMs: 20_000 },
  );
  srv.publish(PAIR, [early]);
  srv.publish(PAIR, lastSecond);
  srv.record(PAIR, [unseen]);
  await waitFor(
    '1001-1003',
    () => p.trades().length,
    (n) => n === 3,
    { timeoutMs: 20_000 },
  );
  p.clock.t = T0 + MIN + 8_000; // watermark 12:01:06: closes 12:00 (grace 5 s)
  await waitFor(
    '12:00 stored',
    () => p.storedCount(),
    (n) => n === 1,
    { timeoutMs: 20_000 },
  );
}

interface RunProcess {
  clock: { t: number };
  source: KrakenWsSource;
  published: Candle[];
  trades(): Trade[];
  storedCount(): Promise<number>;
  stop(): Promise<{ published: Candle[]; dead: DeadLetter[]; stored: Candle[]; trades: Trade[] }>;
}

/**
 * One `cryptocast run --source live` process on the store `file`, as the command assembles it: a fresh in-process bus,
 * the monitor storing the candles it reads, a resume from what the store holds, a Kraken connector on `srv` whose
 * clock (its watermarks) starts at `now` and moves when the test says.
 */
async function startRun(
  file: string,
  srv: KrakenServer,
  latePolicy: LatePolicy,
  now: number,
  sourceOptions: Partial<KrakenWsOptions> = {},
): Promise<RunProcess> {
  const url = `duckdb:${file}`;
  const candlesTable = await openCandlesTable(url);
  const candleFirstEmissions = await openCandleFirstEmissionsTable(url);
  const errorsStore = await openErrorsStore(url);
  const bus = new InProcessBus();
  const monitor = new MonitorService(bus, errorsStore, {
    clock: 'event',
    candles: candlesTable,
    candleFirstEmissions,
  });
  await monitor.start();
  const onTrades = await collectValues<TradeEvent>(bus, topics.trades, 'test-trades');
  const onCandles = await collectValues<Candle>(bus, topics.candles, 'test-candles');
  const resume = await resumeFromStore(candlesTable, [PAIR], now, latePolicy, () => {}, candleFirstEmissions);
  const clock = { t: now };
  const source = new KrakenWsSource({
    pairs: [PAIR],
    wsUrl: srv.wsUrl,
    restUrl: srv.restUrl,
    ...FAST_CONNECTOR,
    restMinIntervalMs: 0,
    now: () => clock.t,
    ...sourceOptions,
  });
  const pipeline: MarketDataPipeline = await startMarketDataPipeline({
    bus,
    sources: [source],
    config: { interval: '1m', graceMs: 5_000, latePolicy },
    ...resume,
  });
  const trades = () => onTrades.filter((e): e is Trade => e.type === 'trade');
  return {
    clock,
    source,
    published: onCandles,
    trades,
    storedCount: async () => (await candlesTable.range(PAIR, T0, T0 + 10 * MIN)).length,
    stop: async () => {
      await pipeline.stop();
      await monitor.caughtUp();
      await monitor.stop();
      // Where the candle service had read its bus to: this process's own offsets, not a property of the candle.
      const published = onCandles.map(({ inputOffset: _, ...c }) => c as Candle);
      const dead = (await bus.readTail<DeadLetter>(topics.dlq, 1_000)).map((r) => r.value);
      const stored = await candlesTable.range(PAIR, T0, T0 + 10 * MIN);
      await bus.close();
      await errorsStore.close();
      await candlesTable.close();
      await candleFirstEmissions.close();
      return { published, dead, stored, trades: trades() };
    },
  };
}

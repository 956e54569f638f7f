import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type MarketDataPipeline, startMarketDataPipeline } from '../../../src/app/pipeline.ts';
import type { LatePolicy } from '../../../src/candles/aggregator.ts';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../../src/candles/store/candles-table.ts';
import { resumeFromStore } from '../../../src/cli/commands/run.ts';
import { KrakenWsSource } from '../../../src/ingestion/live/kraken-ws.ts';
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

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../../src/app/pipeline.ts';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../../src/candles/store/candles-table.ts';
import { resumeFromStore } from '../../../src/cli/commands/run.ts';
import type { TradeSource } from '../../../src/ingestion/source.ts';
import { MonitorService } from '../../../src/monitoring/monitor-service.ts';
import { openErrorsStore } from '../../../src/monitoring/store/open.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { TradeEvent } from '../../../src/schemas/trade.ts';
import { MIN, T0, trade, watermark } from '../../support/factories.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * `cryptocast run` (embedded: in-process bus, DuckDB store) under `--late revise`, stopped and started again on its
 * store: a late trade for a minute the first process had already published revises it, as in a run that never
 * stopped — the restarted process's bus starts empty, so what a revision needs comes from the store.
 */
describe('cryptocast run --late revise, restarted on its store', () => {
  it('a late trade for a minute traded before the restart revises it: the same candles as an uninterrupted run, nothing dead-lettered', async () => {
    const lastTrade = trade({ ts: T0 + 3 * MIN + 59_500, price: 113, qty: 0.4 });
    const before: TradeEvent[] = [
      trade({ ts: T0 + 20_000, price: 100, qty: 0.1 }),
      trade({ ts: T0 + 50_000, price: 110, qty: 0.2 }),
      watermark(T0 + MIN + 6_000), // closes 00:00
      trade({ ts: T0 + MIN + 10_000, price: 111, qty: 0.3 }),
      trade({ ts: T0 + MIN + 40_000, price: 112, qty: 0.1 }),
      watermark(T0 + 2 * MIN + 6_000), // closes 00:01
      watermark(T0 + 3 * MIN + 6_000), // fills 00:02 at 112
      lastTrade,
      watermark(T0 + 4 * MIN + 6_000), // closes 00:03: nothing open when the first process stops
    ];
    const after: TradeEvent[] = [
      // The restart's REST refill starts a second before the resume point (00:04): 00:03's last trade again, which a
      // run that never stopped knows by its id, and the restarted one by the stored 00:03's `closingTradeIds`.
      lastTrade,
      // Late for 00:00, before its first trade: a new open, and a VWAP of the exact sums.
      trade({ ts: T0 + 10_000, price: 90, qty: 0.7 }),
      // Late for 00:01, after its last trade: a new close, carried by the filled 00:02.
      trade({ ts: T0 + MIN + 55_000, price: 95, qty: 0.1 }),
      trade({ ts: T0 + 4 * MIN + 30_000, price: 120, qty: 0.2 }),
      watermark(T0 + 5 * MIN + 6_000), // closes 00:04
    ];
    const once = await runOnStore(join(scratchDir('cc-revise-once-'), 'cryptocast.duckdb'), [before, after]);
    assert.equal(once.dead.length, 0, 'the uninterrupted run revises both late trades');
    assert.equal(once.published.filter((c) => c.revision > 0).length, 3, '00:00, 00:01 and the filled 00:02');

    const file = join(scratchDir('cc-revise-restart-'), 'cryptocast.duckdb');
    const first = await runOnStore(file, [before]);
    const second = await runOnStore(file, [after]);
    assert.deepEqual(
      [...first.dead, ...second.dead].map((d) => d.reason),
      [],
      'nothing dead-lettered that the uninterrupted run took',
    );
    assert.deepEqual(
      [...first.published, ...second.published],
      once.published,
      'the candles published, revisions included',
    );
    assert.deepEqual(second.stored, once.stored, 'the stored candles (each minute: its latest revision)');
    assert.deepEqual(
      second.firstEmissions,
      once.published.filter((c) => c.revision === 0),
      'and each minute as first emitted (what a restart seeds the feature stage with)',
    );
    assert.deepEqual(
      { duplicates: second.duplicates, replayed: second.replayed },
      { duplicates: 1, replayed: 0 },
      "00:03's last trade, delivered again by the refill, is not taken twice: the trades stage knows it by its id",
    );
  });
});

/**
 * One `cryptocast run` process on the store `file`, as the command assembles it: a fresh in-process bus, the monitor
 * storing the candles it reads, and a resume from what the store holds; each batch of `events` is one source's whole
 * output (the live connectors and their REST refill, in the order they deliver).
 */
async function runOnStore(
  file: string,
  batches: readonly (readonly TradeEvent[])[],
): Promise<{
  published: Candle[];
  dead: DeadLetter[];
  stored: Candle[];
  firstEmissions: Candle[];
  replayed: number;
  duplicates: number;
}> {
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
  const resume = await resumeFromStore(
    candlesTable,
    ['BTC/USD'],
    T0 + 6 * MIN,
    'revise',
    () => {},
    candleFirstEmissions,
  );
  const source: TradeSource = {
    name: 'test-ws',
    run: async (sink) => {
      for (const batch of batches)
        for (const e of batch) {
          if (e.type === 'trade') await sink.trades([e]);
          else await sink.watermark(e);
        }
    },
  };
  const pipeline = await startMarketDataPipeline({
    bus,
    sources: [source],
    config: { interval: '1m', graceMs: 5_000, latePolicy: 'revise' },
    ...resume,
  });
  await pipeline.finished;
  await pipeline.stop();
  await monitor.caughtUp();
  await monitor.stop();
  const published = (await bus.readTail<Candle>(topics.candles, 1_000)).map((r) => {
    // Where the candle service had read its bus to: this process's own offsets, not a property of the candle.
    const { inputOffset: _, ...c } = r.value;
    return c as Candle;
  });
  const dead = (await bus.readTail<DeadLetter>(topics.dlq, 1_000)).map((r) => r.value);
  const stored = await candlesTable.range('BTC/USD', T0, T0 + 10 * MIN);
  const firstEmissions = await candleFirstEmissions.range('BTC/USD', T0, T0 + 10 * MIN);
  await bus.close();
  await errorsStore.close();
  await candlesTable.close();
  await candleFirstEmissions.close();
  const { replayed } = pipeline.candles.stats;
  return { published, dead, stored, firstEmissions, replayed, duplicates: pipeline.trades.stats.duplicates };
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CandleAggregator, type PairSeed } from '../../../src/candles/aggregator.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { TradeEvent } from '../../../src/schemas/trade.ts';
import { MIN, T0, trade, watermark } from '../../support/factories.ts';

/** Reference by definition: group in-order trades by minute, first/last by time, fill the gaps. */
function referenceCandles(events: TradeEvent[]): string[] {
  const byPair = new Map<string, TradeEvent[]>();
  for (const e of events) if (e.type === 'trade') byPair.set(e.pair, [...(byPair.get(e.pair) ?? []), e]);
  const out: string[] = [];
  for (const [pair, ts] of [...byPair].sort()) {
    const minutes = new Map<number, { o: number; h: number; l: number; c: number; v: number; n: number }>();
    for (const t of ts) {
      if (t.type !== 'trade') continue;
      const m = Math.floor(t.tradeTs / MIN) * MIN;
      const w = minutes.get(m);
      if (w === undefined) minutes.set(m, { o: t.price, h: t.price, l: t.price, c: t.price, v: t.qty, n: 1 });
      else {
        w.h = Math.max(w.h, t.price);
        w.l = Math.min(w.l, t.price);
        w.c = t.price;
        w.v += t.qty;
        w.n++;
      }
    }
    const starts = [...minutes.keys()].sort((a, b) => a - b);
    let prevClose = 0;
    for (let m = starts[0]!; m <= starts[starts.length - 1]!; m += MIN) {
      const w = minutes.get(m);
      if (w) {
        out.push(`${pair} ${m} ${w.o} ${w.h} ${w.l} ${w.c} ${w.v} ${w.n} false`);
        prevClose = w.c;
      } else out.push(`${pair} ${m} ${prevClose} ${prevClose} ${prevClose} ${prevClose} 0 0 true`);
    }
  }
  return out;
}

const key = (c: Candle) =>
  `${c.pair} ${c.windowStart} ${c.open} ${c.high} ${c.low} ${c.close} ${c.volume} ${c.trades} ${c.filled}`;

/** In-order trades for 1-3 pairs over up to 20 minutes, integer prices and quantities (exact sums). */
const inOrderTrades = fc
  .array(
    fc.record({
      dt: fc.integer({ min: 0, max: 3 * MIN }),
      pair: fc.constantFrom('BTC/USD', 'ETH/USD', 'SOL/USD'),
      price: fc.integer({ min: 1, max: 1000 }),
      qty: fc.integer({ min: 1, max: 9 }),
    }),
    { minLength: 1, maxLength: 200 },
  )
  .map((rows) => {
    let ts = T0;
    return rows.map((r) => {
      ts += r.dt;
      return trade({ ts, price: r.price, qty: r.qty, pair: r.pair });
    });
  });

describe('CandleAggregator: properties', () => {
  it('in-order trades give exactly the by-definition candles (every minute, filled gaps)', () => {
    fc.assert(
      fc.property(inOrderTrades, (trades) => {
        const got: Candle[] = [];
        const agg = new CandleAggregator({
          candle: (c) => got.push(c),
          late: () => assert.fail('no late trade expected'),
        });
        for (const t of trades) agg.onTrade(t);
        agg.flush();
        // Filling happens per pair between its own trades; the reference does the same.
        const sorted = got.map(key).sort();
        assert.deepEqual(sorted, referenceCandles(trades).sort());
      }),
      { numRuns: 300 },
    );
  });

  it('disorder within the grace period changes nothing', () => {
    fc.assert(
      fc.property(inOrderTrades, fc.integer({ min: 0, max: 2 ** 31 }), (trades, seed) => {
        const graceMs = 10_000;
        // Shuffle locally: each trade may be delayed by up to the grace period (in arrival order).
        let s = seed;
        const rand = () => {
          s = (s * 1103515245 + 12345) & 0x7fffffff;
          return s / 0x7fffffff;
        };
        const arrival = trades
          .map((t, i) => ({ t, at: t.tradeTs + rand() * graceMs * 0.999, i }))
          .sort((a, b) => a.at - b.at || a.i - b.i)
          .map((x) => x.t);
        const run = (xs: typeof trades) => {
          const got: Candle[] = [];
          const agg = new CandleAggregator(
            { candle: (c) => got.push(c), late: () => assert.fail('nothing is late') },
            { graceMs },
          );
          for (const t of xs) agg.onTrade(t);
          agg.flush();
          return got.map(key).sort();
        };
        // Ties in trade time may legitimately swap open/close; compare only when times are distinct.
        fc.pre(new Set(trades.map((t) => t.pair + t.tradeTs)).size === trades.length);
        assert.deepEqual(run(arrival), run(trades));
      }),
      { numRuns: 300 },
    );
  });

  it('revise: whatever arrives late, the latest revision of every minute is the by-definition candle', () => {
    fc.assert(
      fc.property(
        inOrderTrades,
        fc.array(fc.integer({ min: 0, max: 6 * MIN }), { minLength: 200, maxLength: 200 }),
        (trades, delays) => {
          // Ties in trade time may legitimately swap open/close; compare only when times are distinct.
          fc.pre(new Set(trades.map((t) => t.pair + t.tradeTs)).size === trades.length);
          // Any trade but a pair's first may arrive up to 6 minutes late (the grid starts at the first trade).
          const firsts = new Set<string>();
          const arrival = trades
            .map((t, i) => {
              const first = !firsts.has(t.pair);
              firsts.add(t.pair);
              return { t, at: t.tradeTs + (first ? 0 : delays[i]!), i };
            })
            .sort((a, b) => a.at - b.at || a.i - b.i)
            .map((x) => x.t);
          const got: Candle[] = [];
          const agg = new CandleAggregator(
            {
              candle: (c) => got.push(c),
              late: (t, reason) => assert.fail(`dead-lettered ${t.tradeTs}: ${reason}`),
            },
            { latePolicy: 'revise', revisionHorizon: 1_000 },
          );
          for (const t of arrival) agg.onTrade(t);
          agg.flush();
          const latest = new Map<string, Candle>();
          for (const c of got) latest.set(`${c.pair} ${c.windowStart}`, c);
          assert.deepEqual([...latest.values()].map(key).sort(), referenceCandles(trades).sort());
        },
      ),
      { numRuns: 300 },
    );
  });

  for (const policy of ['dlq', 'revise'] as const)
    it(`${policy}: a crash at any point + restart from the committed position + read-back gives the uninterrupted output, and every late trade is dead-lettered`, () => {
      const events = fc
        .array(
          fc.oneof(
            {
              weight: 8,
              arbitrary: fc.record({
                kind: fc.constant('t' as const),
                dt: fc.integer({ min: -20_000, max: 2 * MIN }),
                pair: fc.constantFrom('BTC/USD', 'ETH/USD'),
                price: fc.integer({ min: 1, max: 99 }),
              }),
            },
            {
              weight: 1,
              arbitrary: fc.record({
                kind: fc.constant('w' as const),
                dt: fc.integer({ min: 0, max: 3 * MIN }),
                pair: fc.constantFrom('BTC/USD', 'ETH/USD'),
                price: fc.constant(0),
              }),
            },
          ),
          { minLength: 10, maxLength: 150, size: 'max' },
        )
        .map((rows) => {
          let clock = T0;
          return rows.map((r): TradeEvent => {
            if (r.kind === 'w') {
              clock += r.dt;
              return watermark(clock, { pair: r.pair });
            }
            clock = Math.max(clock, clock + r.dt);
            return trade({ ts: Math.max(T0, clock + Math.min(0, r.dt)), price: r.price, pair: r.pair });
          });
        });
      let suppressedRuns = 0;
      let rebuiltRuns = 0;
      fc.assert(
        fc.property(
          events,
          fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 40 }),
          fc.integer({ min: 0, max: 1_000_000 }),
          fc.constant(policy),
          (evs, batchSizes, crashSeed, latePolicy) => {
            const feed = (agg: CandleAggregator, e: TradeEvent, pos: number) =>
              e.type === 'trade' ? agg.onTrade(e, pos) : agg.onWatermark(e, pos);
            const opts = { graceMs: 15_000, latePolicy, revisionHorizon: 5 };

            const full: Candle[] = [];
            const fullDead = new Set<string>();
            const a = new CandleAggregator(
              { candle: (c) => full.push(c), late: (t) => fullDead.add(t.tradeId) },
              opts,
            );
            for (let i = 0; i < evs.length; i++) feed(a, evs[i]!, i);

            // Run 1: batches, commit after each batch, crash after `crashAt` events.
            const crashAt = 1 + (crashSeed % evs.length);
            const published: Candle[] = [];
            const dead = new Set<string>();
            const b = new CandleAggregator(
              { candle: (c) => published.push(c), late: (t) => dead.add(t.tradeId) },
              opts,
            );
            let committed = 0;
            let pos = 0;
            let bi = 0;
            while (pos < crashAt) {
              const end = Math.min(crashAt, pos + batchSizes[bi++ % batchSizes.length]!);
              for (; pos < end; pos++) feed(b, evs[pos]!, pos);
              if (pos < crashAt || crashAt === evs.length) committed = b.lowestNeededPosition() ?? pos;
            }

            // Run 2: fresh state, seeded from what was published, re-reading from the committed position.
            // What comes after the crash is appended after the restart (inputEnd: the last position read before it).
            const after: Candle[] = [];
            const deadAfter: string[] = [];
            const c = new CandleAggregator(
              { candle: (x) => after.push(x), late: (t) => deadAfter.push(t.tradeId) },
              opts,
            );
            const seeds = new Map<
              string,
              PairSeed & { published: [number, number][]; latest: Map<number, Candle>; retained: Candle[] }
            >();
            for (const x of published) {
              const s = seeds.get(x.pair) ?? {
                exchange: x.exchange,
                pair: x.pair,
                lastWindowStart: x.windowStart,
                lastClose: x.close,
                published: [],
                inputEnd: crashAt - 1,
                latest: new Map<number, Candle>(),
                retained: [],
              };
              s.published.push([x.windowStart, x.revision]);
              // The latest revision of every window (revise: the windows taken back for revisions, the last one's close).
              if (x.revision >= (s.latest.get(x.windowStart)?.revision ?? -1)) s.latest.set(x.windowStart, x);
              seeds.set(x.pair, s);
            }
            for (const s of seeds.values()) {
              s.retained = [...s.latest.values()].sort((p, q) => p.windowStart - q.windowStart);
              s.lastWindowStart = s.retained.at(-1)!.windowStart;
              s.lastClose = s.retained.at(-1)!.close;
            }
            for (const s of seeds.values()) c.seed(s);
            for (let i = committed; i < evs.length; i++) feed(c, evs[i]!, i);

            const keyR = (x: Candle) => key(x) + ' r' + x.revision;
            assert.deepEqual([...published, ...after].map(keyR), full.map(keyR));
            // Dead letters are at least once: every trade the uninterrupted run dead-letters is dead-lettered before the
            // crash or after the restart, and the restart dead-letters only such trades (none that is in a candle).
            for (const id of deadAfter) dead.add(id);
            assert.deepEqual(
              [...fullDead].filter((id) => !dead.has(id)),
              [],
              'late trades that vanished',
            );
            assert.deepEqual(
              deadAfter.filter((id) => !fullDead.has(id)),
              [],
              'dead-lettered, yet in a candle',
            );
            if (c.stats.suppressed > 0 || c.stats.replayed > 0) suppressedRuns++;
            if (committed < crashAt) rebuiltRuns++;
          },
        ),
        { numRuns: 1000 },
      );
      // The property is only meaningful if restarts really re-read data and rebuild published windows.
      assert.ok(rebuiltRuns > 100, `only ${rebuiltRuns} runs re-read committed data`);
      assert.ok(suppressedRuns > 100, `only ${suppressedRuns} runs re-read a published window`);
    });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CandleService } from '../../../src/candles/candle-service.ts';
import { type CandleInput, TechnicalFeatures } from '../../../src/features/technical.ts';
import { readTradeFile } from '../../../src/ingestion/files/readers.ts';
import { TradeService } from '../../../src/ingestion/trade-service.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { type Trade, TradeSchema, tradeAheadOfReceipt } from '../../../src/schemas/trade.ts';
import { KRAKEN_REST_TRADES } from '../../support/data.ts';

const MIN = 60_000;

/** Candles of random walks with extremes injected at random minutes (1e308, 1e-300, huge volumes, zero ranges). */
const candlesWithExtremes = fc
  .record({
    n: fc.integer({ min: 70, max: 220 }),
    seed: fc.integer(),
    extremes: fc.array(
      fc.record({
        at: fc.nat(),
        field: fc.constantFrom('close', 'high', 'low', 'volume', 'flat'),
        value: fc.constantFrom(1e308, 1.7e308, 1e-300, 5e-324, 1e154, 1e200, 0),
      }),
      { maxLength: 6 },
    ),
  })
  .map(({ n, seed, extremes }) => {
    let x = 30_000 + (seed % 1000);
    let r = seed;
    const rand = () => {
      r = (r * 1103515245 + 12345) & 0x7fffffff;
      return r / 0x7fffffff;
    };
    const out: CandleInput[] = [];
    for (let i = 0; i < n; i++) {
      const open = x;
      x *= Math.exp((rand() - 0.5) * 0.004);
      const close = x;
      out.push({
        pair: 'BTC/USD',
        windowStart: i * MIN,
        windowEnd: (i + 1) * MIN,
        open,
        high: Math.max(open, close) * (1 + rand() * 0.001),
        low: Math.min(open, close) * (1 - rand() * 0.001),
        close,
        volume: rand() * 10,
        trades: Math.floor(rand() * 50),
      });
    }
    for (const e of extremes) {
      const c = out[e.at % n]!;
      if (e.field === 'flat') Object.assign(c, { open: c.close, high: c.close, low: c.close, volume: 0 });
      else if (e.field === 'volume') c.volume = e.value;
      else if (e.field === 'close')
        Object.assign(c, { close: e.value, high: Math.max(c.high, e.value), low: Math.min(c.low, e.value) });
      else if (e.field === 'high') c.high = Math.max(e.value, c.open, c.close);
      else c.low = Math.min(e.value, c.open, c.close) || c.low;
    }
    return out;
  });

describe('absurd values never become features', () => {
  it('property: no vector with a NaN or ±Infinity value is ever ready; every extreme candle is refused or harmless', () => {
    fc.assert(
      fc.property(candlesWithExtremes, (candles) => {
        const engine = new TechnicalFeatures();
        for (const c of candles) {
          if (engine.problem(c) !== undefined) continue;
          const v = engine.update(c);
          if (v.ready)
            for (const x of v.values) assert.ok(x === null || Number.isFinite(x), `ready vector with ${x}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a candle priced 1e308 among normal ones is refused with the reason and leaves the indicators untouched', () => {
    const base = (i: number, close: number): CandleInput => ({
      pair: 'BTC/USD',
      windowStart: i * MIN,
      windowEnd: (i + 1) * MIN,
      open: close,
      high: close,
      low: close,
      close,
      volume: 1,
      trades: 1,
    });
    const clean = new TechnicalFeatures();
    const dirty = new TechnicalFeatures();
    const out: { clean: (number | null)[][]; dirty: (number | null)[][] } = { clean: [], dirty: [] };
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const c = base(i, 30_000 + Math.sin(i) * 50);
      out.clean.push(clean.update(c).values);
      if (i === 80) {
        const absurd = { ...base(i, 1e308), windowStart: i * MIN, windowEnd: (i + 1) * MIN };
        const why = dirty.problem(absurd);
        assert.match(why ?? '', /above the recent median|not a plausible notional/);
        refused++;
      }
      assert.equal(dirty.problem(c), undefined);
      out.dirty.push(dirty.update(c).values);
    }
    assert.equal(refused, 1);
    assert.deepEqual(out.dirty, out.clean);
  });

  it('refuses a candle whose open, high or low is absurd though its close is plausible, candle after candle', () => {
    const engine = new TechnicalFeatures();
    const candle = (i: number, o: Partial<Record<'open' | 'high' | 'low', number>> = {}) => ({
      pair: 'BTC/USD',
      windowStart: i * MIN,
      windowEnd: (i + 1) * MIN,
      open: 30_000,
      high: 30_010,
      low: 29_990,
      close: 30_000,
      volume: 1,
      trades: 1,
      ...o,
    });
    for (let i = 0; i < 10; i++) {
      assert.equal(engine.problem(candle(i)), undefined); // as callers do: judged, then used
      engine.update(candle(i));
    }
    // Each field in turn, then a clean candle: the reused array of the other prices must not keep a stale value.
    const cases = [{ high: 3e9 }, { low: 3 }, { open: 3e10, high: 3e10 }] as const;
    for (const [k, bad] of cases.entries()) {
      const i = 10 + 2 * k;
      assert.match(engine.problem(candle(i, bad)) ?? '', /(above|below) the recent median/);
      assert.equal(engine.problem(candle(i + 1)), undefined);
      engine.update(candle(i + 1));
    }
  });

  it('an extreme volume poisons the rolling sums only while it is in the window', () => {
    const engine = new TechnicalFeatures();
    let lastReady: (number | null)[] | undefined;
    for (let i = 0; i < 300; i++) {
      const close = 100 + (i % 7);
      const v = engine.update({
        pair: 'X/USD',
        windowStart: i * MIN,
        windowEnd: (i + 1) * MIN,
        open: close,
        high: close + 1,
        low: close - 1,
        close,
        volume: i === 100 ? 1e200 : 1 + (i % 3),
        trades: 3,
      });
      if (v.ready) lastReady = v.values;
    }
    assert.ok(lastReady, 'vectors are ready again after the extreme left every window');
    assert.ok(lastReady!.every((x) => x === null || Number.isFinite(x)));
  });
});

describe('an absurd trade on the stream (trades service → candles)', () => {
  /** `input` through the trades service into the candle service (in process): the candles, the dead letters. */
  const throughServices = async (input: Trade[], recording: Trade[]) => {
    const bus = new InProcessBus();
    const candles = new CandleService({ bus });
    await candles.start();
    const svc = new TradeService(bus);
    const sink = svc.sink('test');
    for (let i = 0; i < input.length; i += 100) await sink.trades(input.slice(i, i + 100));
    await sink.watermark({
      v: 1,
      type: 'watermark',
      exchange: recording[0]!.exchange,
      pair: recording[0]!.pair,
      ts: input.at(-1)!.tradeTs + 10 * MIN,
      final: true,
    });
    await candles.caughtUp();
    const out = (await bus.readTail<Candle>(topics.candles, 10_000)).map((r) => r.value);
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value);
    await candles.stop();
    return { out, dead, stats: svc.stats };
  };

  it('a trade at 1e308 is dead-lettered with its reason; the candles equal those of the clean recording', async () => {
    const trades: Trade[] = [];
    for await (const b of readTradeFile(KRAKEN_REST_TRADES)) trades.push(...b.trades);
    const absurd: Trade = { ...trades[500]!, price: 1e308, tradeId: '999999999' };
    const run = (input: Trade[]) => throughServices(input, trades);
    const clean = await run(trades);
    const dirty = await run([...trades.slice(0, 501), absurd, ...trades.slice(501)]);
    assert.deepEqual(dirty.out, clean.out);
    assert.equal(dirty.dead.length, 1);
    assert.equal(dirty.dead[0]!.kind, 'implausible');
    assert.match(dirty.dead[0]!.reason, /outside \[1e-12, 1000000000\]/);
    assert.equal(JSON.parse(dirty.dead[0]!.payload).price, 1e308);
    assert.equal(dirty.stats.implausible, 1);
    assert.equal(dirty.stats.rejects, 1);
  });

  it('trades of size 1e300 at a plausible price are dead-lettered; the candles equal those of the clean recording', async () => {
    // Each is finite, and so is its notional; two in one minute make the candle's volume sum Infinity, and a candle
    // that cannot be published would stop the candles partition for good.
    const trades: Trade[] = [];
    for await (const b of readTradeFile(KRAKEN_REST_TRADES)) trades.push(...b.trades);
    const huge = [0, 1].map((k): Trade => ({ ...trades[500 + k]!, qty: 1e300, tradeId: `99999999${k}` }));
    const run = (input: Trade[]) => throughServices(input, trades);
    const clean = await run(trades);
    const dirty = await run([...trades.slice(0, 502), ...huge, ...trades.slice(502)]);
    assert.ok(clean.out.length > 10);
    assert.deepEqual(dirty.out, clean.out);
    assert.deepEqual(
      dirty.dead.map((d) => [d.kind, d.reason]),
      huge.map(() => ['implausible', 'size 1e+300 is outside (0, 1000000000000000]']),
    );
  });

  // Bounded: without the check this run does not end (a month of minutes filled, then every trade refused as late).
  it('a trade stamped a month after it was received is dead-lettered; the candles equal those of the clean recording', {
    timeout: 120_000,
  }, async () => {
    const trades: Trade[] = [];
    for await (const b of readTradeFile(KRAKEN_REST_TRADES)) trades.push(...b.trades);
    const t = trades[500]!;
    // A garbled time: without the check the candle stage filled a month of empty minutes at once (43,200 candles)
    // and refused every real trade after it as late.
    const future: Trade = { ...t, tradeTs: t.receivedTs + 30 * 86_400_000, tradeId: '999999998' };
    const run = (input: Trade[]) => throughServices(input, trades);
    const clean = await run(trades);
    const dirty = await run([...trades.slice(0, 501), future, ...trades.slice(501)]);
    assert.ok(clean.out.length > 10);
    assert.deepEqual(dirty.out, clean.out);
    assert.equal(dirty.dead.length, 1);
    assert.equal(dirty.dead[0]!.kind, 'implausible');
    assert.match(dirty.dead[0]!.reason, /is 2592000 s after it was received/);
    // Within the clock skew allowed: a plausible trade.
    assert.equal(
      tradeAheadOfReceipt({ tradeTs: t.receivedTs + 59_000, receivedTs: t.receivedTs }),
      undefined,
    );
  });

  it('the trades schema refuses what the bounds refuse, so a consumer dead-letters it from any producer', () => {
    const t = {
      v: 1,
      type: 'trade',
      exchange: 'kraken',
      pair: 'BTC/USD',
      side: 'buy',
      tradeId: '1',
      tradeTs: 1.7e12,
      receivedTs: 1.7e12,
    };
    assert.equal(TradeSchema.safeParse({ ...t, price: 100, qty: 1 }).success, true);
    for (const bad of [
      { price: 100, qty: 1e300 },
      { price: 1e10, qty: 1 },
      { price: 1e-13, qty: 1 },
      { price: 100, qty: 0 },
    ])
      assert.equal(TradeSchema.safeParse({ ...t, ...bad }).success, false, JSON.stringify(bad));
  });
});

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CandleAggregator } from '../../../src/candles/aggregator.ts';
import { ERR } from '../../../src/core/errors.ts';
import { TradeFileError } from '../../../src/ingestion/files/readers.ts';
import { type ReplayOptions, type ReplayProgress, ReplaySource } from '../../../src/ingestion/replay.ts';
import type { SourceSink } from '../../../src/ingestion/source.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { type DeadLetter, DeadLetterSchema } from '../../../src/schemas/dlq.ts';
import { type Trade, type Watermark, WatermarkSchema } from '../../../src/schemas/trade.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV } from '../../support/data.ts';
import { coded } from '../../support/errors.ts';
import { scratchDir } from '../../support/scratch.ts';

/** Every sink call, in order, with its batch boundaries. */
type Call =
  | { kind: 'trades'; trades: readonly Trade[] }
  | { kind: 'watermark'; wm: Watermark }
  | { kind: 'reject'; dl: DeadLetter };

class LogSink implements SourceSink {
  readonly calls: Call[] = [];
  onTrades?: (n: number) => void;
  trades(trades: readonly Trade[]): void {
    this.calls.push({ kind: 'trades', trades });
    this.onTrades?.(trades.length);
  }
  watermark(wm: Watermark): void {
    this.calls.push({ kind: 'watermark', wm });
  }
  reject(dl: DeadLetter): void {
    this.calls.push({ kind: 'reject', dl });
  }
  get received(): Trade[] {
    return this.calls.flatMap((c) => (c.kind === 'trades' ? c.trades : []));
  }
  get watermarks(): Watermark[] {
    return this.calls.flatMap((c) => (c.kind === 'watermark' ? [c.wm] : []));
  }
  get dead(): DeadLetter[] {
    return this.calls.flatMap((c) => (c.kind === 'reject' ? [c.dl] : []));
  }
  /** One entry per trade, watermark and reject: batch boundaries erased. */
  flat(): string[] {
    return this.calls.flatMap((c) => {
      if (c.kind === 'trades') return c.trades.map((t) => `t ${t.pair} ${t.tradeId} ${t.tradeTs}`);
      if (c.kind === 'watermark') return [`w ${c.wm.pair} ${c.wm.ts}${c.wm.final ? ' final' : ''}`];
      return [`r ${c.dl.origin} ${c.dl.reason}`];
    });
  }
  /** The calls with their batch boundaries, for exact comparison (a dead letter's wall-clock `ts` aside). */
  exact(): string {
    return JSON.stringify(
      this.calls.map((c) => (c.kind === 'reject' ? { ...c, dl: { ...c.dl, ts: 0 } } : c)),
    );
  }
}

async function replay(options: ReplayOptions, sink = new LogSink(), signal = new AbortController().signal) {
  await new ReplaySource(options).run(sink, signal);
  return sink;
}

const tmp = scratchDir('cc-replay-');
function tmpFile(name: string, content: string | Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}
const captureLines = () => gunzipSync(readFileSync(BINANCE_CAPTURE)).toString('utf8').trim().split('\n');
const eventOf = (line: string) =>
  JSON.parse(line.slice(line.indexOf(' ') + 1)).data as { T: number; t: number };
const MINUTE = 60_000;

describe('ReplaySource: determinism and speed', () => {
  it('is deterministic at max speed: two runs make exactly the same sink calls', async () => {
    const a = await replay({ files: [BINANCE_CAPTURE, KRAKEN_2019_CSV], speed: 'max' });
    const b = await replay({ files: [BINANCE_CAPTURE, KRAKEN_2019_CSV], speed: 'max' });
    assert.equal(a.received.length, 34419 + 2671);
    assert.equal(b.exact(), a.exact());
  });

  it('speed 50 gives the same trades and watermarks in the same order as max, paced (lower bound on time)', async () => {
    const limit = 3000;
    const max = await replay({ files: [BINANCE_CAPTURE], speed: 'max', limit });
    const t0 = performance.now();
    const paced = await replay({ files: [BINANCE_CAPTURE], speed: 50, limit });
    const elapsed = performance.now() - t0;
    assert.equal(paced.received.length, limit);
    assert.deepEqual(paced.flat(), max.flat());
    assert.ok(
      max.watermarks.some((w) => !w.final),
      'the slice crosses minutes: watermarks are compared too',
    );
    const span = max.received.at(-1)!.tradeTs - max.received[0]!.tradeTs;
    assert.ok(span > 30_000, `a slice of ${span} ms of recording`);
    // Deliveries may be one tick (50 ms) early, never more; a generous bound for a loaded machine's timers.
    assert.ok(elapsed >= (span / 50) * 0.8, `paced: ${elapsed.toFixed(0)} ms for ${span / 50} ms of replay`);
    const batches = (s: LogSink) => s.calls.filter((c) => c.kind === 'trades').length;
    assert.ok(batches(paced) > batches(max), 'a paced replay delivers in ticks');
  });

  it('a paced replay is deterministic too: the same batches on every run', async () => {
    const a = await replay({ files: [BINANCE_CAPTURE], speed: 200, limit: 2000 });
    const b = await replay({ files: [BINANCE_CAPTURE], speed: 200, limit: 2000 });
    assert.equal(b.exact(), a.exact());
  });
});

describe('ReplaySource: watermarks', () => {
  it('gives every seen pair a watermark at each minute crossing of the replay clock, at the clock, then finals', async () => {
    const sink = await replay({ files: [BINANCE_CAPTURE], speed: 'max' });
    // Expected from the raw file: the first trade of each new minute (by the running maximum of trade time).
    const times = captureLines().map((l) => eventOf(l).T);
    const crossings: number[] = [];
    let clock = times[0]!;
    for (const t of times) {
      const now = Math.max(clock, t);
      if (Math.floor(now / MINUTE) !== Math.floor(clock / MINUTE)) crossings.push(now);
      clock = now;
    }
    assert.equal(crossings.length, 11, '23:55 … 00:05');
    const expected = crossings.flatMap((ts) => [`w BTC/USDT ${ts}`, `w ETH/USDT ${ts}`]);
    expected.push(`w BTC/USDT ${clock} final`, `w ETH/USDT ${clock} final`);
    const flat = sink.flat();
    assert.deepEqual(
      flat.filter((e) => e.startsWith('w ')),
      expected,
    );
    for (const w of sink.watermarks) assert.ok(WatermarkSchema.safeParse(w).success);
    // Each crossing's watermarks come right before the trade that crossed, after every earlier trade.
    for (const ts of crossings) {
      const i = flat.indexOf(`w BTC/USDT ${ts}`);
      assert.equal(flat[i + 1], `w ETH/USDT ${ts}`);
      assert.ok(flat[i + 2]!.endsWith(` ${ts}`), flat[i + 2]);
      assert.ok(flat.slice(0, i).every((e) => !e.startsWith('t ') || Number(e.split(' ')[3]) < ts));
    }
    assert.equal(flat.at(-3)!.split(' ')[3], String(clock), 'finals after the last trade');
  });

  it('closes an idle pair’s minutes downstream while another pair trades (candles on the real aggregator)', async () => {
    const T = Date.UTC(2024, 7, 9, 0, 0);
    const s = (sec: number) => T + sec * 1000;
    const csv = [
      'time,price,qty,pair',
      `${s(10)},100,1,AAA/USD`,
      `${s(20)},5,1,BBB/USD`,
      `${s(90)},6,1,BBB/USD`,
      `${s(160)},7,1,BBB/USD`,
      `${s(230)},8,1,BBB/USD`,
    ].join('\n');
    const candles: { c: Candle; afterFinal: boolean }[] = [];
    let finalSeen = false;
    const agg = new CandleAggregator(
      { candle: (c) => candles.push({ c, afterFinal: finalSeen }), late: () => {} },
      { graceMs: 5_000 },
    );
    const sink = new LogSink();
    const log = { trades: sink.trades.bind(sink), watermark: sink.watermark.bind(sink) };
    sink.trades = (ts) => {
      log.trades(ts);
      for (const t of ts) agg.onTrade(t);
    };
    sink.watermark = (w) => {
      log.watermark(w);
      if (w.final) finalSeen = true;
      agg.onWatermark(w);
    };
    await replay({ files: [tmpFile('two-pairs.csv', csv)] }, sink);
    assert.deepEqual(
      sink.watermarks.filter((w) => w.pair === 'AAA/USD').map((w) => [w.ts - T, w.final ?? false]),
      [
        [90_000, false],
        [160_000, false],
        [230_000, false],
        [230_000, true],
      ],
    );
    assert.deepEqual(
      candles
        .filter((x) => x.c.pair === 'AAA/USD')
        .map((x) => [(x.c.windowStart - T) / MINUTE, x.c.filled, x.c.close, x.afterFinal]),
      [
        [0, false, 100, false],
        [1, true, 100, false],
        [2, true, 100, false],
      ],
      'AAA traded once, yet its idle minutes closed on the replay clock, before the end',
    );
  });
});

describe('ReplaySource: merging files', () => {
  it('orders two recordings by trade time; a pair ends with its file, without watermarks from the other', async () => {
    const sink = await replay({ files: [BINANCE_CAPTURE, KRAKEN_2019_CSV] });
    const trades = sink.received;
    assert.equal(trades.length, 34419 + 2671);
    for (let i = 1; i < trades.length; i++)
      assert.ok(trades[i]!.tradeTs >= trades[i - 1]!.tradeTs, `order at ${i}`);
    assert.equal(trades[0]!.pair, 'BTC/USD', 'the 2019 file comes first although listed second');
    const flat = sink.flat();
    const btcUsdFinal = flat.indexOf('w BTC/USD 1561942791213 final');
    const first2024 = flat.findIndex((e) => e.startsWith('t BTC/USDT'));
    assert.ok(btcUsdFinal >= 0 && btcUsdFinal < first2024, 'BTC/USD is finished before 2024 starts');
    assert.ok(sink.watermarks.filter((w) => w.pair === 'BTC/USD').every((w) => w.ts < Date.UTC(2020, 0, 1)));
    assert.deepEqual(
      sink.watermarks.filter((w) => w.final).map((w) => w.pair),
      ['BTC/USD', 'BTC/USDT', 'ETH/USDT'],
    );
  });

  it('interleaves files that overlap, by trade time, stably (first listed file first on ties)', async () => {
    const lines = captureLines().slice(0, 4000);
    const isBtc = (l: string) => l.includes('"s":"BTCUSDT"');
    const files = [
      tmpFile('btc-ws.txt', lines.filter(isBtc).join('\n')),
      tmpFile('eth-ws.txt.gz', gzipSync(lines.filter((l) => !isBtc(l)).join('\n'))),
    ];
    const sink = await replay({ files, format: 'binance-ws-capture' });
    const rank = (l: string) => (isBtc(l) ? 0 : 1);
    const expected = lines
      .map((l, i) => ({ l, i }))
      .sort((a, b) => eventOf(a.l).T - eventOf(b.l).T || rank(a.l) - rank(b.l) || a.i - b.i)
      .map(({ l }) => eventOf(l).t);
    const ties = lines.filter(
      (l, i) => i > 0 && eventOf(l).T === eventOf(lines[i - 1]!).T && rank(l) !== rank(lines[i - 1]!),
    );
    assert.ok(ties.length > 0, 'BTC and ETH trades at the same millisecond: ties are exercised');
    assert.deepEqual(
      sink.received.map((t) => Number(t.tradeId)),
      expected,
    );
  });
});

describe('ReplaySource: two venues of one pair', () => {
  // The 2019 Kraken hour is BTC/USD of kraken, 00:00:03 → 00:59:51; a generic CSV's BTC/USD is of exchange `file`.
  const otherVenue = (name: string, iso: string) =>
    tmpFile(name, `timestamp,price,qty,pair\n${iso},10800.5,0.1,BTC/USD\n`);

  it('refuses two exchanges’ recordings of one pair at the same times, naming both, the pair and the time', async () => {
    const files = [KRAKEN_2019_CSV, otherVenue('overlapping.csv', '2019-07-01T00:30:00.000Z')];
    await assert.rejects(
      replay({ files }),
      coded(
        ERR.INPUT,
        /overlapping\.csv: BTC\/USD of file overlaps in time BTC\/USD of kraken \(kraken_btcusd_trades_2019-07-01T00\.csv\), from 2019-07-01T00:30:00\.000Z/,
      ),
    );
  });

  it('plays them one after the other in time as one series, as from one venue', async () => {
    const files = [KRAKEN_2019_CSV, otherVenue('later.csv', '2019-07-01T02:00:00.000Z')];
    const sink = await replay({ files });
    assert.equal(sink.received.length, 2671 + 1);
    assert.deepEqual(
      sink.watermarks.filter((w) => w.final).map((w) => `${w.exchange} ${w.pair}`),
      ['kraken BTC/USD', 'file BTC/USD'],
    );
  });
});

describe('ReplaySource: rejects, limit, abort, progress, configuration', () => {
  it('sends each bad row to the dead-letter path (origin replay:<file>, kind parse) and goes on', async () => {
    const lines = captureLines().slice(0, 5);
    lines.splice(2, 0, 'garbage');
    lines.splice(4, 0, lines[3]!.replace('"p":"', '"p":"-'));
    const sink = await replay({
      files: [tmpFile('bad-ws.txt', lines.join('\n'))],
      format: 'binance-ws-capture',
    });
    assert.equal(sink.received.length, 5);
    assert.deepEqual(
      sink.dead.map((d) => [d.origin, d.kind, d.payload, d.offset]),
      [
        ['replay:bad-ws.txt', 'parse', 'garbage', '3'],
        ['replay:bad-ws.txt', 'parse', lines[4], '5'],
      ],
    );
    assert.match(sink.dead[0]!.reason, /^line 3: expected "<receive time ns> <JSON message>"/);
    assert.match(sink.dead[1]!.reason, /^line 5: p: not a decimal number/);
    for (const d of sink.dead) assert.ok(DeadLetterSchema.safeParse(d).success);
  });

  it('stops after `limit` trades, and the pairs seen get their final watermarks', async () => {
    const sink = await replay({ files: [BINANCE_CAPTURE], limit: 100, batchSize: 30 });
    assert.equal(sink.received.length, 100);
    assert.deepEqual(
      sink.calls.filter((c) => c.kind === 'trades').map((c) => c.trades.length),
      [30, 30, 30, 10],
    );
    const last = sink.received.at(-1)!.tradeTs;
    assert.deepEqual(sink.flat().slice(-2), [`w BTC/USDT ${last} final`, `w ETH/USDT ${last} final`]);
  });

  it('an abort stops the replay promptly, even while pacing, without final watermarks', async () => {
    const ac = new AbortController();
    const sink = new LogSink();
    sink.onTrades = () => ac.abort();
    const t0 = performance.now();
    await replay({ files: [BINANCE_CAPTURE], speed: 1 }, sink, ac.signal); // 11 minutes of recording
    assert.ok(performance.now() - t0 < 2_000);
    assert.equal(sink.calls.filter((c) => c.kind === 'trades').length, 1);
    assert.equal(sink.watermarks.length, 0);
  });

  it('reports progress: trades, rejects, replay time, first and last trade time', async () => {
    const seen: ReplayProgress[] = [];
    await replay({ files: [BINANCE_CAPTURE], onProgress: (p) => seen.push(p) });
    assert.ok(seen.length > 30);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]!.trades >= seen[i - 1]!.trades);
      assert.ok(seen[i]!.replayTs >= seen[i - 1]!.replayTs);
    }
    assert.deepEqual(seen.at(-1), {
      trades: 34419,
      rejects: 0,
      replayTs: 1723161905800,
      firstTs: 1723161255342,
      lastTs: 1723161905800,
    });
  });

  it('pairs: plays only those pairs’ trades (run --pairs), the others left out at the source and counted', async () => {
    const all = await replay({ files: [BINANCE_CAPTURE] });
    const seen: ReplayProgress[] = [];
    const eth = await replay({
      files: [BINANCE_CAPTURE],
      pairs: ['ETH/USDT'],
      onProgress: (p) => seen.push(p),
    });
    const ethOfAll = all.received.filter((t) => t.pair === 'ETH/USDT');
    assert.ok(ethOfAll.length > 0 && ethOfAll.length < all.received.length);
    assert.deepEqual(eth.received, ethOfAll);
    assert.deepEqual(new Set(eth.watermarks.map((w) => w.pair)), new Set(['ETH/USDT']));
    assert.deepEqual(seen.at(-1)?.leftOut, { 'BTC/USDT': all.received.length - ethOfAll.length });
    const none = await replay({ files: [BINANCE_CAPTURE], pairs: ['BTC/USD'] });
    assert.deepEqual(none.calls, []);
  });

  it('refuses unusable configuration clearly', async () => {
    for (const speed of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 'fast' as 'max'])
      assert.throws(() => new ReplaySource({ files: [KRAKEN_2019_CSV], speed }), coded(ERR.INPUT, /speed/));
    assert.throws(() => new ReplaySource({ files: [] }), coded(ERR.INPUT, /no file/));
    assert.throws(() => new ReplaySource({ files: [KRAKEN_2019_CSV], limit: 0 }), coded(ERR.INPUT, /limit/));
    assert.throws(
      () => new ReplaySource({ files: [KRAKEN_2019_CSV], pair: 'bitcoin' }),
      coded(ERR.PAIR, /--pair: not a pair: "bitcoin"/),
    );
    await assert.rejects(replay({ files: [join(tmp, 'missing.csv')] }), TradeFileError);
  });
});

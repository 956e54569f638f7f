import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectTradeFileFormat, readTradeFile } from '../../../src/ingestion/files/readers.ts';
import { epochToMs, parseTime, secondsTextToMs } from '../../../src/ingestion/files/time.ts';
import { ReplaySource } from '../../../src/ingestion/replay.ts';
import type { Trade } from '../../../src/schemas/trade.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV, KRAKEN_REST_TRADES } from '../../support/data.ts';
import { RecordingSink } from '../../support/sink.ts';

async function all(path: string): Promise<{ trades: Trade[]; rejects: number }> {
  const trades: Trade[] = [];
  let rejects = 0;
  for await (const b of readTradeFile(path)) {
    trades.push(...b.trades);
    rejects += b.rejects.length;
  }
  return { trades, rejects };
}

const count = (ts: Trade[], f: (t: Trade) => boolean) => ts.filter(f).length;

describe('recorded trade files (the real recordings in shared/data)', () => {
  it('detects every format', async () => {
    assert.equal(await detectTradeFileFormat(KRAKEN_REST_TRADES), 'kraken-rest-json');
    assert.equal(await detectTradeFileFormat(BINANCE_CAPTURE), 'binance-ws-capture');
    assert.equal(await detectTradeFileFormat(KRAKEN_2019_CSV), 'kraken-csv');
  });

  it('Kraken REST JSON: 1,000 trades, ids 10218208..10219207, 578 buys / 422 sells, exact times', async () => {
    const { trades, rejects } = await all(KRAKEN_REST_TRADES);
    assert.equal(rejects, 0);
    assert.equal(trades.length, 1000);
    assert.deepEqual(
      trades.map((t) => Number(t.tradeId)),
      Array.from({ length: 1000 }, (_, i) => 10218208 + i),
    );
    assert.equal(
      count(trades, (t) => t.side === 'buy'),
      578,
    );
    assert.equal(trades[0]!.pair, 'BTC/USDT');
    assert.equal(trades[999]!.tradeTs, 1762820035982); // time 1762820035.9822779 (the `last` cursor)
  });

  it('Binance capture: 19,904 BTCUSDT + 14,515 ETHUSDT, contiguous ids, taker side from m', async () => {
    const { trades, rejects } = await all(BINANCE_CAPTURE);
    assert.equal(rejects, 0);
    for (const [pair, n] of [
      ['BTC/USDT', 19904],
      ['ETH/USDT', 14515],
    ] as const) {
      const ids = trades
        .filter((t) => t.pair === pair)
        .map((t) => Number(t.tradeId))
        .sort((a, b) => a - b);
      assert.equal(ids.length, n);
      assert.equal(ids[ids.length - 1]! - ids[0]!, n - 1, `${pair} ids contiguous`);
    }
    const first = trades[0]!;
    assert.deepEqual(
      [first.tradeId, first.price, first.qty, first.side, first.tradeTs, first.receivedTs],
      ['3735683259', 61837.63, 0.02, 'sell', 1723161255342, 1723161254087],
    );
  });

  it('Kraken 2019 CSV: 2,672 trades, 1,549 buys / 1,123 sells, deterministic ids', async () => {
    const { trades } = await all(KRAKEN_2019_CSV);
    assert.equal(trades.length, 2672);
    assert.equal(
      count(trades, (t) => t.side === 'buy'),
      1549,
    );
    assert.equal(new Set(trades.map((t) => t.tradeId)).size, 2672);
    assert.equal((await all(KRAKEN_2019_CSV)).trades[7]!.tradeId, trades[7]!.tradeId);
  });

  it('converts times exactly, never rounding a trade into the next minute', () => {
    assert.equal(secondsTextToMs('1762820039.9999999'), 1762820039999);
    assert.equal(secondsTextToMs('1762820040'), 1762820040000);
    assert.equal(epochToMs('1723161255342'), 1723161255342);
    assert.equal(epochToMs('1723161255342123'), 1723161255342); // µs (Binance public data from 2025)
    assert.equal(epochToMs('1723161255'), 1723161255000);
    assert.equal(parseTime('2024-08-09T00:00:00+02:00'), Date.UTC(2024, 7, 8, 22));
    assert.equal(parseTime('2024-08-09 00:00:00'), undefined, 'no zone: ambiguous, refused');
  });
});

describe('ReplaySource', () => {
  it('is deterministic: speed max and a paced speed emit the same trades in the same order', async () => {
    const a = new RecordingSink();
    await new ReplaySource({ files: [KRAKEN_REST_TRADES], speed: 'max' }).run(
      a,
      new AbortController().signal,
    );
    const b = new RecordingSink();
    // 7 h of trades at 20,000× ≈ 1.2 s
    const t0 = performance.now();
    await new ReplaySource({ files: [KRAKEN_REST_TRADES], speed: 20_000 }).run(
      b,
      new AbortController().signal,
    );
    const elapsed = performance.now() - t0;
    assert.deepEqual(
      b.received.map((t) => t.tradeId),
      a.received.map((t) => t.tradeId),
    );
    const span = a.received.at(-1)!.tradeTs - a.received[0]!.tradeTs;
    assert.ok(
      elapsed >= (span / 20_000) * 0.9,
      `paced: ${elapsed.toFixed(0)} ms for ${span / 20_000} ms of replay`,
    );
  });

  it('merges files by trade time and sends per-file minute watermarks, then finals per pair', async () => {
    const sink = new RecordingSink();
    const events: string[] = [];
    const orig = { trades: sink.trades.bind(sink), watermark: sink.watermark.bind(sink) };
    sink.trades = (ts) => {
      events.push(...ts.map((t) => `t ${t.pair} ${t.tradeTs}`));
      orig.trades(ts);
    };
    sink.watermark = (w) => {
      events.push(`w ${w.pair} ${w.ts}${w.final ? ' final' : ''}`);
      orig.watermark(w);
    };
    await new ReplaySource({ files: [BINANCE_CAPTURE, KRAKEN_2019_CSV], speed: 'max' }).run(
      sink,
      new AbortController().signal,
    );
    const ts = sink.received.map((t) => t.tradeTs);
    assert.ok(ts[0]! < Date.UTC(2020, 0, 1), '2019 file first');
    const finals = sink.watermarks.filter((w) => w.final).map((w) => w.pair);
    assert.deepEqual(finals.sort(), ['BTC/USD', 'BTC/USDT', 'ETH/USDT']);
    // The 2019 pair is finished before the 2024 file starts: it never gets a 2024 watermark (no fill for years).
    assert.ok(sink.watermarks.filter((w) => w.pair === 'BTC/USD').every((w) => w.ts < Date.UTC(2020, 0, 1)));
    // Every minute crossing of the Binance file gives both of its pairs a watermark.
    const ethMinutes = sink.watermarks.filter((w) => w.pair === 'ETH/USDT' && !w.final).length;
    assert.ok(ethMinutes >= 10, `${ethMinutes} ETH watermarks`);
    assert.equal(sink.received.length, 34419 + 2672);
  });

  it('rejects bad speeds and missing files clearly', () => {
    assert.throws(() => new ReplaySource({ files: [KRAKEN_2019_CSV], speed: 0 }), /speed/);
    assert.throws(() => new ReplaySource({ files: [] }), /no file/);
  });
});

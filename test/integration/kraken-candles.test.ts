import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * Correctness bar of issue 2: aggregating Kraken's own REST trade recording with `cryptocast candles` must
 * reproduce Kraken's own 1-minute OHLC (same pair, same span) for every minute the trades cover.
 */
const DIR = join(SHARED_DATA, 'btc-eth-trade-ticks/kraken-rest-xbtusdt-2025-11-10');
const run = promisify(execFile);

interface Row {
  open: number;
  high: number;
  low: number;
  close: number;
  vwap: number;
  volume: number;
  count: number;
}

describe('cryptocast candles vs Kraken OHLC (real recording)', async () => {
  const out = join(scratchDir('cc-'), 'candles.csv');
  await run('./bin/cryptocast', [
    'candles',
    '--input',
    join(DIR, 'public_Trades_XBTUSDT_1000.json'),
    '--output',
    out,
  ]);
  const ours = new Map<number, Row & { filled: boolean }>();
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'pair,windowStart,windowEnd,open,high,low,close,volume,trades,vwap,filled');
  for (const l of lines.slice(1)) {
    const [, ws, , o, h, lo, c, v, n, vw, f] = l.split(',');
    ours.set(Number(ws) / 1000, {
      open: +o!,
      high: +h!,
      low: +lo!,
      close: +c!,
      volume: +v!,
      count: +n!,
      vwap: +vw!,
      filled: f === 'true',
    });
  }
  const doc = JSON.parse(readFileSync(join(DIR, 'public_OHLC_XBTUSDT_interval1.json'), 'utf8'));
  const kraken = new Map<number, Row>();
  for (const [t, o, h, l, c, vw, v, n] of doc.result.XBTUSDT) {
    kraken.set(t, { open: +o, high: +h, low: +l, close: +c, vwap: +vw, volume: +v, count: n });
  }
  const minutes = [...ours.keys()].sort((a, b) => a - b);
  const first = minutes[0]!;
  const last = minutes[minutes.length - 1]!;

  it('covers every minute from the first to the last trade, one candle each', () => {
    assert.equal(minutes.length, (last - first) / 60 + 1);
    assert.equal(minutes.length, 411);
  });

  it('equals Kraken O/H/L/C, volume and trade count for every fully covered minute', () => {
    const mismatches: string[] = [];
    for (const m of minutes.slice(1)) {
      const a = ours.get(m)!;
      const k = kraken.get(m);
      assert.ok(k, `Kraken has minute ${m}`);
      for (const f of ['open', 'high', 'low', 'close', 'volume', 'count'] as const) {
        if (a[f] !== k[f])
          mismatches.push(`${new Date(m * 1000).toISOString()} ${f}: ours ${a[f]} kraken ${k[f]}`);
      }
      // Kraken truncates VWAP down to the price tick (0.1) and reports "0.0" for empty minutes.
      if (k.count > 0)
        assert.equal(Math.floor(a.vwap * 10 + 1e-9) / 10, k.vwap, `vwap ${m}: ${a.vwap} vs ${k.vwap}`);
      else assert.ok(a.filled && k.vwap === 0, `empty minute ${m} is filled`);
    }
    assert.deepEqual(mismatches, []);
  });

  it('differs only in the first minute, which the 1,000-trade recording covers partially', () => {
    const a = ours.get(first)!;
    const k = kraken.get(first)!;
    // The recording starts at 17:23:53.97: Kraken's candle also holds the trades before that.
    assert.ok(a.count < k.count, `first minute: ours ${a.count} trades, Kraken ${k.count}`);
    assert.equal(a.close, k.close, 'the close (last trade of the minute) is in the recording');
  });
});

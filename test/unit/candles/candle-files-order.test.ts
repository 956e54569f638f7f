import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { candleFiles } from '../../../src/candles/ohlcv-files.ts';
import { features } from '../../../src/cli/commands/features.ts';
import { scratchDir } from '../../support/scratch.ts';

/** Headerless Binance kline lines, one a minute from `startMs`. */
function klines(startMs: number, minutes: number): string {
  let text = '';
  for (let i = 0; i < minutes; i++) {
    const t = startMs + i * 60_000;
    const p = 100 + (i % 7);
    text += `${t},${p},${p + 1},${p - 1},${p},1.5,${t + 59_999},${1.5 * p},10,0.7,${0.7 * p},0\n`;
  }
  return text;
}

/**
 * `data fetch` lays its folder out as the archive does: past months as monthly files under spot/monthly/…, the current
 * month as daily files under spot/daily/…. A folder's files were read in path order, daily before monthly, so
 * `features --candles` (and `train`/`evaluate --candles`) met the latest days first and rejected every earlier month
 * as "not after the previous one": half the candles gone, exit 0.
 */
it('a data-fetch folder (monthly past months, daily current month) is read in time order', async () => {
  const dir = scratchDir('cc-candle-files-');
  const daily = join(dir, 'spot/daily/klines/BTCUSDT/1m');
  const monthly = join(dir, 'spot/monthly/klines/BTCUSDT/1m');
  mkdirSync(daily, { recursive: true });
  mkdirSync(monthly, { recursive: true });
  const jan31 = Date.UTC(2022, 0, 31);
  const feb1 = Date.UTC(2022, 1, 1);
  // The January file holds its last day only: enough to tell the order, small enough for a unit test.
  writeFileSync(join(monthly, 'BTCUSDT-1m-2022-01.csv'), klines(jan31, 1_440));
  writeFileSync(join(daily, 'BTCUSDT-1m-2022-02-01.csv'), klines(feb1, 1_440));
  writeFileSync(join(daily, 'BTCUSDT-1m-2022-02-02.csv'), klines(feb1 + 86_400_000, 1_440));

  assert.deepEqual(
    candleFiles(dir).map((f) => f.slice(dir.length + 1)),
    [
      'spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2022-01.csv',
      'spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2022-02-01.csv',
      'spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2022-02-02.csv',
    ],
  );
  const out = join(dir, 'features.csv');
  await features({ candles: dir, output: out, exchange: 'file' });
  const rows = readFileSync(out, 'utf8').trim().split('\n').slice(1);
  assert.equal(rows.length, 3 * 1_440, 'every minute of the three days');
  assert.equal(rows[0]!.split(',')[1], String(jan31));
});

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { candles } from '../../../src/cli/commands/candles.ts';
import { features } from '../../../src/cli/commands/features.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * `--pair` is "the pair, when the file does not say" (--help). On a file that names its pairs it relabelled every row:
 * `candles --pair BTC/USD` over BTC/USD and BTC/USDT trades made one series of both venues' prices (exit 0, nothing
 * rejected: the prices are close), and `features --pair` merged the series of a multi-pair candle file. A row whose
 * pair the file names and --pair contradicts is now rejected with why; the rows of the named pair are kept.
 */
it('candles --pair on trades that name another pair: those rows are rejected, not relabelled into the series', async () => {
  const dir = scratchDir('cc-pair-option-');
  const trades = join(dir, 't.csv');
  const t0 = Date.UTC(2025, 10, 10, 12);
  let text = 'exchange,pair,tradeId,tradeTs,price,qty,side\n';
  for (let i = 0; i < 10; i++) {
    text += `kraken,BTC/USD,${2 * i},${t0 + i * 1000},100000,1,buy\n`;
    text += `kraken,BTC/USDT,${2 * i + 1},${t0 + i * 1000 + 500},101000,1,buy\n`;
  }
  writeFileSync(trades, text);
  const output = join(dir, 'c.csv');
  await candles({ input: trades, format: 'auto', interval: '1m', pair: 'BTC/USD', grace: '5s', output });
  const rows = readFileSync(output, 'utf8').trim().split('\n').slice(1);
  assert.equal(rows.length, 1);
  const [pair, , , open, high, low, close, volume] = rows[0]!.split(',');
  assert.deepEqual(
    [pair, open, high, low, close, volume],
    ['BTC/USD', '100000', '100000', '100000', '100000', '10'],
  );
});

it('features --pair on candles that name their pairs: only that pair, the others rejected', async () => {
  const dir = scratchDir('cc-pair-option-');
  const file = join(dir, 'mixed.csv');
  const t0 = Date.UTC(2022, 4, 10);
  let text = 'pair,windowStart,windowEnd,open,high,low,close,volume,trades,vwap,filled\n';
  for (let i = 0; i < 100; i++) {
    const s = t0 + i * 60_000;
    text += `BTC/USDT,${s},${s + 60_000},30100,30110,30090,30105,1,3,30100,false\n`;
    text += `BTC/USD,${s},${s + 60_000},30000,30010,29990,30005,1,3,30000,false\n`;
  }
  writeFileSync(file, text);
  const output = join(dir, 'f.csv');
  await features({ candles: file, output, pair: 'BTC/USD', exchange: 'file' });
  const rows = readFileSync(output, 'utf8').trim().split('\n').slice(1);
  assert.equal(rows.length, 100);
  assert.ok(rows.every((r) => r.startsWith('BTC/USD,') && r.split(',')[3] === '30005'));
});

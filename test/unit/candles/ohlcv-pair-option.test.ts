import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { unzipSync } from 'fflate';
import { type OhlcvBatch, readOhlcv } from '../../../src/candles/ohlcv-files.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * `--pair` names the pair of a file that does not say (`features|evaluate|backtest --pair`, "pair, when the file does
 * not say"). A Binance kline file says it in its name: given a folder of BTCUSDT and ETHUSDT days with `--pair
 * BTC/USDT`, the ETH candles were relabelled BTC/USDT and mixed into its series (`backtest` went on and scored them,
 * a few dead-lettered as "14× below the median"). As a row whose pair column names another pair, a file whose name
 * does is left out, with one reject saying why.
 */
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');

async function read(path: string, pair: string): Promise<OhlcvBatch> {
  const all: OhlcvBatch = { candles: [], rejects: [] };
  for await (const b of readOhlcv(path, { pair })) {
    all.candles.push(...b.candles);
    all.rejects.push(...b.rejects);
  }
  return all;
}

describe('--pair and a file whose name says another pair', () => {
  for (const ext of ['zip', 'csv'] as const)
    it(`a folder of BTCUSDT and ETHUSDT ${ext} files, --pair BTC/USDT: only the BTC candles, one reject for the ETH file`, async () => {
      const dir = scratchDir('cc-pair-option-');
      for (const [symbol, day] of [
        ['BTCUSDT', '2022-01-01'],
        ['ETHUSDT', '2022-01-01'],
      ] as const) {
        const zip = join(BINANCE, symbol, `${symbol}-1m-${day}.zip`);
        const name = `${symbol}-1m-${day}`;
        if (ext === 'zip') copyFileSync(zip, join(dir, `${name}.zip`));
        else writeFileSync(join(dir, `${name}.csv`), Object.values(unzipSync(readFileSync(zip)))[0]!);
      }
      const got = await read(dir, 'BTC/USDT');
      assert.equal(got.candles.length, 1440);
      assert.ok(
        got.candles.every((c) => c.pair === 'BTC/USDT' && c.close > 40_000),
        'only BTC prices in the BTC/USDT series',
      );
      assert.deepEqual(got.rejects, [
        {
          file: `ETHUSDT-1m-2022-01-01.${ext}`,
          line: 0,
          reason:
            'the file name says ETH/USDT, not --pair BTC/USDT: left out (--pair is for files without a pair; leave it out to read each file as its name says)',
          otherPair: 'ETH/USDT',
        },
      ]);
    });

  it('a file whose name says the same pair, or nothing, takes --pair as before', async () => {
    const dir = scratchDir('cc-pair-option-');
    copyFileSync(
      join(BINANCE, 'BTCUSDT', 'BTCUSDT-1m-2022-01-01.zip'),
      join(dir, 'BTCUSDT-1m-2022-01-01.zip'),
    );
    copyFileSync(join(BINANCE, 'ETHUSDT', 'ETHUSDT-1m-2022-01-01.zip'), join(dir, 'eth-day.zip'));
    const got = await read(dir, 'BTC-USDT');
    assert.equal(got.candles.length, 2880);
    assert.deepEqual(got.rejects, []);
  });
});

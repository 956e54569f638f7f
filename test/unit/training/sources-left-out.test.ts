import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { ERR } from '../../../src/core/errors.ts';
import { datasetFromCandles, requireCandles, sourceProblemLines } from '../../../src/training/sources.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { coded } from '../../support/errors.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * `train`/`evaluate`/`backtest --candles FOLDER`: a whole file left out (its name says another pair than --pair, a zip
 * without a CSV inside) was counted among the rejected *rows*: "… 2 candles rejected in all", and when every file was
 * of another pair the refusal said "all 2 rows were rejected" — of rows nobody read. Files left out are now said to be
 * files, each on a line of its own, and the refusal names the pairs the files are of.
 */
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const HORIZON = 5 * 60_000;

/** Two days of ETHUSDT (and, with `btc`, one of BTCUSDT), linked into one folder. */
function folder(btc: boolean): string {
  const dir = join(scratchDir('cc-sources-left-out-'), 'klines');
  mkdirSync(dir);
  const days: [string, string][] = [
    ['ETHUSDT', '2022-03-01'],
    ['ETHUSDT', '2022-03-02'],
  ];
  if (btc) days.push(['BTCUSDT', '2022-03-01']);
  for (const [symbol, day] of days) {
    const name = `${symbol}-1m-${day}.zip`;
    symlinkSync(join(BINANCE, symbol, name), join(dir, name));
  }
  return dir;
}

describe('candle files left out whole are said to be files, not rejected candles', () => {
  it('--pair BTC/USDT on a folder with two ETHUSDT days: 1,440 candles, two "left out" lines, no row rejected', async () => {
    const source = await datasetFromCandles(folder(true), { horizonMs: HORIZON, pair: 'BTC/USDT' });
    assert.equal(source.candles, 1_440);
    assert.equal(source.rejects.length, 0);
    assert.deepEqual(
      source.leftOut.map((f) => [f.file, f.otherPair]),
      [
        ['ETHUSDT-1m-2022-03-01.zip', 'ETH/USDT'],
        ['ETHUSDT-1m-2022-03-02.zip', 'ETH/USDT'],
      ],
    );
    assert.deepEqual(sourceProblemLines(source), [
      'left out ETHUSDT-1m-2022-03-01.zip: its name says ETH/USDT, not --pair',
      'left out ETHUSDT-1m-2022-03-02.zip: its name says ETH/USDT, not --pair',
      '(--pair is for files without a pair; leave it out to read each file as its name says)',
    ]);
  });

  it('every file of another pair: the refusal names the pair, not "all 2 rows were rejected"', async () => {
    const dir = folder(false);
    const source = await datasetFromCandles(dir, { horizonMs: HORIZON, pair: 'BTC/USDT' });
    assert.throws(
      () => requireCandles(source, dir, 'BTC/USDT'),
      coded(
        ERR.INPUT,
        /^no candles of --pair BTC\/USDT in .*: all 2 files are of ETH\/USDT \(leave --pair out/,
      ),
    );
  });

  // h126's review: a folder with an empty file beside the other pair's said "its one file is of ETH/USDT" (of two), and
  // 425 files of the other pair were 425 lines.
  it('a folder with an empty file too: the refusal counts the files it read', async () => {
    const dir = folder(false);
    writeFileSync(join(dir, 'empty.csv'), 'timestamp,open,high,low,close,volume\n');
    const source = await datasetFromCandles(dir, { horizonMs: HORIZON, pair: 'BTC/USDT' });
    assert.throws(
      () => requireCandles(source, dir, 'BTC/USDT'),
      coded(ERR.INPUT, /: 2 of its 3 files \(the others have no rows\) are of ETH\/USDT/),
    );
  });

  it('many files of another pair: five lines and a count, not a line each', () => {
    const leftOut = Array.from({ length: 425 }, (_, i) => ({
      file: `ETHUSDT-1m-${i}.zip`,
      reason: 'the file name says ETH/USDT, not --pair BTC/USDT: left out',
      otherPair: 'ETH/USDT',
    }));
    const lines = sourceProblemLines({ leftOut, rejects: [], files: 850 } as never);
    assert.equal(lines.length, 7, lines.join('\n'));
    assert.equal(lines[5], '… 425 files left out in all (425 of ETH/USDT)');
  });

  it('a zip without a CSV inside is a file left out with its reason, and alone it is refused as such', async () => {
    const dir = scratchDir('cc-sources-left-out-zip-');
    const zip = join(dir, 'BTCUSDT-1m-2022-03-01.zip');
    writeFileSync(zip, zipSync({ 'README.txt': new TextEncoder().encode('no candles here\n') }));
    const source = await datasetFromCandles(zip, { horizonMs: HORIZON });
    assert.equal(source.rejects.length, 0);
    assert.deepEqual(sourceProblemLines(source), [
      'left out BTCUSDT-1m-2022-03-01.zip: zip without a CSV inside',
    ]);
    assert.throws(
      () => requireCandles(source, zip),
      coded(ERR.INPUT, /^no candles in .*: its one file was left out \(zip without a CSV inside\)$/),
    );
  });

  it('rows rejected are still counted as rows (a CSV without a pair and no --pair)', async () => {
    const dir = scratchDir('cc-sources-left-out-rows-');
    const csv = join(dir, 'c.csv');
    writeFileSync(
      csv,
      'timestamp,open,high,low,close,volume\n1646092800000,1,1,1,1,1\n1646092860000,1,1,1,1,1\n',
    );
    const source = await datasetFromCandles(csv, { horizonMs: HORIZON });
    assert.equal(source.leftOut.length, 0);
    assert.throws(() => requireCandles(source, csv), coded(ERR.INPUT, /all 2 rows were rejected \(no pair/));
  });
});

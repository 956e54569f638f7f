import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { features } from '../../../src/cli/commands/features.ts';
import { ERR } from '../../../src/core/errors.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { coded } from '../../support/errors.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * `cryptocast features --candles FOLDER --pair P` on a folder of Binance kline days of two pairs: the files of the other
 * pair are left out whole (one reject line each says so), and the summary said "2 candles rejected" — a count of
 * files called candles, as though two candles of P had been refused. It now says what happened: "2 files of other
 * pairs left out", for the CSV output and for the store (the column path, src/features/backfill.ts).
 */
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');

/** Two days of BTCUSDT and two of ETHUSDT, linked into one folder. */
function folder(): string {
  const dir = join(scratchDir('cc-features-other-pairs-'), 'klines');
  mkdirSync(dir);
  for (const symbol of ['BTCUSDT', 'ETHUSDT'])
    for (const day of ['2022-03-01', '2022-03-02']) {
      const name = `${symbol}-1m-${day}.zip`;
      symlinkSync(join(BINANCE, symbol, name), join(dir, name));
    }
  return dir;
}

/** What `features` writes on stderr while it runs. */
async function stderrOf(run: () => Promise<void>): Promise<string> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await run();
  } finally {
    process.stderr.write = write;
  }
  return stderr;
}

describe('features --pair on a folder of two pairs: the summary says files of other pairs were left out', () => {
  const candles = folder();

  it('--output: 2,880 rows of BTC/USDT, "2 files of other pairs left out", no candle rejected', async () => {
    const output = join(scratchDir('cc-features-other-pairs-out-'), 'f.csv');
    const stderr = await stderrOf(() => features({ candles, output, pair: 'BTC/USDT', exchange: 'binance' }));
    // Each left-out file has its line, as before.
    assert.equal(
      stderr.match(/^rejected ETHUSDT-1m-2022-03-0[12]\.zip.*the file name says ETH\/USDT/gm)?.length,
      2,
    );
    const summary = stderr.split('\n').find((l) => l.includes('feature rows'))!;
    assert.match(summary, /^2,880 feature rows .*; 2 files of other pairs left out$/, stderr);
    assert.doesNotMatch(summary, /candles rejected/, stderr);
  });

  it('--store (the column path): the same summary', async () => {
    const store = `duckdb:${join(scratchDir('cc-features-other-pairs-store-'), 'f.duckdb')}`;
    const stderr = await stderrOf(() => features({ candles, store, pair: 'BTC/USDT', exchange: 'binance' }));
    const summary = stderr.split('\n').find((l) => l.includes('feature rows'))!;
    assert.match(summary, /^2,880 feature rows .*; 2 files of other pairs left out$/, stderr);
    assert.doesNotMatch(summary, /candles rejected/, stderr);
  });

  it('every file of another pair: no rows, and the refusal says so (not "all 4 candles rejected")', async () => {
    const output = join(scratchDir('cc-features-other-pairs-none-'), 'f.csv');
    await stderrOf(() =>
      assert.rejects(
        features({ candles, output, pair: 'SOL/USDT', exchange: 'binance' }),
        coded(ERR.INPUT, /no feature rows from .* \(all 4 files are of other pairs than --pair SOL\/USDT\)/),
      ),
    );
    assert.equal(existsSync(output), false);
  });
});

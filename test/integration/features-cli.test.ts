import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TECHNICAL_SET } from '../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../src/features/store/duckdb.ts';
import { KRAKEN_REST_TRADES, SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';

/** `cryptocast features` on every input the architecture's CSV rule names, and as an idempotent store backfill. */
const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const cc = (args: string[]) => run(join(ROOT, 'bin/cryptocast'), args);
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02', 'BTCUSDT');

describe('cryptocast features', () => {
  const dir = scratchDir('feat-cli-');

  it('reads the candle CSV of cryptocast candles (trade counts and VWAP included)', async () => {
    await cc(['candles', '--input', KRAKEN_REST_TRADES, '--output', join(dir, 'c.csv')]);
    await cc(['features', '--candles', join(dir, 'c.csv'), '--output', join(dir, 'f.csv')]);
    const rows = readFileSync(join(dir, 'f.csv'), 'utf8').trim().split('\n');
    assert.equal(rows.length, 1 + 411);
    const header = rows[0]!.split(',');
    assert.deepEqual(header.slice(0, 5), ['pair', 'windowStart', 'windowEnd', 'close', 'ready']);
    const last = rows.at(-1)!.split(',');
    assert.equal(last[4], 'true');
    assert.notEqual(last[header.indexOf('trades_z_60m')], '', 'trade counts were read');
  });

  it('reads Binance kline zips as they come (a folder of daily archives) and any OHLCV CSV with ISO times', async () => {
    const days = join(dir, 'days');
    await run('mkdir', ['-p', days]);
    for (const d of ['01', '02', '03'])
      symlinkSync(join(BINANCE, `BTCUSDT-1m-2022-01-${d}.zip`), join(days, `BTCUSDT-1m-2022-01-${d}.zip`));
    const r = await cc(['features', '--candles', days, '--output', join(dir, 'b.csv')]);
    assert.match(r.stderr, /4,320 feature rows \(4,260 ready\)/);
    const b = readFileSync(join(dir, 'b.csv'), 'utf8').trim().split('\n');
    assert.equal(b[1]!.split(',')[0], 'BTC/USDT');
    assert.equal(b[1]!.split(',')[1], String(Date.UTC(2022, 0, 1)));
    writeFileSync(
      join(dir, 'iso.csv'),
      'Date,Open,High,Low,Close,Volume\n2024-01-01T00:00:00+00:00,10,11,9,10.5,3\n2024-01-01T00:01:00+00:00,10.5,12,10,11,2\n2024-01-01T00:02:00Z,11,11,8,9,0\n',
    );
    const iso = await cc([
      'features',
      '--candles',
      join(dir, 'iso.csv'),
      '--pair',
      'ETH-USD',
      '--output',
      join(dir, 'i.csv'),
    ]);
    assert.match(iso.stderr, /3 feature rows/);
    const bad = await cc([
      'features',
      '--candles',
      join(dir, 'iso.csv'),
      '--output',
      join(dir, 'x.csv'),
    ]).catch((e) => e);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /\[CC_ERR_INPUT\]/);
    assert.match(bad.stderr, /no pair: add a pair\/symbol column or pass --pair/);
  });

  it('joins point-in-time news features with --news (signals usable from their availability, not publication)', async () => {
    const news = join(SHARED_DATA, 'crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz');
    const r = await cc([
      'features',
      '--candles',
      join(dir, 'days'),
      '--news',
      news,
      '--sentiment',
      'lexicon',
      '--output',
      join(dir, 'n.csv'),
    ]);
    // 5 of the 7,496 rows repeat a story (same URL or title): dropped, as the news service drops them live
    assert.match(r.stderr, /news: 7491 items \(5 duplicates dropped\) → BTC \d+.*lexicon:vader/);
    const rows = readFileSync(join(dir, 'n.csv'), 'utf8').trim().split('\n');
    const header = rows[0]!.split(',');
    assert.deepEqual(header.slice(-5), [
      'news_ewm_1h',
      'news_ewm_6h',
      'news_ewm_24h',
      'news_count_1h',
      'news_count_24h',
    ]);
    const last = rows.at(-1)!.split(',');
    assert.notEqual(last[header.indexOf('news_ewm_24h')], '', 'BTC news before 2022-01-04 is available');
    const noNews = await cc([
      'features',
      '--candles',
      join(dir, 'days'),
      '--news',
      '/nope.csv',
      '--output',
      join(dir, 'x.csv'),
    ]).catch((e) => e);
    assert.equal(noNews.code, 2);
    assert.match(noNews.stderr, /\[CC_ERR_INPUT\]/);
  });

  it('backfills a store idempotently: a second run leaves the same rows', async () => {
    const store = `duckdb:${join(dir, 'fs.duckdb')}`;
    const days = join(dir, 'days');
    await cc(['features', '--candles', days, '--store', store, '--exchange', 'binance']);
    await cc(['features', '--candles', days, '--store', store, '--exchange', 'binance']);
    const s = await DuckDbFeatureStore.open(join(dir, 'fs.duckdb'));
    try {
      assert.equal(await s.count(TECHNICAL_SET), 4320);
      const online = await s.online(TECHNICAL_SET, 'BTC/USDT', Date.UTC(2022, 0, 4));
      assert.equal(online!.vector.windowEnd, Date.UTC(2022, 0, 4));
      assert.equal(online!.ageMs, 0);
    } finally {
      await s.close();
    }
  });
});

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NEWS_COLUMNS } from '../../../src/features/news.ts';
import { newsFeaturesFrom } from '../../../src/features/news-recording.ts';
import { datasetFromCandles } from '../../../src/training/sources.ts';
import { scratchDir } from '../../support/scratch.ts';

const MIN = 60_000;
const T0 = Date.UTC(2022, 2, 1, 9, 0);

/** 200 one-minute candles of `pair` from T0, a CSV with a pair column. */
function candles(pair: string): string {
  const rows = Array.from({ length: 200 }, (_, i) => {
    const c = 40_000 + Math.sin(i) * 50 + i;
    return `${new Date(T0 + i * MIN).toISOString()},${pair},${c},${c + 5},${c - 5},${c},1`;
  });
  return ['timestamp,pair,open,high,low,close,volume', ...rows].join('\n');
}

describe('news features of two pairs of one coin (train/features --candles FOLDER --news FILE)', () => {
  it('each pair, read file after file, gets the news as available at its own closes', async () => {
    const dir = scratchDir('news-recording-pairs-');
    process.env.CRYPTOCAST_SENTIMENT_CACHE = join(dir, 'cache.jsonl');
    const newsFile = join(dir, 'news.csv');
    writeFileSync(
      newsFile,
      [
        'date;title;text;source;url',
        // available 5 minutes after publication (the recording's lag): 10:05 and 11:05, inside the candles' span
        '01-03-2022 10:00;Bitcoin rallies past 45k as ETF hopes grow;Traders cheered.;CryptoNews;https://example.com/a',
        '01-03-2022 11:00;Bitcoin miners sell reserves;Pressure mounts.;CryptoNews;https://example.com/c',
      ].join('\n'),
    );
    const folder = join(dir, 'candles');
    mkdirSync(folder);
    // Read in path order: all of BTC/USD, then all of BTC/USDT — the second pair starts over at 09:00.
    writeFileSync(join(folder, 'a-btcusd.csv'), candles('BTC/USD'));
    writeFileSync(join(folder, 'b-btcusdt.csv'), candles('BTC/USDT'));
    const news = await newsFeaturesFrom(newsFile, 'lexicon');
    const columns = ['ret_1m', ...NEWS_COLUMNS];
    // It threw "NewsFeatures.at: time went backwards" at the second pair's first candle.
    const { dataset: ds } = await datasetFromCandles(folder, { horizonMs: 5 * MIN, news, columns });
    assert.deepEqual(ds.pairs, ['BTC/USD', 'BTC/USDT']);
    const k = columns.length;
    const byPair = ds.pairs.map(() => new Map<number, number[]>());
    for (let i = 0; i < ds.n; i++)
      byPair[ds.pair[i]!]!.set(ds.windowEnd[i]!, Array.from(ds.X.subarray(i * k + 1, i * k + k)));
    assert.equal(byPair[0]!.size, byPair[1]!.size);
    assert.ok(byPair[0]!.size > 100);
    let seenBoth = 0;
    for (const [t, values] of byPair[0]!) {
      // The same coin at the same close: the same news, whichever pair was read first.
      assert.deepEqual(byPair[1]!.get(t), values, `news at ${new Date(t).toISOString()}`);
      // Point in time: the count of the last 24 h is the signals available at t (10:05 and 11:05, plus the
      // milliseconds their scoring took: the minute each becomes available is left out), nothing later.
      const at = (h: number, m: number) => Date.UTC(2022, 2, 1, h, m);
      if (t === at(10, 5) || t === at(11, 5)) continue;
      const expected = (t > at(10, 5) ? 1 : 0) + (t > at(11, 5) ? 1 : 0);
      assert.equal(values[4], expected, `news_count_24h at ${new Date(t).toISOString()}`);
      if (expected === 2) seenBoth++;
    }
    assert.ok(seenBoth > 0, 'the candles reach past the second signal');
  });
});

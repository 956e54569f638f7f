import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { newsFeaturesFrom } from '../../../src/features/news-recording.ts';
import { scratchDir } from '../../support/scratch.ts';

describe('features --news: the batch news features count each story once, as the live pipeline does', () => {
  it('a recording listing one story twice (same URL; same title from another outlet) gives one signal', async () => {
    const dir = scratchDir('news-recording-dedup-');
    process.env.CRYPTOCAST_SENTIMENT_CACHE = join(dir, 'cache.jsonl');
    const file = join(dir, 'news.csv');
    writeFileSync(
      file,
      [
        'date;title;text;source;url',
        '01-03-2022 10:00;Bitcoin rallies past 45k as ETF hopes grow;Traders cheered.;CryptoNews;https://example.com/a',
        // the same article again (a re-listing): same URL
        '01-03-2022 10:05;Bitcoin rallies past 45k as ETF hopes grow!;Traders cheered.;CryptoNews;https://example.com/a?utm_source=x',
        // a syndicated copy of it: another outlet, another URL, the same words
        '01-03-2022 10:10;Bitcoin Rallies Past 45K as ETF Hopes Grow;Traders cheered.;Other;https://other.example/b',
        // another story
        '01-03-2022 11:00;Bitcoin miners sell reserves;Pressure mounts.;CryptoNews;https://example.com/c',
      ].join('\n'),
    );
    const news = await newsFeaturesFrom(file, 'lexicon');
    // news_count_24h a day's end later: the live path (NewsService's deduplicator) has 2 items, so 2 signals
    const [, , , , count24h] = news.at('BTC', Date.UTC(2022, 2, 1, 23));
    assert.equal(count24h, 2);
  });
});

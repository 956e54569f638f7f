import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { features } from '../../../src/cli/commands/features.ts';
import { scratchDir } from '../../support/scratch.ts';

const MIN = 60_000;

/** 200 one-minute BTC/USD candles from `t0`. */
function candles(t0: number): string {
  const rows = Array.from({ length: 200 }, (_, i) => {
    const c = 40_000 + Math.sin(i) * 50 + i;
    return `${new Date(t0 + i * MIN).toISOString()},BTC/USD,${c},${c + 5},${c - 5},${c},1`;
  });
  return ['timestamp,pair,open,high,low,close,volume', ...rows].join('\n');
}

/**
 * `cryptocast features --news` on candles the recording does not cover said nothing: months after its last item the
 * EWM means still carry its last scores (a weighted mean keeps its value as it decays), so the rows look like news.
 */
describe('features --news on candles outside the news recording', () => {
  const dir = scratchDir('news-recording-span-');
  process.env.CRYPTOCAST_SENTIMENT_CACHE = join(dir, 'cache.jsonl');
  const newsFile = join(dir, 'news.csv');
  writeFileSync(
    newsFile,
    [
      'date;title;text;source;url',
      '01-03-2022 10:00;Bitcoin rallies past 45k as ETF hopes grow;Traders cheered.;CryptoNews;https://example.com/a',
      '01-03-2022 11:00;Bitcoin miners sell reserves;Pressure mounts.;CryptoNews;https://example.com/c',
    ].join('\n'),
  );

  async function run(name: string, t0: number): Promise<{ stderr: string; csv: string }> {
    const file = join(dir, `${name}.csv`);
    writeFileSync(file, candles(t0));
    const output = join(dir, `${name}-features.csv`);
    let stderr = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    }) as typeof process.stderr.write;
    try {
      await features({ candles: file, output, news: newsFile, sentiment: 'lexicon', exchange: 'test' });
    } finally {
      process.stderr.write = write;
    }
    return { stderr, csv: readFileSync(output, 'utf8') };
  }

  it('warns on stderr, saying how many rows and why, when the candles are months after the recording', async () => {
    const { stderr, csv } = await run('later', Date.UTC(2022, 5, 1, 9, 0));
    // What the warning is about: months later, the rows still carry the recording's scores.
    const rows = csv.trim().split('\n');
    const header = rows[0]!.split(',');
    assert.notEqual(rows.at(-1)!.split(',')[header.indexOf('news_ewm_24h')], '');
    assert.match(
      stderr,
      /warning: --news .*news\.csv covers 2022-03-01 to 2022-03-01, but 200 of 200 rows are outside it: 200 more than 24 h after its coin's last signal \(the EWM means still carry the last scores, up to 92 days old; the counts are 0\)/,
    );
  });

  it('warns when the candles come before the first item', async () => {
    const { stderr } = await run('earlier', Date.UTC(2022, 1, 1, 9, 0));
    assert.match(
      stderr,
      /but 200 of 200 rows are outside it: 200 more than 24 h before its coin's first signal \(news columns empty\)/,
    );
  });

  it('says nothing when the candles are within the recording (from an hour before its first item)', async () => {
    const { stderr } = await run('within', Date.UTC(2022, 2, 1, 9, 0));
    assert.doesNotMatch(stderr, /warning/);
  });
});

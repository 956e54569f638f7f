import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseFeed } from '../../../src/news/rss.ts';

const FETCHED = Date.UTC(2023, 2, 14);
const savedTz = process.env.TZ;
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

describe('RSS: a date without a zone', () => {
  it('is read as UTC whatever the machine zone', () => {
    process.env.TZ = 'Asia/Tokyo'; // Node applies a TZ change at once
    const doc = `<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>
<item><title>Bitcoin a</title><guid>a</guid><dc:date>2023-03-13T10:00:00</dc:date></item>
<item><title>Bitcoin b</title><guid>b</guid><pubDate>Mon, 13 Mar 2023 10:00:00</pubDate></item>
<item><title>Bitcoin c</title><guid>c</guid><pubDate>Mon, 13 Mar 2023 10:00:00 EST</pubDate></item>
<item><title>Bitcoin d</title><guid>d</guid><dc:date>2023-03-13T10:00:00+01:00</dc:date></item>
</channel></rss>`;
    const ok = parseFeed(doc, 'Feed', FETCHED).items.ok;
    // Before: a and b at 01:00 UTC (Tokyo's 10:00); the zoned ones were right already.
    assert.deepEqual(
      ok.map((i) => new Date(i.publishedAt).toISOString()),
      [
        '2023-03-13T10:00:00.000Z',
        '2023-03-13T10:00:00.000Z',
        '2023-03-13T15:00:00.000Z',
        '2023-03-13T09:00:00.000Z',
      ],
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NewsDeduplicator } from '../../../src/news/dedup.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';

const item = (id: string, title: string, url: string): NewsItem => ({
  v: 1,
  id,
  source: 'Cointelegraph',
  title,
  summary: '',
  url,
  publishedAt: Date.UTC(2022, 6, 1),
  fetchedAt: Date.UTC(2022, 6, 1, 0, 5),
  coins: ['BTC'],
});

describe('news dedup: a series of articles differing by their numbers is not one story', () => {
  it('keeps "Price analysis 7/1" and "7/4", "Week 25" and "Week 26"; still drops a same-title copy', () => {
    // Titles and URLs from the shared recording (crypto-news-sentiment), where 90 such articles were dropped.
    const d = new NewsDeduplicator();
    const accepted = [
      item(
        'a',
        'Price analysis 7/1: BTC, ETH, BNB, XRP',
        'https://cointelegraph.com/news/price-analysis-7-1-btc-eth',
      ),
      item(
        'b',
        'Price analysis 7/4: BTC, ETH, BNB, XRP',
        'https://cointelegraph.com/news/price-analysis-7-4-btc-eth',
      ),
      item(
        'c',
        'Crypto Listing and Delisting Announcements: Week 25',
        'https://cryptonews.com/news/week-25.htm',
      ),
      item(
        'd',
        'Crypto Listing and Delisting Announcements: Week 26',
        'https://cryptonews.com/news/week-26.htm',
      ),
      item('e', 'Price Analysis 7/4 — BTC, ETH, BNB, XRP', 'https://other.example/copy'),
    ].filter((n) => d.accept(n));
    assert.deepEqual(
      accepted.map((n) => n.id),
      ['a', 'b', 'c', 'd'],
    );
  });
});

describe('news dedup: forget (a publish that failed)', () => {
  it('an item taken back is accepted again, and then stays seen within the capacity; the others stay seen', () => {
    const d = new NewsDeduplicator(2); // 2 items' keys kept (3 keys each)
    const a = item('a', 'Bitcoin ETF inflows hit a record week', 'https://example.test/a');
    const b = item('b', 'Regulator publishes stablecoin guidance', 'https://example.test/b');
    assert.ok(d.accept(a));
    assert.ok(d.accept(b));
    d.forget(b);
    assert.equal(d.accept(a), false, 'a stays seen');
    assert.ok(d.accept(b), 'b taken back: accepted again');
    // Taken back, b's keys left their first place in the eviction order: accepted again they are the newest, not
    // evicted early as a stale first place would have them.
    assert.equal(d.accept(b), false);
    assert.equal(d.accept(a), false, 'within the capacity, a is still seen');
  });
});

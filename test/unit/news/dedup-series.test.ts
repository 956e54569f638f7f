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

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NewsService } from '../../../src/news/news-service.ts';
import type { NewsSink, NewsSource } from '../../../src/news/source.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';
import type { NewsSignal } from '../../../src/schemas/news-signal.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { LexiconBackend } from '../../../src/sentiment/lexicon.ts';
import { NewsSignalService } from '../../../src/sentiment/news-signal-service.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { settlesWithin } from '../../support/wait.ts';

const FETCHED = Date.UTC(2026, 11, 7, 8, 0);
const OUTAGE_MS = 5 * 60_000;

/**
 * `availableAt` is when a signal could first be used: fetch time + the time the item waited in the pipeline + the
 * scoring. The wait was measured from the record's timestamp on `news` — the publish that succeeded — so an item the
 * news service held while the broker was away (publish retried for minutes) was stamped available minutes before
 * the pipeline had it. One clock (Date, mocked) for the news service, the bus and the signal service.
 */
describe('news signals: the time before an item reached the news topic counts', () => {
  it('a publish retried through a 5-minute broker outage: the signal is available after it, not at the fetch', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: FETCHED });
    const inner = new InProcessBus();
    let refusals = 1;
    // The broker is away for 5 minutes: the first publish to `news` fails, the clock moves on, the retry succeeds.
    const bus = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'publish')
          return (topic: { name: string }, values: unknown[]) => {
            if (topic.name === topics.news.name && refusals > 0) {
              refusals--;
              t.mock.timers.tick(OUTAGE_MS);
              return Promise.reject(new Error('injected: broker not available'));
            }
            return target.publish(topic as never, values as never);
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const item: NewsItem = {
      v: 1,
      id: 'etf-record',
      source: 'test',
      title: 'Bitcoin ETF inflows hit a record week',
      summary: '',
      url: 'https://example.test/etf',
      publishedAt: FETCHED - 60_000,
      fetchedAt: FETCHED, // fetched now, then handed over to the news service
      coins: ['BTC'],
    };
    const once: NewsSource = {
      name: 'once',
      async run(sink: NewsSink) {
        await sink.news([item]);
      },
    };
    const signals = new NewsSignalService(bus, new SentimentScorer({ primary: new LexiconBackend() }));
    await signals.start();
    try {
      await new NewsService(bus).run([once], new AbortController().signal);
      // Date is mocked (frozen between ticks): wait on the subscription, with a deadline on the real timers.
      await settlesWithin(signals.caughtUp(), 30_000, 'the signal service to catch up');
      const out = (await inner.readTail<NewsSignal>(topics.newsSignals, 10)).map((r) => r.value);
      assert.equal(out.length, 1);
      assert.ok(
        out[0]!.availableAt >= FETCHED + OUTAGE_MS,
        `available at ${new Date(out[0]!.availableAt).toISOString()}, before the item reached the topic (${new Date(FETCHED + OUTAGE_MS).toISOString()})`,
      );
    } finally {
      await signals.stop();
      await inner.close();
    }
  });
});

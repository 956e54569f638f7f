import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metrics } from '../../../src/core/metrics.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { Sentiment, SentimentBackend } from '../../../src/sentiment/labels.ts';
import { NewsSignalService } from '../../../src/sentiment/news-signal-service.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';

/**
 * `cryptocast_sentiment_fallbacks_total{reason}` takes its label from the fallback's reason, up to its first colon. The
 * reason of an item behind the limit has none ("behind by 125 s (limit 60 s)"): each number of seconds behind was a
 * series of its own, so a backlog of an hour made thousands (Prometheus' cardinality, and no sum(rate) by a reason).
 */
const T0 = Date.UTC(2022, 2, 1, 12);
const item = (id: string, title: string): NewsItem => ({
  v: 1,
  id,
  source: 'test',
  title,
  summary: '',
  url: `https://example.com/${id}`,
  publishedAt: T0 - 60_000,
  fetchedAt: T0,
  coins: ['BTC'],
});
const llm: SentimentBackend = {
  name: 'fake:llm',
  promptVersion: 'p1',
  baseline: false,
  async score(): Promise<Sentiment> {
    return { label: 'positive', score: 0.6, confidence: 0.9, reason: 'Adoption grows.' };
  },
};

describe('the fallback counter: one series per kind of reason', () => {
  it('items behind the limit by different times count under one reason label, "behind"', async () => {
    metrics.sentimentFallbacks.reset();
    const bus = new InProcessBus();
    await bus.ensureTopics([topics.news]);
    await bus.publish(topics.news, [
      item('a', 'Bitcoin rallies'),
      item('b', 'Bitcoin slides'),
      item('c', 'Bitcoin steady'),
    ]);
    // Each item has waited 7 s more than the one before: 2 min, 2 min 7 s, 2 min 14 s (the limit is 1 min).
    let k = 0;
    const svc = new NewsSignalService(bus, new SentimentScorer({ primary: llm }), {
      maxLagMs: 60_000,
      now: () => Date.now() + 120_000 + 7_000 * k++,
    });
    await svc.start();
    await svc.caughtUp();
    await svc.stop();
    assert.equal(svc.stats.degraded, 3);
    const series = (await metrics.sentimentFallbacks.get()).values.filter((v) => v.value > 0);
    assert.deepEqual(
      series.map((v) => [v.labels.reason, v.value]),
      [['behind', 3]],
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startNewsPipeline } from '../../../src/app/news-pipeline.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';
import type { NewsSignal } from '../../../src/schemas/news-signal.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { Sentiment, SentimentBackend } from '../../../src/sentiment/labels.ts';

const T0 = Date.UTC(2022, 2, 1, 12);
const item: NewsItem = {
  v: 1,
  id: 'a',
  source: 'test',
  title: 'Bitcoin rallies on ETF news',
  summary: '',
  url: 'https://example.com/a',
  publishedAt: T0 - 60_000,
  fetchedAt: T0,
  coins: ['BTC'],
};

/** A model stand-in that counts its loads (warmUp) and its answers. */
const model = () => {
  const b = {
    name: 'fake:llm',
    promptVersion: 'p1',
    baseline: false,
    loads: 0,
    scored: 0,
    async warmUp() {
      b.loads++;
    },
    async score(): Promise<Sentiment> {
      b.scored++;
      return { label: 'positive', score: 0.6, confidence: 0.9, reason: 'Adoption grows.' };
    },
  };
  return b satisfies SentimentBackend;
};

async function start(newsExpected: boolean | undefined) {
  const bus = new InProcessBus();
  const b = model();
  const news = await startNewsPipeline({
    bus,
    sources: [],
    backend: {},
    maxLagMs: 60_000,
    signal: new AbortController().signal,
    ...(newsExpected === undefined ? {} : { newsExpected }),
    createBackend: () => b,
  });
  return { bus, b, news };
}

describe('the news pipeline loads its model only when news can come', () => {
  it('no news expected (a replay of trade recordings): the model is not loaded at start; an item that comes anyway loads it then, and is scored by it', async () => {
    const { bus, b, news } = await start(false);
    assert.equal(b.loads, 0);
    assert.equal(news.backend, 'fake:llm');
    await bus.publish(topics.news, [item]);
    await news.signals.caughtUp();
    const signals = (await bus.readTail<NewsSignal>(topics.newsSignals, 10)).map((r) => r.value);
    assert.deepEqual(
      signals.map((s) => [s.coin, s.model, s.baseline]),
      [['BTC', 'fake:llm', false]],
    );
    assert.equal(b.loads, 1);
    assert.equal(b.scored, 1);
    await news.stop();
  });

  it('news expected (live feeds, recorded news), and by default: loaded at start', async () => {
    for (const expected of [true, undefined]) {
      const { b, news } = await start(expected);
      assert.equal(b.loads, 1, `newsExpected ${expected}`);
      await news.stop();
    }
  });
});

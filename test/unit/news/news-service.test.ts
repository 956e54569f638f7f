import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NewsService } from '../../../src/news/news-service.ts';
import { RecordedNewsSource } from '../../../src/news/recorded.ts';
import type { NewsSink, NewsSource } from '../../../src/news/source.ts';
import type { Bus } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { SHARED_DATA } from '../../support/data.ts';

describe('NewsService', () => {
  it('publishes the recording once: items on news, duplicates dropped, rejects in dlq', async () => {
    const file = join(SHARED_DATA, 'crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz');
    const bus = new InProcessBus();
    const svc = new NewsService(bus);
    // The same recording twice, as two sources: every item a duplicate the second time.
    await svc.run(
      [new RecordedNewsSource({ file }), new RecordedNewsSource({ file })],
      new AbortController().signal,
    );
    const news = (await bus.readTail<NewsItem>(topics.news, 100_000)).map((r) => r.value);
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 1_000)).map((r) => r.value);
    assert.equal(news.length, svc.stats.items);
    assert.equal(new Set(news.map((n) => n.id)).size, news.length);
    assert.ok(svc.stats.duplicates >= 7_496, `${svc.stats.duplicates} duplicates`);
    // Syndicated near-identical titles within the recording are merged too.
    assert.ok(news.length <= 7_496 && news.length > 7_000, `${news.length} distinct items`);
    assert.equal(dead.length, 56);
  });

  // Distinct headlines: the service merges near-identical titles (syndication).
  const HEADLINES = [
    'Bitcoin ETF inflows hit a record week',
    'Ethereum developers schedule the next upgrade',
    'Exchange outage halts withdrawals for hours',
    'Regulator publishes stablecoin guidance',
    'Miners sell reserves as fees fall',
    'Central bank keeps rates on hold',
  ];
  const item = (i: number): NewsItem => ({
    v: 1,
    id: `item-${i}`,
    source: 'test',
    title: HEADLINES[i]!,
    summary: '',
    url: `https://example.test/${i}`,
    publishedAt: Date.UTC(2025, 0, 1) + i * 60_000,
    fetchedAt: Date.UTC(2025, 0, 1) + i * 60_000,
    coins: ['BTC'],
  });
  /** Hands over three batches of items, then ends (as a recording does). */
  const threeBatches: NewsSource = {
    name: 'three-batches',
    async run(sink: NewsSink) {
      for (let b = 0; b < 3; b++) await sink.news([0, 1].map((k) => item(2 * b + k)));
    },
  };

  it('a broker away for a while: every item is published once it is back, the source is held meanwhile', async () => {
    const inner = new InProcessBus();
    let refusals = 3;
    // The in-process bus, refusing the first publishes to `news` as a restarting broker does.
    const bus = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'publish')
          return (topic: { name: string }, values: unknown[]) => {
            if (topic.name === topics.news.name && refusals > 0) {
              refusals--;
              return Promise.reject(new Error('injected: broker not available'));
            }
            return target.publish(topic as never, values as never);
          };
        return Reflect.get(target, prop, receiver);
      },
    }) as Bus;
    const svc = new NewsService(bus);
    await svc.run([threeBatches], new AbortController().signal);
    const news = (await inner.readTail<NewsItem>(topics.news, 100)).map((r) => r.value.id);
    assert.deepEqual(
      news,
      [0, 1, 2, 3, 4, 5].map((i) => `item-${i}`),
    );
    assert.equal(svc.stats.items, 6);
    assert.equal(svc.stats.publishRetries, 3);
  });

  /** Hands over one batch, and again if the hand-over throws: as a feed's next poll fetches the same items again. */
  const fetchedAgainAfterAnError = (batch: readonly NewsItem[]): NewsSource => ({
    name: 'feed',
    async run(sink: NewsSink) {
      await Promise.resolve(sink.news(batch)).catch(() => sink.news(batch));
    },
  });

  it('items whose publish ended in an error (a stop while the broker is away) are taken back, published on the retry', async () => {
    const inner = new InProcessBus();
    const bus = inner as Bus;
    const publish = inner.publish.bind(inner);
    let brokerAway = true;
    bus.publish = (async (topic, values) => {
      if (topic.name === topics.news.name && brokerAway) {
        brokerAway = false;
        throw new Error('injected: broker not available');
      }
      return publish(topic, values);
    }) as typeof bus.publish;
    const stopping = new AbortController();
    stopping.abort(); // the stop comes while the broker is away: the retries end with the publish's error
    const svc = new NewsService(bus);
    await svc.run([fetchedAgainAfterAnError([item(0), item(1)])], stopping.signal);
    assert.deepEqual(
      (await inner.readTail<NewsItem>(topics.news, 10)).map((r) => r.value.id),
      ['item-0', 'item-1'],
    );
    assert.deepEqual([svc.stats.items, svc.stats.duplicates], [2, 0]);
  });

  it('of a batch that ended in an error half-way (a dead letter refused once), only what was not published is taken back', async () => {
    const bus = new InProcessBus();
    const publish = bus.publish.bind(bus);
    let refuseDeadLetter = true;
    bus.publish = (async (topic, values) => {
      // The refused item's dead letter is refused as well, once: the hand-over throws after publishing item-0.
      if (topic.name === topics.dlq.name && refuseDeadLetter) {
        refuseDeadLetter = false;
        throw new TypeError('injected: the dead letter is refused');
      }
      return publish(topic, values);
    }) as typeof bus.publish;
    const bad = { ...item(1), coins: 'BTC' } as unknown as NewsItem;
    const svc = new NewsService(bus);
    await svc.run([fetchedAgainAfterAnError([item(0), bad, item(2)])], new AbortController().signal);
    // Every item once in the end: item-0 and item-2 on news, item-1 in dlq.
    assert.deepEqual(
      (await bus.readTail<NewsItem>(topics.news, 10)).map((r) => r.value.id),
      ['item-0', 'item-2'],
    );
    assert.deepEqual(
      (await bus.readTail<DeadLetter>(topics.dlq, 10)).map((r) => JSON.parse(r.value.payload).id),
      ['item-1'],
    );
    assert.equal(svc.stats.items, 2);
    assert.equal(svc.stats.duplicates, 1); // item-0, published before the error
  });

  it('an item the news topic refuses (a source bug) is dead-lettered; the others of its batch are published', async () => {
    const bus = new InProcessBus();
    const buggy: NewsSource = {
      name: 'buggy',
      async run(sink: NewsSink) {
        await sink.news([item(0), { ...item(1), coins: 'BTC' } as unknown as NewsItem, item(2)]);
      },
    };
    const svc = new NewsService(bus);
    await svc.run([buggy], new AbortController().signal);
    assert.deepEqual(
      (await bus.readTail<NewsItem>(topics.news, 10)).map((r) => r.value.id),
      ['item-0', 'item-2'],
    );
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 10)).map((r) => r.value);
    assert.deepEqual(
      dead.map((d) => [d.kind, JSON.parse(d.payload).id]),
      [['invalid', 'item-1']],
    );
    assert.match(dead[0]!.reason, /coins/);
    assert.equal(svc.stats.items, 2);
    assert.equal(svc.stats.rejects, 1);
  });

  it('a source that fails fails the service (so it exits non-zero and is restarted), after the others finish', async () => {
    const bus = new InProcessBus();
    const broken: NewsSource = {
      name: 'broken',
      run: () => Promise.reject(new Error('injected: the source broke')),
    };
    const svc = new NewsService(bus);
    await assert.rejects(
      svc.run([broken, threeBatches], new AbortController().signal),
      /injected: the source broke/,
    );
    assert.equal(svc.stats.items, 6, 'the other source ran to its end');
  });

  // A feed polled by a restarted service hands over the items it still lists, with a new fetch time: published again,
  // they were scored again and counted twice in the news features (as two signals, the second "available" later).
  it('a restarted service does not publish again what the news topic already has', async () => {
    const bus = new InProcessBus();
    /** A feed listing items 0–3, then (polled after the restart) 2–5: what an RSS feed lists moves on. */
    const feed = (ids: number[], fetchedAt: number): NewsSource => ({
      name: 'feed',
      async run(sink: NewsSink) {
        await sink.news(ids.map((i) => ({ ...item(i), fetchedAt })));
      },
    });
    const first = new NewsService(bus);
    await first.run([feed([0, 1, 2, 3], Date.UTC(2025, 0, 1, 1))], new AbortController().signal);
    const restarted = new NewsService(bus);
    await restarted.run([feed([2, 3, 4, 5], Date.UTC(2025, 0, 1, 2))], new AbortController().signal);
    const news = (await bus.readTail<NewsItem>(topics.news, 100)).map((r) => r.value);
    assert.deepEqual(
      news.map((n) => n.id),
      [0, 1, 2, 3, 4, 5].map((i) => `item-${i}`),
    );
    assert.equal(news[2]!.fetchedAt, Date.UTC(2025, 0, 1, 1), 'the first fetch stands: available since then');
    assert.equal(restarted.stats.items, 2);
    assert.equal(restarted.stats.duplicates, 2);
  });
});

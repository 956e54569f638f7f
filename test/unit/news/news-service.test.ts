import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NewsService } from '../../../src/news/news-service.ts';
import { RecordedNewsSource } from '../../../src/news/recorded.ts';
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
});

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RecordedNewsSource } from '../../src/news/recorded.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { NewsItem } from '../../src/schemas/news.ts';
import type { NewsSignal } from '../../src/schemas/news-signal.ts';
import { topics } from '../../src/schemas/topics.ts';
import { SHARED_DATA } from '../support/data.ts';
import {
  ensureKafka,
  KAFKA_URL,
  serviceLauncher,
  uniquePrefix,
  waitForGroupCommitted,
} from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';

const T0 = Date.UTC(2022, 4, 9);

/**
 * `service news-signals --clock event` on a real broker with the real local model: recorded news replayed onto `news`
 * at once (as `service news --source replay` does) are scored by the LLM, each item's wait being the one a live run
 * would have had. On the wall clock (the only one the service had) every item of the replay had waited on the topic
 * longer than --max-lag by the time the model was loaded, and the lexicon scored them all.
 */
describe('service news-signals --clock event (a replay of recorded news, on Kafka)', () => {
  const children: ChildProcess[] = [];
  const prefix = uniquePrefix('news-event-clock');
  before(async () => {
    await ensureKafka();
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  it('items an hour apart are all scored by the LLM, dated at their fetch plus the scoring', async () => {
    // Eight real headlines that name a coin, fetched an hour apart (live, the model waits for none of them).
    const recorded: NewsItem[] = [];
    const stop = new AbortController();
    await new RecordedNewsSource({
      file: join(SHARED_DATA, 'crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz'),
    }).run(
      {
        news: (xs) => {
          recorded.push(...xs.filter((x) => x.coins.length > 0));
          if (recorded.length >= 8) stop.abort();
        },
        reject: () => {},
      },
      stop.signal,
    );
    const items = recorded.slice(0, 8).map(({ receivedAt: _, ...n }, i) => ({
      ...n,
      publishedAt: T0 + i * 3_600_000 - 300_000,
      fetchedAt: T0 + i * 3_600_000,
    }));
    const bus = new KafkaBus({ brokers: [KAFKA_URL.replace('kafka://', '')], topicPrefix: prefix });
    try {
      await bus.ensureTopics([topics.news]);
      await bus.publish(topics.news, items);
      const svc = serviceLauncher(prefix, children, {
        CRYPTOCAST_SENTIMENT_CACHE: join(scratchDir('news-event-clock-'), 'cache.jsonl'),
      });
      // A 1-s limit: the model's load alone (seconds) puts every item past it on the wall clock.
      const scoring = svc(['news-signals', '--backend', 'local', '--max-lag', '1s', '--clock', 'event']);
      try {
        await waitForGroupCommitted(bus, topics.news, 'news-signals', 300_000);
        const got = (await bus.readTail<NewsSignal>(topics.newsSignals, 1_000)).map((r) => r.value);
        const fetchedAt = new Map(items.map((i) => [i.id, i.fetchedAt]));
        assert.equal(new Set(got.map((s) => s.newsId)).size, items.length, 'a signal for every item');
        for (const s of got) {
          assert.equal(s.baseline, false, `${s.newsId}: ${s.reason}`);
          assert.equal(s.model, 'local:gemma-3-270m-q4_k_m');
          // Available after its fetch by its scoring time (at most the scorer's 20-s limit), not by the wall clock.
          const after = s.availableAt - fetchedAt.get(s.newsId)!;
          assert.ok(after > 0 && after <= 21_000, `${s.newsId}: available ${after} ms after its fetch`);
        }
      } finally {
        scoring.kill('SIGTERM');
      }
    } finally {
      await bus.close();
    }
  });
});

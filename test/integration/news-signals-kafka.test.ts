import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { RecordedNewsSource } from '../../src/news/recorded.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { NewsItem } from '../../src/schemas/news.ts';
import type { NewsSignal } from '../../src/schemas/news-signal.ts';
import { topics } from '../../src/schemas/topics.ts';
import { LocalLlmBackend } from '../../src/sentiment/local-llm.ts';
import { SentimentScorer } from '../../src/sentiment/scorer.ts';
import { signalsFor } from '../../src/sentiment/signals.ts';
import { SHARED_DATA } from '../support/data.ts';
import {
  ensureKafka,
  KAFKA_URL,
  serviceLauncher,
  uniquePrefix,
  waitForGroupCommitted,
} from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The news feature pipeline as separate processes on a real Kafka broker: `service news` replays 12 real recorded
 * items onto `news`, `service news-signals` scores them with the local LLM (real weights) onto `news.signals`.
 * The signals must be those the same backend gives in-process (same labels and scores: the model is deterministic).
 * A dozen items (14 coin mentions) prove that as well as forty did: on a loaded 2-core machine the service's model
 * takes seconds per headline, and forty took the test past its time limit.
 */

describe('news → news-signals as two services on Kafka', () => {
  const children: ChildProcess[] = [];
  const prefix = uniquePrefix('news');
  const dir = scratchDir('news-kafka-');
  const file = join(dir, 'news.csv');
  before(async () => {
    await ensureKafka();
    // The header and 12 lines of the real recording, from its dense part.
    const lines = gunzipSync(
      readFileSync(join(SHARED_DATA, 'crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz')),
    )
      .toString('utf8')
      .split('\n');
    writeFileSync(file, `${[lines[0], ...lines.slice(3000, 3012)].join('\n')}\n`);
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  it('publishes one signal per coin mention, equal to the in-process computation', async () => {
    const svc = serviceLauncher(prefix, children);
    const items: NewsItem[] = [];
    await new RecordedNewsSource({ file }).run(
      { news: (xs) => void items.push(...xs), reject: () => {} },
      new AbortController().signal,
    );
    // One thread in-process (the service uses the machine's math cores): llama.cpp splits a step's rows between
    // threads, so the answers do not depend on their number, and one thread is several times faster when another
    // job holds a core.
    const scorer = new SentimentScorer({ primary: new LocalLlmBackend({ threads: 1 }), cacheSize: 0 });
    const expected: NewsSignal[] = [];
    for (const item of items) expected.push(...(await signalsFor(item, scorer)));
    await scorer.close();
    assert.ok(expected.length >= 10, `${expected.length} expected signals`);

    const scoring = svc(['news-signals', '--backend', 'local']);
    const news = svc(['news', '--source', 'replay', '--data', file]);
    await new Promise<void>((resolve, reject) =>
      news.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`news exited ${code}`)))),
    );

    const bus = new KafkaBus({ brokers: [KAFKA_URL.replace('kafka://', '')], topicPrefix: prefix });
    try {
      // The scoring service publishes a batch's signals before it commits the batch: once it has committed every
      // news item (the news service has exited: the topic is complete), every signal it will publish is there.
      await waitForGroupCommitted(bus, topics.news, 'news-signals', 200_000);
      const got = (await bus.readTail<NewsSignal>(topics.newsSignals, 10_000)).map((r) => r.value);
      const key = (s: NewsSignal) => `${s.newsId}|${s.coin}`;
      const fetchedAt = new Map(items.map((i) => [i.id, i.fetchedAt]));
      assert.deepEqual(got.map(key).sort(), expected.map(key).sort());
      const byKey = new Map(expected.map((s) => [key(s), s]));
      for (const s of got) {
        const e = byKey.get(key(s))!;
        assert.equal(s.label, e.label);
        assert.ok(Math.abs(s.score - e.score) < 1e-6, `${key(s)}: ${s.score} vs ${e.score}`);
        assert.equal(s.model, 'local:gemma-3-270m-q4_k_m');
        assert.equal(s.baseline, false);
        // Never earlier than it could exist: after the fetch, plus the scoring (the scoring time itself varies
        // between this run and the in-process one, so the two availableAt are not compared to each other).
        assert.ok(s.availableAt > fetchedAt.get(s.newsId)!, `${key(s)}: available before it was fetched`);
      }
    } finally {
      scoring.kill('SIGTERM');
      await bus.close();
    }
  });
});

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { NewsItem } from '../../src/schemas/news.ts';
import type { NewsSignal } from '../../src/schemas/news-signal.ts';
import { topics } from '../../src/schemas/topics.ts';
import {
  ensureKafka,
  KAFKA_URL,
  serviceLauncher,
  uniquePrefix,
  waitForGroupCommitted,
} from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';
import { settlesWithin, waitFor } from '../support/wait.ts';

const ITEMS = 12;
/** The LLM answers this many texts, then the next call hangs: the stop comes while it is in flight. */
const ANSWERED_BEFORE_STOP = 4;

/**
 * `service news-signals` stopped (SIGTERM during a deploy) in the middle of a batch. The scorer's stop made the lexicon
 * score what the batch had left, and the batch was committed: a deploy degraded those signals for good, although
 * Kafka would have delivered them again. Now the batch stays uncommitted and the LLM scores it after the restart.
 *
 * The LLM is an OpenAI-compatible endpoint on 127.0.0.1 (a stand-in that answers in the documented shape), so the
 * test decides exactly when the call in flight is the fifth of the batch.
 */
describe('news-signals on Kafka: a stop in the middle of a batch', () => {
  const children: ChildProcess[] = [];
  const prefix = uniquePrefix('news-stop');
  const dir = scratchDir('news-stop-kafka-');
  let requests = 0;
  let hold = true;
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      if (hold && requests > ANSWERED_BEFORE_STOP) {
        held.push(res);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      const answer = { label: 'positive', score: 0.7, confidence: 0.9, reason: 'The stand-in LLM says so.' };
      res.end(
        JSON.stringify({ choices: [{ message: { role: 'assistant', content: JSON.stringify(answer) } }] }),
      );
    });
  });
  let url = '';
  before(async () => {
    await ensureKafka();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('leaves the batch uncommitted: after the restart every item has exactly one LLM signal', async () => {
    const bus = new KafkaBus({ brokers: [KAFKA_URL.replace('kafka://', '')], topicPrefix: prefix });
    const svc = serviceLauncher(prefix, children, {
      CRYPTOCAST_SENTIMENT_CACHE: join(dir, 'cache.jsonl'),
      CRYPTOCAST_LLM_BASE_URL: url,
      CRYPTOCAST_LLM_MODEL_NAME: 'stand-in',
    });
    // The restart may come minutes later on a loaded machine: no item is old enough for the baseline (--max-lag).
    const args = ['news-signals', '--backend', 'openai', '--max-lag', '1h'];
    const exited = (c: ChildProcess) =>
      new Promise<number | null>((resolve) =>
        c.exitCode !== null ? resolve(c.exitCode) : c.once('exit', (code) => resolve(code)),
      );
    try {
      await bus.ensureTopics([topics.news]);
      const t0 = Date.now();
      const items: NewsItem[] = Array.from({ length: ITEMS }, (_, i) => ({
        v: 1,
        id: `stop-${i}`,
        source: 'test',
        title: `Bitcoin headline number ${i} of the batch`,
        summary: '',
        url: `https://example.test/${i}`,
        publishedAt: t0 - 60_000,
        fetchedAt: t0,
        coins: ['BTC'],
      }));
      // On the topic before the service starts: its first fetch takes them all, one batch.
      await bus.publish(topics.news, items);

      const first = svc(args);
      await waitFor(
        'the LLM call in flight after the answered ones',
        () => requests,
        (n) => n > ANSWERED_BEFORE_STOP,
        { timeoutMs: 180_000, everyMs: 100 },
      );
      first.kill('SIGTERM');
      assert.equal(await settlesWithin(exited(first), 60_000, 'the service to stop'), 0);
      // What the first run published: nothing, as the batch was not finished (it published 4 LLM signals and 8 of
      // the lexicon, and committed them).
      const before = (await bus.readTail<NewsSignal>(topics.newsSignals, 1_000)).map((r) => r.value);
      assert.deepEqual(
        before.map((s) => `${s.newsId} ${s.model}`),
        [],
        'the stopped batch published nothing (the restart scores it)',
      );

      hold = false;
      const second = svc(args);
      await waitForGroupCommitted(bus, topics.news, 'news-signals', 180_000);
      const got = (await bus.readTail<NewsSignal>(topics.newsSignals, 1_000)).map((r) => r.value);
      assert.deepEqual(
        got.map((s) => s.newsId).sort(),
        items.map((i) => i.id).sort(),
        'exactly one signal per item',
      );
      for (const s of got) {
        assert.equal(s.baseline, false, `${s.newsId}: ${s.reason}`);
        assert.equal(s.model, 'openai:stand-in');
      }
      second.kill('SIGTERM');
      await settlesWithin(exited(second), 60_000, 'the restarted service to stop');
    } finally {
      await bus.close();
    }
  });
});

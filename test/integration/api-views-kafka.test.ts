import { test } from 'node:test';
import { AlertsView } from '../../src/api/alerts-view.ts';
import { LatestPredictions } from '../../src/api/latest.ts';
import { NewsView } from '../../src/api/news-view.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { AlertNotification } from '../../src/schemas/alert.ts';
import type { NewsItem } from '../../src/schemas/news.ts';
import { topics } from '../../src/schemas/topics.ts';
import { prediction } from '../support/factories.ts';
import { ensureKafka, KAFKA_URL, lateAssignment, uniquePrefix } from '../support/kafka.ts';
import { MemoryPredictionsStore } from '../support/memory-predictions-store.ts';
import { waitFor } from '../support/wait.ts';

const T0 = Date.parse('2026-01-05T00:00:00Z');
const notification = (o: Partial<AlertNotification>): AlertNotification => ({
  status: 'firing',
  rule: 'no-candles',
  kind: 'no_candles',
  severity: 'critical',
  key: 'BTC/USD',
  value: 600,
  message: 'no candle for 10 min',
  startsAt: T0,
  at: T0,
  repeat: 0,
  ...o,
});

const newsItem = (id: string, publishedAt: number): NewsItem => ({
  v: 1,
  id,
  source: 'Cointelegraph',
  title: `item ${id}`,
  summary: '',
  url: `https://example.com/${id}`,
  publishedAt,
  fetchedAt: publishedAt + 60_000,
  coins: ['BTC'],
});

/**
 * The views of the API that read a topic on start, then follow it (src/api/): on Kafka, with the group's partitions
 * assigned only after the read (test/support/kafka.ts `lateAssignment`), what is published in between must be seen.
 */
test('AlertsView on Kafka: a resolved published between the start read and the group assignment is applied, as is a new alert', async () => {
  await ensureKafka();
  const kafka = new KafkaBus({
    brokers: [KAFKA_URL.replace('kafka://', '')],
    topicPrefix: uniquePrefix('alertsview'),
  });
  await kafka.ensureTopics([topics.alerts]);
  await kafka.publish(topics.alerts, [notification({})]);
  // Just after the API read the topic, before its group's partitions are assigned, the monitor resolves the alert and
  // raises another.
  const bus = lateAssignment(kafka, 1, () =>
    kafka.publish(topics.alerts, [
      notification({ status: 'resolved', at: T0 + 60_000 }),
      notification({ key: 'ETH/USD', startsAt: T0 + 60_000, at: T0 + 60_000 }),
    ]),
  );
  const view = new AlertsView();
  try {
    await view.start(bus);
    await waitFor(
      'the resolved alert to leave the list and the new one to join it',
      () => view.list().map((n) => `${n.status} ${n.rule} ${n.key}`),
      (l) => l.length === 1 && l[0] === 'firing no-candles ETH/USD',
      { timeoutMs: 60_000 },
    );
  } finally {
    await view.stop();
    await kafka.close();
  }
});

test('the predictions feed on Kafka: a prediction published between the tail read and the group assignment is served', async () => {
  await ensureKafka();
  const kafka = new KafkaBus({
    brokers: [KAFKA_URL.replace('kafka://', '')],
    topicPrefix: uniquePrefix('feedview'),
  });
  await kafka.ensureTopics([topics.predictions]);
  await kafka.publish(topics.predictions, [prediction({ pair: 'BTC/USD', windowEnd: T0 })]);
  const bus = lateAssignment(kafka, 1, () =>
    kafka.publish(topics.predictions, [prediction({ pair: 'BTC/USD', windowEnd: T0 + 60_000 })]),
  );
  const latest = new LatestPredictions();
  const heard: number[] = [];
  latest.onPrediction((e) => heard.push(e.p.windowEnd));
  try {
    await latest.start({ bus, store: new MemoryPredictionsStore(), pairs: [] });
    await waitFor(
      'the newer prediction to be the latest and told to listeners',
      () => ({ latest: JSON.parse(latest.bodyFor('BTC-USD')?.toString() ?? '{}').windowEnd, heard }),
      (s) => s.latest === T0 + 60_000 && s.heard.includes(T0 + 60_000),
      { timeoutMs: 60_000 },
    );
  } finally {
    await latest.stop();
    await kafka.close();
  }
});

test('the news view on Kafka: an item published between the reads and the assignment is listed', async () => {
  await ensureKafka();
  const kafka = new KafkaBus({
    brokers: [KAFKA_URL.replace('kafka://', '')],
    topicPrefix: uniquePrefix('newsview'),
  });
  await kafka.ensureTopics([topics.news, topics.newsSignals]);
  await kafka.publish(topics.news, [newsItem('a', T0)]);
  const bus = lateAssignment(kafka, 2, async () => {
    await kafka.publish(topics.news, [newsItem('b', T0 + 60_000)]);
  });
  const view = new NewsView();
  try {
    await view.start(bus);
    await waitFor(
      'the item published meanwhile to be listed',
      () => view.latest().map((e) => e.id),
      (ids) => ids.join() === 'b,a',
      { timeoutMs: 60_000 },
    );
  } finally {
    await view.stop();
    await kafka.close();
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';
import type { NewsSignal } from '../../../src/schemas/news-signal.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { type Sentiment, type SentimentBackend, SentimentError } from '../../../src/sentiment/labels.ts';
import { NewsSignalService } from '../../../src/sentiment/news-signal-service.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { newsText } from '../../../src/sentiment/signals.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

const T0 = Date.UTC(2022, 2, 1, 12);
const item = (id: string, title: string, coins: string[], summary = ''): NewsItem => ({
  v: 1,
  id,
  source: 'test',
  title,
  summary,
  url: `https://example.com/${id}`,
  publishedAt: T0 - 60_000,
  fetchedAt: T0,
  coins,
});

/** An LLM stand-in: positive unless the text says "garbage", which makes it answer invalid output. */
const llm = (): SentimentBackend & { calls: number } => ({
  name: 'fake:llm',
  promptVersion: 'p1',
  baseline: false,
  calls: 0,
  async score(text: string): Promise<Sentiment> {
    this.calls++;
    if (text.includes('garbage')) throw new SentimentError('invalid-output', 'model output is not JSON');
    return { label: 'positive', score: 0.6, confidence: 0.9, reason: 'Adoption grows.' };
  },
});

async function run(
  items: NewsItem[],
  backend: SentimentBackend,
  opts: {
    maxLagMs?: number;
    now?: () => number;
    scorer?: SentimentScorer;
    clock?: 'wall' | 'event';
  } = {},
) {
  const bus = new InProcessBus();
  await bus.ensureTopics([topics.news]);
  await bus.publish(topics.news, items);
  const svc = new NewsSignalService(bus, opts.scorer ?? new SentimentScorer({ primary: backend }), opts);
  await svc.start();
  await svc.caughtUp();
  await svc.stop();
  const signals = (await bus.readTail<NewsSignal>(topics.newsSignals, 1_000)).map((r) => r.value);
  const dead = (await bus.readTail<DeadLetter>(topics.dlq, 1_000)).map((r) => r.value);
  return { svc, signals, dead };
}

describe('NewsSignalService: news → news.signals', () => {
  it('one signal per coin, with model, prompt version and availability after the fetch', async () => {
    const b = llm();
    const { signals, svc } = await run([item('a', 'Bitcoin and Ether rally on ETF news', ['BTC', 'ETH'])], b);
    assert.equal(signals.length, 2);
    assert.deepEqual(signals.map((s) => s.coin).sort(), ['BTC', 'ETH']);
    for (const s of signals) {
      assert.equal(s.model, 'fake:llm');
      assert.equal(s.promptVersion, 'p1');
      assert.equal(s.baseline, false);
      assert.equal(s.label, 'positive');
      assert.ok(s.availableAt >= T0, 'never before the fetch');
    }
    assert.equal(svc.stats.signals, 2);
  });

  it('invalid model output → a baseline signal flagged as such; no text → dlq with the reason; items without coins → nothing', async () => {
    const b = llm();
    const { signals, dead, svc } = await run(
      [
        item('g', 'Bitcoin garbage headline crashes badly', ['BTC']),
        item('e', '<p> </p>', ['ETH']),
        item('n', 'Stock markets open flat', []),
        item('ok', 'Ethereum upgrade ships', ['ETH']),
      ],
      b,
    );
    const g = signals.find((s) => s.newsId === 'g')!;
    assert.equal(g.baseline, true);
    assert.equal(g.model, 'lexicon:vader');
    assert.match(g.reason, /Baseline used \(invalid-output/);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.service, 'news-signals');
    assert.match(dead[0]!.reason, /empty text/);
    assert.equal(JSON.parse(dead[0]!.payload).id, 'e');
    assert.equal(signals.filter((s) => s.newsId === 'n').length, 0);
    assert.equal(signals.find((s) => s.newsId === 'ok')!.baseline, false);
    assert.deepEqual(
      { items: svc.stats.items, rejects: svc.stats.rejects, baseline: svc.stats.baseline },
      { items: 4, rejects: 1, baseline: 1 },
    );
  });

  it('degrades to the baseline for items that waited too long, instead of falling behind', async () => {
    const b = llm();
    // The clock says every record has waited 2 minutes on the topic; the limit is 1 minute.
    const { signals, svc } = await run(
      [item('a', 'Bitcoin rallies', ['BTC']), item('b', 'Ether rallies', ['ETH'])],
      b,
      {
        maxLagMs: 60_000,
        now: () => Date.now() + 120_000,
      },
    );
    assert.equal(b.calls, 0);
    assert.equal(svc.stats.degraded, 2);
    assert.ok(signals.every((s) => s.baseline && /behind by 12\d s/.test(s.reason)));
    // The wait counts: the signal is dated when it could exist, not at the fetch.
    assert.ok(signals.every((s) => s.availableAt >= T0 + 120_000));
  });

  it('an item behind the limit whose text the LLM already answered gets that cached answer, not the lexicon', async () => {
    const b = llm();
    const scorer = new SentimentScorer({ primary: b });
    const known = item('k', 'Bitcoin rallies on ETF approval', ['BTC']);
    // The model answered this text before (an earlier item, a run before the restart): it is in the cache.
    await scorer.score(newsText(known));
    assert.equal(b.calls, 1);
    // Both items waited 2 minutes; the limit is 1 minute. The cached answer is free and the model's: it is used.
    const { signals, svc } = await run([known, item('u', 'Ether rallies', ['ETH'])], b, {
      maxLagMs: 60_000,
      now: () => Date.now() + 120_000,
      scorer,
    });
    assert.equal(b.calls, 1, 'the model was not asked again');
    const k = signals.find((s) => s.newsId === 'k')!;
    assert.deepEqual(
      { model: k.model, baseline: k.baseline, label: k.label, reason: k.reason },
      { model: 'fake:llm', baseline: false, label: 'positive', reason: 'Adoption grows.' },
    );
    assert.ok(k.availableAt >= T0 + 120_000, 'the wait still counts towards availability');
    // The uncached one is still scored by the lexicon (freshness over quality), and only it counts as degraded.
    const u = signals.find((s) => s.newsId === 'u')!;
    assert.equal(u.baseline, true);
    assert.match(u.reason, /behind by 12\d s/);
    assert.equal(svc.stats.degraded, 1);
  });

  it('a replay (event clock): the wall clock does not count; an item nothing was scored before is the LLM’s', async () => {
    const b = llm();
    // The wall clock says the records waited 2 minutes (a replay at full speed outruns the model): live, with nothing
    // fetched before them, they would not have waited at all.
    const { signals, svc } = await run(
      [
        item('a', 'Bitcoin rallies', ['BTC']),
        { ...item('b', 'Ether rallies', ['ETH']), fetchedAt: T0 + 600_000 },
      ],
      b,
      { maxLagMs: 60_000, now: () => Date.now() + 120_000, clock: 'event' },
    );
    assert.equal(b.calls, 2);
    assert.equal(svc.stats.degraded, 0);
    assert.ok(signals.every((s) => !s.baseline));
    // Dated at the fetch plus the scoring time (the fake answers at once): the wall-clock wait is not in it.
    const at = (id: string) => signals.find((s) => s.newsId === id)!.availableAt;
    assert.ok(at('a') >= T0 && at('a') < T0 + 60_000, `a available at T0 + ${at('a') - T0} ms`);
    assert.ok(at('b') >= T0 + 600_000 && at('b') < T0 + 660_000, `b available at T0 + ${at('b') - T0} ms`);
  });

  it('a replay (event clock): a burst waits for the model as it would live; past the limit the lexicon answers', async () => {
    // A model that takes 50 ms a text on the scorer's clock (its `now`, which the model advances): the scorer measures
    // it as it does any model's time, and a busy machine's late timers do not change what is asserted.
    let scorerClock = 0;
    const slow: SentimentBackend & { calls: number } = {
      ...llm(),
      async score(): Promise<Sentiment> {
        this.calls++;
        scorerClock += 50;
        return { label: 'positive', score: 0.6, confidence: 0.9, reason: 'Adoption grows.' };
      },
    };
    // Three items fetched at the same moment, a fourth 10 minutes later; the limit is 20 ms of event time.
    const { signals, svc } = await run(
      [
        item('a', 'Bitcoin rallies', ['BTC']),
        item('b', 'Ether rallies', ['ETH']),
        item('c', 'Bitcoin climbs again', ['BTC']),
        { ...item('d', 'Ether climbs again', ['ETH']), fetchedAt: T0 + 600_000 },
      ],
      slow,
      {
        maxLagMs: 20,
        clock: 'event',
        scorer: new SentimentScorer({ primary: slow, now: () => scorerClock }),
      },
    );
    const sig = (id: string) => signals.find((s) => s.newsId === id)!;
    // The first is the model's; it kept the model busy ≥ 50 ms of event time, so the next two waited longer than
    // the limit: the lexicon's, dated after the first (they waited for it).
    assert.equal(sig('a').baseline, false);
    assert.ok(sig('a').availableAt >= T0 + 50, `a available at T0 + ${sig('a').availableAt - T0} ms`);
    for (const id of ['b', 'c']) {
      assert.equal(sig(id).baseline, true, id);
      assert.match(sig(id).reason, /behind by \d+ s of replay time \(limit 0\.02 s\)/);
      assert.ok(sig(id).availableAt >= sig('a').availableAt, `${id} is dated after the item it waited for`);
    }
    // Ten minutes later the model is free again.
    assert.equal(sig('d').baseline, false);
    assert.equal(slow.calls, 2);
    assert.equal(svc.stats.degraded, 2);
  });
  // In-process a stop waits for the batch in hand (nothing would read it again); the bus closing gives it back, as a
  // Kafka stop does (the next owner's scoring of it: test/integration/news-signals-stop-kafka.test.ts).
  it('the bus closing while the model answers (the partition lost): the call ends, nothing of the batch is published', async () => {
    const bus = new InProcessBus();
    await bus.ensureTopics([topics.news]);
    await bus.publish(topics.news, [item('a', 'Bitcoin rallies', ['BTC', 'ETH'])]);
    // An LLM that never answers but hears an abort (as the OpenAI backend's fetch does); the scorer's own deadline and
    // stop far away: only the batch's signal can end the call.
    const calls: AbortSignal[] = [];
    const silent: SentimentBackend = {
      name: 'fake:silent',
      promptVersion: 'p1',
      baseline: false,
      score: (_text, signal) =>
        new Promise<Sentiment>((_, reject) => {
          if (signal) calls.push(signal);
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
    };
    const first = new NewsSignalService(bus, new SentimentScorer({ primary: silent, timeoutMs: 600_000 }));
    await first.start();
    await waitFor(
      'the model call in flight',
      () => calls.length,
      (n) => n === 1,
      { timeoutMs: 10_000, everyMs: 5 },
    );
    const published: NewsSignal[] = [];
    const origPublish = bus.publish.bind(bus);
    bus.publish = (async (
      topic: Parameters<typeof bus.publish>[0],
      values: Parameters<typeof bus.publish>[1],
    ) => {
      if (topic.name === topics.newsSignals.name) published.push(...(values as NewsSignal[]));
      return origPublish(topic, values);
    }) as typeof bus.publish;
    await settlesWithin(bus.close(), 10_000, 'the close, while the model call was in flight');
    await settlesWithin(first.stop(), 10_000, 'the stop after the close');
    assert.equal(calls[0]!.aborted, true, 'the model call was told to end');
    assert.deepEqual(published, [], 'nothing of the batch published');
  });
});

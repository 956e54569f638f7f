import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureService } from '../../../src/features/feature-service.ts';
import { FeatureWriter, NEWS_SET, TECHNICAL_SET } from '../../../src/features/feature-writer.ts';
import { NewsFeatures } from '../../../src/features/news.ts';
import { DuckDbFeatureStore } from '../../../src/features/store/duckdb.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { NewsSignal } from '../../../src/schemas/news-signal.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { bitstampCandleRecords } from '../../support/bitstamp.ts';

/** A scored news signal: `score`'s sign gives the label; available to the pipeline at `availableAt`. */
function newsSignal(
  newsId: string,
  coin: string,
  score: number,
  availableAt: number,
  publishedAt: number,
): NewsSignal {
  return {
    v: 1,
    newsId,
    coin,
    score,
    label: score > 0 ? 'positive' : 'negative',
    confidence: 0.9,
    reason: 'test',
    model: 'fake',
    promptVersion: 'p',
    baseline: false,
    publishedAt,
    availableAt,
  };
}

describe('FeatureWriter', () => {
  it('moves candles → features → store: full history, online vector, and a replay writes nothing twice', async () => {
    const candles: Candle[] = await bitstampCandleRecords(500);
    const bus = new InProcessBus();
    const store = await DuckDbFeatureStore.open(':memory:');
    const features = new FeatureService(bus);
    const writer = new FeatureWriter(bus, store);
    await features.start();
    await writer.start();
    await bus.publish(topics.candles, candles);
    await features.caughtUp();
    await writer.caughtUp();
    assert.equal(await store.count(TECHNICAL_SET), 500);
    const online = await store.online(TECHNICAL_SET, 'BTC/USD', candles[499]!.windowEnd);
    assert.equal(online!.vector.windowEnd, candles[499]!.windowEnd);
    assert.equal(online!.vector.ready, true);
    // A second writer group re-reads the whole topic (as after losing its offsets): upserts, no duplicates.
    const again = new FeatureWriter(bus, store, 'feature-writer-2');
    await writer.stop();
    await again.start();
    await again.caughtUp();
    assert.equal(await store.count(TECHNICAL_SET), 500);
    await again.stop();
    await features.stop();
    await store.close();
  });

  it('with news: stores per-coin sentiment as of each candle end, equal to the batch computation, from signals arriving later', async () => {
    const candles: Candle[] = await bitstampCandleRecords(240);
    const t0 = candles[0]!.windowEnd;
    const signal = (i: number, coin: string, score: number, at: number) =>
      newsSignal(`n${i}`, coin, score, at, at - 600_000);
    // BTC signals before the first candle, inside the span, and one ETH signal that must not count for BTC/USD.
    const signals = [
      signal(1, 'BTC', 0.8, t0 - 3_600_000),
      signal(2, 'BTC', -0.5, t0 + 30 * 60_000 + 17),
      signal(3, 'ETH', 1, t0 + 10 * 60_000),
      signal(4, 'BTC', 0.2, t0 + 120 * 60_000),
      // Available at minute 50 but reaches the writer only after minute 100 was written: counts from then on.
      signal(5, 'BTC', 0.4, t0 + 50 * 60_000),
    ];
    const bus = new InProcessBus();
    const store = await DuckDbFeatureStore.open(':memory:');
    const features = new FeatureService(bus);
    await bus.ensureTopics([topics.newsSignals]);
    await bus.publish(topics.newsSignals, signals.slice(0, 2));
    const writer = new FeatureWriter(bus, store, 'feature-writer', { news: true });
    await features.start();
    await writer.start();
    // The first 100 candles, then the rest of the signals (as if they arrived while the writer ran), then the rest.
    await bus.publish(topics.candles, candles.slice(0, 100));
    await features.caughtUp();
    await writer.caughtUp();
    await bus.publish(topics.newsSignals, signals.slice(2));
    await writer.caughtUp();
    await bus.publish(topics.candles, candles.slice(100));
    await features.caughtUp();
    await writer.caughtUp();
    assert.equal(writer.stats.signals, 5);
    const stored = await store.history(NEWS_SET, 'BTC/USD', 0, Number.MAX_SAFE_INTEGER);
    assert.equal(stored.length, 240);
    const btc = signals.filter((s) => s.coin === 'BTC');
    const before = new NewsFeatures(btc.filter((s) => s.newsId !== 'n5'));
    const all = new NewsFeatures(btc);
    const written = candles[99]!.windowEnd;
    for (const row of stored) {
      const want = row.windowEnd <= written ? before.at(row.windowEnd) : all.at(row.windowEnd);
      assert.equal(row.values.length, want.length);
      for (const [k, v] of row.values.entries()) {
        const ok = v === null ? want[k] === null : Math.abs(v - want[k]!) < 1e-9;
        assert.ok(ok, `${row.windowEnd} col ${k}: ${v} vs ${want[k]}`);
      }
    }
    const after = stored.find((r) => r.windowEnd >= t0 + 120 * 60_000)!;
    assert.equal(after.values[4], 4, 'four BTC signals within 24 h, the ETH one not counted');
    await writer.stop();
    await features.stop();
    await store.close();
  });

  // A news item on `news` twice (a topic written by a news service before it read its tail on start, or two of them)
  // is scored twice: counted twice here, the streamed rows differed from the batch computation's, which has it once.
  it('with news: a signal of an item already counted (same news id and coin) is not counted again', async () => {
    const candles: Candle[] = await bitstampCandleRecords(120);
    const t0 = candles[0]!.windowEnd;
    const first = newsSignal('n1', 'BTC', 0.8, t0 + 10 * 60_000, t0);
    const again = { ...first, availableAt: t0 + 70 * 60_000 }; // the same article, fetched again an hour later
    const bus = new InProcessBus();
    const store = await DuckDbFeatureStore.open(':memory:');
    const features = new FeatureService(bus);
    await bus.ensureTopics([topics.newsSignals]);
    await bus.publish(topics.newsSignals, [first, again]);
    const writer = new FeatureWriter(bus, store, 'feature-writer', { news: true });
    await features.start();
    await writer.start();
    await bus.publish(topics.candles, candles);
    await features.caughtUp();
    await writer.caughtUp();
    const stored = await store.history(NEWS_SET, 'BTC/USD', 0, Number.MAX_SAFE_INTEGER);
    const want = new NewsFeatures([first]);
    for (const row of stored)
      assert.deepEqual(
        row.values,
        want.at(row.windowEnd),
        `the row of ${new Date(row.windowEnd).toISOString()}`,
      );
    assert.equal(stored.at(-1)!.values[4], 1, 'one BTC article within 24 h');
    assert.equal(writer.stats.signals, 1);
    await writer.stop();
    await features.stop();
    await store.close();
  });

  it('holding news (a replay faster than the LLM): rows wait for newsKnownUntil and equal the batch computation, late signals included', async () => {
    const candles: Candle[] = await bitstampCandleRecords(180);
    const t0 = candles[0]!.windowEnd;
    const signal = (i: number, score: number, at: number) =>
      newsSignal(`n${i}`, 'BTC', score, at, at - 60_000);
    const signals = [signal(1, 0.6, t0 + 5 * 60_000), signal(2, -0.4, t0 + 40 * 60_000)];
    const bus = new InProcessBus();
    const store = await DuckDbFeatureStore.open(':memory:');
    const features = new FeatureService(bus);
    const writer = new FeatureWriter(bus, store, 'feature-writer', { news: true, holdNews: true });
    await features.start();
    await writer.start();
    // Every candle is written before the signals are scored (the market path ran ahead of the LLM).
    await bus.publish(topics.candles, candles);
    await features.caughtUp();
    await writer.caughtUp();
    assert.equal(await store.count(TECHNICAL_SET), 180, 'technical rows are never held');
    assert.equal(
      await store.count(NEWS_SET),
      0,
      'news rows wait until the signals up to their time are known',
    );
    // The first signal is scored: rows up to minute 30 may go.
    await bus.publish(topics.newsSignals, signals.slice(0, 1));
    await writer.newsCaughtUp();
    await writer.newsKnownUntil(t0 + 30 * 60_000);
    assert.equal(await store.count(NEWS_SET), 31);
    await bus.publish(topics.newsSignals, signals.slice(1));
    await writer.newsCaughtUp();
    await writer.newsKnownUntil(Number.POSITIVE_INFINITY);
    assert.equal(writer.stats.newsRows, 180);
    const stored = await store.history(NEWS_SET, 'BTC/USD', 0, Number.MAX_SAFE_INTEGER);
    const want = new NewsFeatures(signals);
    for (const row of stored) {
      const w = want.at(row.windowEnd);
      for (const [k, v] of row.values.entries())
        assert.ok(v === null ? w[k] === null : Math.abs(v - w[k]!) < 1e-9, `${row.windowEnd} col ${k}`);
    }
    assert.equal(stored.at(-1)!.values[4], 2, 'both signals counted, the late one included');
    await writer.stop();
    await features.stop();
    await store.close();
  });
});

describe('FeatureWriter: a failed news write', () => {
  const signalsFor = (t0: number) =>
    [5, 40, 90].map((m, i) =>
      newsSignal(`n${i}`, 'BTC', i % 2 === 0 ? 0.6 : -0.4, t0 + m * 60_000, t0 + (m - 1) * 60_000),
    );
  /** A DuckDB store whose next news write fails once (a full disk, a restarting database). */
  const failingOnce = async () => {
    const store = await DuckDbFeatureStore.open(':memory:');
    let fail = false;
    const write = store.write.bind(store);
    store.write = async (set, rows) => {
      if (set.name === NEWS_SET.name && fail) {
        fail = false;
        throw new Error('injected: the store is away');
      }
      return write(set, rows);
    };
    return { store, failNext: () => (fail = true) };
  };
  const assertNewsRows = async (store: DuckDbFeatureStore, signals: NewsSignal[], n: number) => {
    const stored = await store.history(NEWS_SET, 'BTC/USD', 0, Number.MAX_SAFE_INTEGER);
    assert.equal(stored.length, n, 'every news row stored once');
    const want = new NewsFeatures(signals);
    for (const row of stored) {
      const w = want.at(row.windowEnd);
      for (const [k, v] of row.values.entries())
        assert.ok(
          v === null ? w[k] === null : Math.abs(v - w[k]!) < 1e-9,
          `${row.windowEnd} col ${k}: ${v} vs ${w[k]}`,
        );
    }
  };

  // The technical rows of a batch are committed before its news rows: when the news write failed, they were stored but
  // not counted, and `cryptocast run` stopping there (a full disk) reported fewer feature rows than the file held.
  it('streaming: the re-delivered batch writes exactly the rows that failed; each row counted once, when stored', async () => {
    const candles: Candle[] = await bitstampCandleRecords(150);
    const signals = signalsFor(candles[0]!.windowEnd);
    const atFailure: { counted: number; stored: Promise<number> }[] = [];
    let writer: FeatureWriter | undefined;
    const bus = new InProcessBus({
      // Asked at once: the store runs its calls in order, and the batch comes again only after a back-off.
      onHandlerFailure: () =>
        atFailure.push({ counted: writer!.stats.written, stored: store.count(TECHNICAL_SET) }),
    });
    const { store, failNext } = await failingOnce();
    await bus.ensureTopics([topics.newsSignals]);
    await bus.publish(topics.newsSignals, signals);
    const features = new FeatureService(bus);
    writer = new FeatureWriter(bus, store, 'feature-writer', { news: true });
    await features.start();
    await writer.start();
    await bus.publish(topics.candles, candles.slice(0, 60));
    await features.caughtUp();
    await writer.caughtUp();
    failNext();
    await bus.publish(topics.candles, candles.slice(60));
    await features.caughtUp();
    await writer.caughtUp();
    await assertNewsRows(store, signals, 150);
    assert.equal(atFailure.length, 1);
    assert.equal(
      atFailure[0]!.counted,
      await atFailure[0]!.stored,
      'the rows stored before the failure, counted',
    );
    assert.deepEqual([writer.stats.written, writer.stats.newsRows], [150, 150], 'none counted twice');
    await writer.stop();
    await features.stop();
    await store.close();
  });

  it('holding news: the call fails, the rows stay held, and the next call writes them', async () => {
    const candles: Candle[] = await bitstampCandleRecords(150);
    const signals = signalsFor(candles[0]!.windowEnd);
    const bus = new InProcessBus();
    const { store, failNext } = await failingOnce();
    const features = new FeatureService(bus);
    const writer = new FeatureWriter(bus, store, 'feature-writer', { news: true, holdNews: true });
    await features.start();
    await writer.start();
    await bus.publish(topics.candles, candles);
    await features.caughtUp();
    await writer.caughtUp();
    await bus.publish(topics.newsSignals, signals);
    await writer.newsCaughtUp();
    await writer.newsKnownUntil(candles[29]!.windowEnd);
    failNext();
    await assert.rejects(writer.newsKnownUntil(candles[99]!.windowEnd), /injected/);
    await writer.caughtUp(); // settles: a failed write does not leave the chain rejected
    await writer.newsKnownUntil(Number.POSITIVE_INFINITY);
    assert.equal(writer.stats.newsRows, 150);
    await assertNewsRows(store, signals, 150);
    await writer.stop();
    await features.stop();
    await store.close();
  });
});

describe('FeatureWriter: replicas', () => {
  it('with news: every replica of one group reads every signal (news.signals has one partition)', async () => {
    const bus = new InProcessBus();
    const stores = [await DuckDbFeatureStore.open(':memory:'), await DuckDbFeatureStore.open(':memory:')];
    const writers = stores.map((s) => new FeatureWriter(bus, s, 'feature-writer', { news: true }));
    for (const w of writers) await w.start();
    const at = Date.UTC(2025, 0, 1);
    await bus.publish(
      topics.newsSignals,
      [1, 2, 3].map((i) => newsSignal(`n${i}`, 'BTC', 0.5, at, at)),
    );
    for (const w of writers) await w.newsCaughtUp();
    assert.deepEqual(
      writers.map((w) => w.stats.signals),
      [3, 3],
    );
    for (const w of writers) await w.stop();
    for (const s of stores) await s.close();
  });
});

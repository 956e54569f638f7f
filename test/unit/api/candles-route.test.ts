import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CandlesFeed } from '../../../src/api/candles-feed.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { buildApi } from '../../../src/api/server.ts';
import type { CandlesTable } from '../../../src/candles/store/candles-table.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { candle } from '../../support/factories.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 1, 12, 0);
const rows: Candle[] = Array.from({ length: 200 }, (_, i) => candle({ windowEnd: T0 + i * MIN }));
/** The table's paging as the stores do it (windowEnd in [from, to), after `after`, `limit` rows). */
const table = {
  async page(q: { series: string; from: number; to: number; limit?: number; after?: number }) {
    return rows
      .filter(
        (c) =>
          c.pair === q.series &&
          c.windowEnd >= q.from &&
          c.windowEnd < q.to &&
          (q.after === undefined || c.windowEnd > q.after),
      )
      .slice(0, q.limit ?? 1000);
  },
  async latest() {
    return rows.at(-1);
  },
} as unknown as CandlesTable;

// A page that ended exactly at the last candle said `next` all the same, and led to an empty page; the OpenAPI
// document said "default 100" where the route gives 1000.
test('/v1/candles: next is null on the last page, also a full one; the documented default is the one applied', async () => {
  const latest = new LatestPredictions();
  latest.markReady();
  const app = buildApi({
    latest,
    store: new MemoryPredictionsStore(),
    candles: { table, feed: new CandlesFeed(table) },
  });
  try {
    const range = `pair=${encodeURIComponent(rows[0]!.pair.replace('/', '-'))}&from=${T0}&to=${T0 + 86_400_000}`;
    const pages: number[] = [];
    let after: number | null = null;
    do {
      const r: { items: unknown[]; next: number | null } = (
        await app.inject(`/v1/candles?${range}&limit=100${after === null ? '' : `&after=${after}`}`)
      ).json();
      pages.push(r.items.length);
      after = r.next;
    } while (after !== null && pages.length < 5);
    assert.deepEqual(pages, [100, 100]);
    const all = (await app.inject(`/v1/candles?${range}`)).json();
    assert.equal(all.items.length, 200);
    const doc = app.swagger() as {
      paths: Record<string, { get: { parameters: { name: string; description?: string }[] } }>;
    };
    const limit = doc.paths['/v1/candles']!.get.parameters.find((p) => p.name === 'limit')!;
    assert.match(limit.description ?? '', /default 1000/);
  } finally {
    await app.close();
  }
});

// h128's review: candles stored by `cryptocast run` carry its restart bookkeeping (`closingTradeIds`, `refillFrom`:
// up to thousands of trade ids each), which /v1/candles and the `candles` channel served to every reader.
test('/v1/candles and the candles channel leave out the restart bookkeeping of `run`', async () => {
  const kept = rows.slice(0, 3).map((c) => ({
    ...c,
    closingTradeIds: ['1', '2'],
    refillFrom: { asOf: c.windowEnd, lastId: 2, lastTs: c.windowEnd - 1, recentIds: ['1', '2'] },
  }));
  const withBookkeeping = {
    async page() {
      return kept;
    },
    async latest() {
      return kept.at(-1);
    },
  } as unknown as CandlesTable;
  const latest = new LatestPredictions();
  latest.markReady();
  const feed = new CandlesFeed(withBookkeeping);
  const app = buildApi({
    latest,
    store: new MemoryPredictionsStore(),
    candles: { table: withBookkeeping, feed },
  });
  try {
    const pair = encodeURIComponent(kept[0]!.pair.replace('/', '-'));
    const r = (await app.inject(`/v1/candles?pair=${pair}&from=${T0}&to=${T0 + 86_400_000}`)).json();
    assert.equal(r.items.length, 3);
    for (const item of r.items) {
      assert.equal(item.closingTradeIds, undefined);
      assert.equal(item.refillFrom, undefined);
      assert.equal(item.close, kept[0]!.close);
    }
    const frame = JSON.parse(feed.makeEntry(kept[0]!).frame.toString());
    assert.equal(frame.type, 'candle');
    assert.equal(frame.data.refillFrom, undefined);
    assert.equal(frame.data.closingTradeIds, undefined);
    assert.equal(frame.data.windowEnd, kept[0]!.windowEnd);
  } finally {
    await app.close();
  }
});

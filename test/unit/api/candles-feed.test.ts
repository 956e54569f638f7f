import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CandlesFeed } from '../../../src/api/candles-feed.ts';
import type { CandlesTable } from '../../../src/candles/store/candles-table.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { candle, MIN, T0 } from '../../support/factories.ts';

// Under `--late-policy revise` a minute is published again with late trades (revision + 1). The feed replaced it
// silently, as a re-publication: the WebSocket never sent it, and the dashboard drew the first emission until a reload
// (the store, and so the first paint, keeps the revision).
test('candles feed: a revision is sent to subscribers, and again to one resuming after it; an older one read again is not', () => {
  const feed = new CandlesFeed({} as CandlesTable);
  feed.markReady();
  const sent: Candle[] = [];
  feed.onRecord((e) => sent.push(e.p));
  const first = candle({ windowEnd: T0 + MIN, close: 100 });
  const next = candle({ windowEnd: T0 + 2 * MIN, close: 101 });
  feed.add(first);
  feed.add(next);
  const revised: Candle = { ...first, close: 120, high: 120, revision: 1 };
  feed.add(revised);
  feed.add(first); // the first emission read again (a restart's read of the topic): stale
  feed.add(revised); // the revision re-published: already sent
  assert.deepEqual(
    sent.map((c) => [c.windowEnd - T0, c.close, c.revision]),
    [
      [MIN, 100, 0],
      [2 * MIN, 101, 0],
      [MIN, 120, 1],
    ],
  );
  // A client away since the newest minute resumes from it: the revision made meanwhile comes again.
  const resumed = feed.recent(first.pair, next.windowEnd)!;
  assert.deepEqual(
    resumed.map((e) => [e.p.windowEnd - T0, e.p.close]),
    [[MIN, 120]],
  );
  assert.equal(feed.latest(first.pair)?.windowEnd, next.windowEnd);
});

import type { CandlesTable } from '../candles/store/candles-table.ts';
import { type Candle, publicCandle } from '../schemas/candle.ts';
import { topics } from '../schemas/topics.ts';
import { Feed, type FeedOptions } from './feed.ts';

/** The `candles` WebSocket channel: live candles per pair (resume from the candles store), for the dashboard. */
export class CandlesFeed extends Feed<Candle> {
  constructor(table: CandlesTable, o: FeedOptions = {}) {
    super(
      {
        channel: 'candles',
        frameType: 'candle',
        topic: topics.candles,
        key: (c) => `${c.pair}|${c.windowEnd}`,
        // A minute published again with late trades (`--late-policy revise`: revision + 1) is news, whatever its
        // windowEnd: the store keeps the revision, and the dashboard drew the first emission until a reload (a
        // re-publication, replaced silently). An older revision read again (a restart's read of the topic) is stale.
        revision: (next, held) =>
          next.revision > held.revision ? true : next.revision < held.revision ? false : undefined,
        tiebreak: () => 0,
        view: publicCandle,
        newer: (a, b) =>
          a.windowEnd > b.windowEnd || (a.windowEnd === b.windowEnd && a.revision >= b.revision),
        history: (pair, from, to, opts) =>
          table.page({ series: pair, from, to, limit: opts.limit, after: opts.after }),
        latestInStore: (pair) => table.latest(pair),
      },
      o,
    );
  }
}

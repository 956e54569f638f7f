import type { CandlesTable } from '../candles/store/candles-table.ts';
import type { Candle } from '../schemas/candle.ts';
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
        tiebreak: () => 0,
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

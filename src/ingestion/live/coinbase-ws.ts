import { coinbaseProduct } from '../symbols.ts';
import {
  DEFAULT_MAX_REFILL_PAGES,
  type ExchangeAdapter,
  keepingFetchedPages,
  type LiveSourceOptions,
  REFILL_MAX_RETRY_AFTER_MS,
  type RefillRequest,
  type RefillResult,
  seekLimit,
} from './adapter.ts';
import {
  type CoinbaseSideMeaning,
  DEFAULT_COINBASE_SIDE_MEANING,
  parseCoinbaseFrame,
} from './coinbase-parser.ts';
import {
  COINBASE_PAGE_LIMIT,
  COINBASE_REST_URL,
  type CoinbaseTradesPage,
  fetchCoinbaseTrades,
} from './coinbase-trades-api.ts';
import { assertUrl, LiveTradeSource } from './live-source.ts';

export const COINBASE_WS_URL = 'wss://advanced-trade-ws.coinbase.com';

export interface CoinbaseWsOptions extends LiveSourceOptions {
  /** Default `wss://advanced-trade-ws.coinbase.com`. */
  wsUrl?: string;
  /** REST base for refills, default `https://api.coinbase.com`. */
  restUrl?: string;
  /** What `market_trades.side` means (see `CoinbaseSideMeaning`); default `maker`. */
  sideMeaning?: CoinbaseSideMeaning;
}

/**
 * Coinbase Advanced Trade `market_trades` plus `heartbeats` (channels close after 60–90 s without updates,
 * and the counter reveals lost messages). Trade ids are not documented as consecutive, so gaps are found from
 * `sequence_num` and `heartbeat_counter` jumps and from reconnects, and refilled by time window from the
 * public market-trades endpoint (see coinbase-trades-api.ts for what is unconfirmed about it).
 */
export class CoinbaseWsSource extends LiveTradeSource {
  constructor(options: CoinbaseWsOptions) {
    super(coinbaseAdapter(options), options);
  }
}

export function coinbaseAdapter(o: CoinbaseWsOptions): ExchangeAdapter {
  const rest = o.restUrl ?? COINBASE_REST_URL;
  assertUrl(rest, ['http:', 'https:']);
  const side = o.sideMeaning ?? DEFAULT_COINBASE_SIDE_MEANING;
  return {
    exchange: 'coinbase',
    url: o.wsUrl ?? COINBASE_WS_URL,
    contiguousIds: false,
    acksNamePairs: true,
    // Heartbeats arrive every second.
    idleTimeoutMs: 15_000,
    // One channel per subscribe message (the documented shape names a single `channel`).
    subscribeFrames: (pairs) => {
      const product_ids = pairs.map(coinbaseProduct);
      return [
        JSON.stringify({ type: 'subscribe', product_ids, channel: 'market_trades' }),
        JSON.stringify({ type: 'subscribe', product_ids, channel: 'heartbeats' }),
      ];
    },
    parse: (text, ts) => parseCoinbaseFrame(text, ts, side),
    refill: (req) => coinbaseRefill(rest, o, side, req),
  };
}

/**
 * The window [sinceTs − 1 s, untilTs or now]. The endpoint answers newest first, and a window holding more than a page
 * gives its newest page: the refill walks back (each next page ends at the second of the last one's oldest row) to the
 * window's start, keeping only where each page ended and the newest page, then asks for the pages walked past again,
 * oldest first, handing each over as it comes (`onPage`): delivered in fetch order the candle stage's clock would jump
 * to the newest page and dead-letter the older ones as late, and kept to the end they held every pair's frames behind
 * the whole refill, its memory growing with the outage. Both walks are read a few pages a turn (`maxPages`, going on
 * from `RefillResult.more`). Incomplete where a page cannot move further back (more than a page in one second) or the
 * walk's budget is spent (`seekLimit`): what is older is not refilled.
 */
async function coinbaseRefill(
  rest: string,
  o: CoinbaseWsOptions,
  side: CoinbaseSideMeaning,
  req: RefillRequest,
): Promise<RefillResult> {
  const out: RefillResult = { trades: [], rejects: [], complete: false };
  const limit = o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES;
  const maxPages = req.maxPages ?? limit;
  const at =
    req.goOnFrom instanceof CoinbaseRefillPosition
      ? req.goOnFrom
      : new CoinbaseRefillPosition(
          Math.floor((req.sinceTs - 1_000) / 1000),
          Math.ceil((req.untilTs ?? Date.now()) / 1000),
        );
  const pageEndingAt = (endSec: number) =>
    fetchCoinbaseTrades(rest, req.pair, { startSec: at.startSec, endSec }, side, {
      signal: req.signal,
      log: req.log,
      backoff: o.restBackoff,
      retries: req.retries ?? o.restRetries,
      maxRetryAfterMs: REFILL_MAX_RETRY_AFTER_MS,
    });
  const hand = async (page: CoinbaseTradesPage): Promise<void> => {
    if (req.onPage === undefined) {
      out.trades.push(...page.trades);
      out.rejects.push(...page.rejects);
      return;
    }
    await req.onPage({ trades: page.trades, rejects: page.rejects });
    for (const t of page.trades) at.handedUpTo = Math.max(at.handedUpTo ?? t.tradeTs, t.tradeTs);
  };
  let pages = 0;
  await keepingFetchedPages(out, req.signal, async () => {
    while (at.walked !== undefined) {
      if (pages >= maxPages) {
        out.more = at;
        return;
      }
      const r = await pageEndingAt(at.endSec);
      pages++;
      at.pagesRead++;
      const first = at.newest === undefined;
      if (first) at.newest = r;
      const next = r.oldestRowTs === undefined ? undefined : Math.ceil(r.oldestRowTs / 1000);
      const found =
        r.trades.length + r.rejects.length < COINBASE_PAGE_LIMIT ||
        (next !== undefined && next <= at.startSec);
      // No readable time to go back from, more than a page in one second, or the walk's budget spent: the older part
      // cannot be reached. Otherwise walked past (back before its oldest row, parsed or not), read again later.
      const stuck = !found && (next === undefined || next >= at.endSec || at.pagesRead >= seekLimit(limit));
      if (!found && !stuck) {
        if (!first) at.walked.push(at.endSec);
        at.endSec = next!;
        continue;
      }
      if (stuck) at.complete = false;
      // The oldest page wanted (or reachable): handed over first, then the ones walked past, oldest first.
      at.forward = at.walked;
      at.walked = undefined;
      if (first) at.newest = undefined; // it is the whole refill
      await hand(r);
    }
    for (let end = at.forward.pop(); end !== undefined; end = at.forward.pop()) {
      if (pages >= maxPages) {
        at.forward.push(end);
        out.more = at;
        return;
      }
      const r = await pageEndingAt(end);
      pages++;
      await hand(r);
    }
    if (at.newest !== undefined) await hand(at.newest);
    at.newest = undefined;
    out.complete = at.complete;
  });
  out.handedUpTo = at.handedUpTo;
  // Failed while walking back: nothing handed over yet; the newest page, kept, is delivered (the rest asked for again).
  if (out.error !== undefined && at.walked !== undefined && at.newest !== undefined) {
    out.trades.push(...at.newest.trades);
    out.rejects.push(...at.newest.rejects);
  }
  return out;
}

/**
 * Where a Coinbase refill stands between turns (`RefillResult.more`): walking back (`walked`: the end of each page
 * walked past but the newest, in the order walked), or reading forward (`forward`: those still to read again, the
 * oldest last); the newest page, kept to be handed over last.
 */
class CoinbaseRefillPosition {
  readonly startSec: number;
  /** The end of the next page back. */
  endSec: number;
  walked: number[] | undefined = [];
  forward: number[] = [];
  newest: CoinbaseTradesPage | undefined;
  /** False where the walk back could not reach the window's start. */
  complete = true;
  pagesRead = 0;
  handedUpTo: number | undefined;
  constructor(startSec: number, endSec: number) {
    this.startSec = startSec;
    this.endSec = endSec;
  }
}

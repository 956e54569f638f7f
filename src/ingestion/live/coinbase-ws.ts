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
 * from `RefillResult.more`). A page all within its window's last second (more than a page in one second) cannot be
 * followed by one ending inside that second: the walk steps past it, the rest of that second lost (said and counted,
 * `saySteppedPast`); it used to stop there, every trade before that second unfetched. Incomplete then, or where the
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
      if (at.steppedPast !== undefined) out.lost = (out.lost ?? 0) + saySteppedPast(req, at.steppedPast, r);
      at.steppedPast = undefined;
      if (at.endedAtOwnSecond !== undefined) {
        const lost = sayOwnSecondGap(req, at.endedAtOwnSecond, r);
        if (lost > 0) {
          out.lost = (out.lost ?? 0) + lost;
          at.complete = false;
        }
      }
      at.endedAtOwnSecond = undefined;
      const next = r.oldestRowTs === undefined ? undefined : pageBackEnd(r.oldestRowTs, at.endSec);
      const found =
        r.trades.length + r.rejects.length < COINBASE_PAGE_LIMIT ||
        (next !== undefined && next <= at.startSec);
      // No readable time to go back from, or the walk's budget spent: the older part cannot be reached. Otherwise walked
      // past (back before its oldest row, parsed or not), read again later.
      const stuck = !found && (next === undefined || at.pagesRead >= seekLimit(limit));
      if (!found && !stuck) {
        if (!first) at.walked.push(at.endSec);
        if (next! >= at.endSec) {
          // A full page within the window's last second: no window by whole seconds ends inside it, and the walk used
          // to stop here, every trade before it unfetched. Stepped past (the next window ends the second before), the
          // second's older trades are lost: said, and counted, at the next page (`saySteppedPast`).
          at.steppedPast = { second: at.endSec, oldestIdFetched: lowestId(r) };
          at.complete = false;
          at.endSec -= 1;
        } else {
          // Ended at the oldest row's own second: whole if `end` takes the second whole (as the local server), else the
          // part of that second before the row is skipped — checked by the ids at the next page (`sayOwnSecondGap`).
          if (next === Math.floor(r.oldestRowTs! / 1000))
            at.endedAtOwnSecond = { second: next, oldestIdFetched: lowestId(r), oldestRowTs: r.oldestRowTs! };
          at.endSec = next!;
        }
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
 * Where the page back before one whose oldest row is at `oldestMs` ends (whole seconds, as the endpoint takes them): the
 * second after that row's (`end` may be an instant, exclusive: unconfirmed), or, where that is the current page's own
 * end, the row's own second (a window holding that second's whole, if inclusive as the local server has it). Past
 * `endSec` still (it is the row's second): the page is all in its window's last second.
 */
function pageBackEnd(oldestMs: number, endSec: number): number {
  const after = Math.ceil(oldestMs / 1000);
  return after < endSec ? after : Math.floor(oldestMs / 1000);
}

/** A second of more than a page the walk back stepped past, and the lowest trade id it got of it. */
interface SteppedPast {
  second: number;
  oldestIdFetched: number | undefined;
}

/** The lowest numeric trade id of a page's trades. */
function lowestId(page: CoinbaseTradesPage): number | undefined {
  let low: number | undefined;
  for (const t of page.trades) {
    const id = Number(t.tradeId);
    if (Number.isSafeInteger(id)) low = Math.min(low ?? id, id);
  }
  return low;
}

/**
 * How many trade ids lie between the newest of `older` (a page back) and `s.oldestIdFetched` (the lowest of the page
 * after it), when both are known and the ids do not meet or overlap; else undefined.
 */
function idsBetween(s: SteppedPast, older: CoinbaseTradesPage): number | undefined {
  let newest: number | undefined;
  for (const t of older.trades) {
    const id = Number(t.tradeId);
    if (Number.isSafeInteger(id)) newest = Math.max(newest ?? id, id);
  }
  return s.oldestIdFetched !== undefined && newest !== undefined && s.oldestIdFetched > newest
    ? s.oldestIdFetched - newest - 1
    : undefined;
}

/**
 * Warns of a second stepped past, once the page before it (`older`) is read: how many of its trades were not fetched,
 * by the trade ids either side (Coinbase numbers a product's trades in sequence, not documented as consecutive: without
 * numeric ids on both sides the count is unknown, taken as 1). Returns the count.
 */
function saySteppedPast(req: RefillRequest, s: SteppedPast, older: CoinbaseTradesPage): number {
  const between = idsBetween(s, older);
  req.log.warn(
    {
      pair: req.pair,
      second: new Date(s.second * 1000).toISOString(),
      notFetched: between ?? 'unknown',
      oldestIdFetched: s.oldestIdFetched,
    },
    'refill: more than a page of trades in one second: its newest page fetched, the rest of that second cannot be asked for (windows of whole seconds); stepped past it to what is older',
  );
  return between ?? 1;
}

/**
 * After a page back that ended at the previous page's oldest row's own second (`pageBackEnd`): did the window take that
 * second whole? Whether `end` is read as a whole second or as an exclusive instant is not documented: read as an
 * instant, the trades of that second before the row were skipped without a word. Taken whole, the window holds the
 * previous page's oldest row itself (fewer than a page of rows lie after it within the second), so the page back has a
 * row at or after its time; without one, the second's start was skipped: said and counted — up to the trade ids
 * between (Coinbase's ids are not known to be contiguous: an upper bound; 1 without ids). Rows that failed to parse
 * count as rows (their times). Returns the count.
 */
function sayOwnSecondGap(
  req: RefillRequest,
  s: SteppedPast & { oldestRowTs: number },
  older: CoinbaseTradesPage,
): number {
  if (older.newestRowTs === undefined || older.newestRowTs >= s.oldestRowTs) return 0;
  // Ids that meet (none between) say nothing of what the skipped start of the second held.
  const between = idsBetween(s, older) || undefined;
  req.log.warn(
    {
      pair: req.pair,
      second: new Date(s.second * 1000).toISOString(),
      notFetched: between === undefined ? 'unknown' : `up to ${between}`,
      oldestIdFetched: s.oldestIdFetched,
    },
    'refill: a window ending at a second did not hold that second whole (the endpoint read its end as an instant): trades of that second before the newest page not fetched',
  );
  return between ?? 1;
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
  /** False where the walk back could not reach the window's start, or stepped past a second it could not page through. */
  complete = true;
  /** The walk just stepped past a second holding more than a page (`saySteppedPast` at the next page). */
  steppedPast: SteppedPast | undefined;
  /** The last page back ended at the previous page's oldest row's own second (`sayOwnSecondGap` at the next page). */
  endedAtOwnSecond: (SteppedPast & { oldestRowTs: number }) | undefined;
  pagesRead = 0;
  handedUpTo: number | undefined;
  constructor(startSec: number, endSec: number) {
    this.startSec = startSec;
    this.endSec = endSec;
  }
}

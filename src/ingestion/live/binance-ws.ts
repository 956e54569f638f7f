import type { Trade } from '../../schemas/trade.ts';
import { binanceStreamSymbol } from '../symbols.ts';
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
import { parseBinanceFrame } from './binance-parser.ts';
import {
  BINANCE_PAGE_LIMIT,
  BINANCE_REST_URL,
  type BinanceTradesPage,
  fetchBinanceTrades,
} from './binance-trades-api.ts';
import { assertUrl, LiveTradeSource } from './live-source.ts';

/** Combined-stream endpoint (events arrive as `{stream, data}`); streams are added with `SUBSCRIBE`. */
export const BINANCE_WS_URL = 'wss://stream.binance.com:9443/stream';

export interface BinanceWsOptions extends LiveSourceOptions {
  /** Default `wss://stream.binance.com:9443/stream` (or `wss://data-stream.binance.vision/stream`). */
  wsUrl?: string;
  /** REST base for refills, default `https://api.binance.com` (the data-api mirror lacks historicalTrades). */
  restUrl?: string;
  /** Sent as `X-MBX-APIKEY` with REST calls if set (older docs required it for historicalTrades). */
  apiKey?: string;
}

/**
 * Binance spot `<symbol>@trade` on the combined stream; pairs are canonical (`BTC/USDT` ↔ `btcusdt`). Trade
 * ids `t` are consecutive per symbol, so a jump is a gap; gaps and outages are refilled by id from
 * `historicalTrades`. The server pings every 20 s (answered by the socket); it has no heartbeat messages, so
 * liveness rests on trades and pings.
 */
export class BinanceWsSource extends LiveTradeSource {
  constructor(options: BinanceWsOptions) {
    super(binanceAdapter(options), options);
  }
}

export function binanceAdapter(o: BinanceWsOptions): ExchangeAdapter {
  const rest = o.restUrl ?? BINANCE_REST_URL;
  assertUrl(rest, ['http:', 'https:']);
  let id = 0;
  return {
    exchange: 'binance',
    url: o.wsUrl ?? BINANCE_WS_URL,
    contiguousIds: true,
    acksNamePairs: false,
    // Three missed 20 s pings (and no trade) ⇒ dead.
    idleTimeoutMs: 60_000,
    subscribeFrames: (pairs) => [
      JSON.stringify({
        method: 'SUBSCRIBE',
        params: pairs.map((p) => `${binanceStreamSymbol(p)}@trade`),
        id: ++id,
      }),
    ],
    parse: parseBinanceFrame,
    refill: (req) => binanceRefill(rest, o, req),
  };
}

async function binanceRefill(rest: string, o: BinanceWsOptions, req: RefillRequest): Promise<RefillResult> {
  const fetch = (fromId: number | undefined) =>
    fetchBinanceTrades(rest, req.pair, fromId, {
      signal: req.signal,
      log: req.log,
      backoff: o.restBackoff,
      retries: req.retries ?? o.restRetries,
      apiKey: o.apiKey,
      maxRetryAfterMs: REFILL_MAX_RETRY_AFTER_MS,
    });
  const out: RefillResult = { trades: [], rejects: [], complete: false };
  const limit = o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES;
  const maxPages = req.maxPages ?? limit;
  // Each page (ids above the last page's) is handed over as it comes, none kept (`onPage`): a long outage's refill used
  // to keep them all to its end (~0.3 KB a trade, 1,000 a page) and hold the connection's frames for all of them.
  const hand = async (page: BinanceTradesPage): Promise<void> => {
    if (req.onPage !== undefined) await req.onPage({ trades: page.trades, rejects: page.rejects });
    else {
      out.trades.push(...page.trades);
      out.rejects.push(...page.rejects);
    }
  };
  let at: BinanceRefillPosition | BinanceSeekPosition;
  if (req.goOnFrom instanceof BinanceRefillPosition || req.goOnFrom instanceof BinanceSeekPosition)
    at = req.goOnFrom;
  // No id to start from (no trade of the pair yet): walk back from the newest to the refill's start, then forward.
  else if (req.afterId === undefined) at = new BinanceSeekPosition();
  else at = new BinanceRefillPosition(req.afterId + 1);
  let pages = 0;
  await keepingFetchedPages(out, req.signal, async () => {
    while (at instanceof BinanceSeekPosition) {
      if (pages >= maxPages) {
        out.more = at;
        return;
      }
      const seek: BinanceSeekPosition = at;
      const r = await fetch(seek.fromId);
      pages++;
      seek.pagesRead++;
      const first = seek.fromId === undefined;
      if (first) seek.newest = r;
      const oldest = r.trades.reduce<Trade | undefined>(
        (m, t) => (m === undefined || Number(t.tradeId) < Number(m.tradeId) ? t : m),
        undefined,
      );
      // The start: a page reaching back before the refill's window, the symbol's first trade, or all its history.
      const found =
        r.trades.length + r.rejects.length < BINANCE_PAGE_LIMIT ||
        (oldest !== undefined && oldest.tradeTs < req.sinceTs) ||
        r.firstRowId === 0;
      // The walk's budget spent, or a full page without a row id to go back past: what is older is not refilled.
      const stuck = !found && (r.firstRowId === undefined || seek.pagesRead >= seekLimit(limit));
      if (found || stuck) {
        if (stuck) seek.complete = false;
        if (first) {
          // The newest page reaches back to the start (or is all there is): it is the whole refill.
          await hand(r);
          out.complete = seek.complete;
          return;
        }
        if (r.lastRowId === undefined) {
          // Nothing here to go forward from (rows without ids): the newest page, kept, is what there is.
          await hand(seek.newest!);
          return;
        }
        // This page is the oldest wanted: handed over first, then forward by id from past it, up to the present.
        await hand(r);
        at = new BinanceRefillPosition(r.lastRowId + 1, seek.complete, seek.newest);
        break;
      }
      // Walked past (read again on the way forward): back before its lowest row id, parsed or not. By the parsed trades
      // alone, a page of rows that all failed to parse had no oldest trade and was taken for the end.
      seek.fromId = Math.max(0, r.firstRowId! - BINANCE_PAGE_LIMIT);
    }
    // Forward by id from the last trade we have (or where the walk back ended), until the gap closes or the present is
    // reached.
    const fwd: BinanceRefillPosition = at;
    for (;;) {
      const kept = fwd.keptNewest();
      if (kept === undefined && pages >= maxPages) break;
      let r: BinanceTradesPage;
      if (kept !== undefined) r = kept;
      else {
        r = await fetch(fwd.fromId);
        pages++;
      }
      await hand(r);
      // From the rows' ids, parsed or not: a page of rows that all failed to parse (dead-lettered as rejects) is gone
      // past too. By the trades alone it gave -1, and the next page was asked from id 0, the symbol's first trade.
      const maxId = r.trades.reduce((m, t) => Math.max(m, Number(t.tradeId)), r.lastRowId ?? -1);
      const closed = req.untilId !== undefined && maxId >= req.untilId - 1;
      // A short page (counting unusable rows) means the present is reached.
      if (r.trades.length + r.rejects.length < BINANCE_PAGE_LIMIT || closed) {
        out.complete = fwd.complete;
        return;
      }
      fwd.fromId = maxId + 1;
    }
    // Stopped at maxPages: the next turn goes on from the next id (`RefillResult.more`).
    out.more = fwd;
  });
  // Failed while walking back: nothing handed over yet; the newest page, kept, is delivered (the rest counted).
  if (out.error !== undefined && at instanceof BinanceSeekPosition && at.newest !== undefined) {
    out.trades.push(...at.newest.trades);
    out.rejects.push(...at.newest.rejects);
  }
  return out;
}

/** Where a forward Binance refill stopped at its page limit: the next id to ask for (`RefillResult.more`). */
class BinanceRefillPosition {
  fromId: number;
  /** False when the walk back that started it could not reach the refill's start. */
  readonly complete: boolean;
  /**
   * The newest page of the walk back that started it, kept from the walk: handed over when the way forward reaches it
   * instead of asked for again. Asked again, it cost one call more than the walk's reach was sized for (`seekLimit`
   * counts the newest page once), so a walk that used its whole reach ended a page short of the present, the newest
   * page — already in hand — left to the stream's next trade (`refill-reach.test.ts`).
   */
  private newest: BinanceTradesPage | undefined;
  constructor(fromId: number, complete = true, newest?: BinanceTradesPage) {
    this.fromId = fromId;
    this.complete = complete;
    this.newest = newest;
  }

  /** The walk's newest page, once, if the next id to ask for is in it. */
  keptNewest(): BinanceTradesPage | undefined {
    const n = this.newest;
    if (n?.firstRowId === undefined || n.lastRowId === undefined) return undefined;
    if (this.fromId < n.firstRowId || this.fromId > n.lastRowId) return undefined;
    this.newest = undefined;
    return n;
  }
}

/**
 * A refill of a pair with no trade yet (no id to page forward from), walking back from the most recent trades until a
 * page is older than `sinceTs`, a few pages a turn: the pages walked past are not kept (they are read again forward,
 * oldest first, as the candle stage needs them) but for the newest, delivered if the walk fails.
 */
class BinanceSeekPosition {
  /** The next page back (undefined: the most recent trades). */
  fromId: number | undefined;
  newest: BinanceTradesPage | undefined;
  pagesRead = 0;
  complete = true;
}

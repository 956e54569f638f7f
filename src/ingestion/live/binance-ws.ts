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
} from './adapter.ts';
import { parseBinanceFrame } from './binance-parser.ts';
import { BINANCE_PAGE_LIMIT, BINANCE_REST_URL, fetchBinanceTrades } from './binance-trades-api.ts';
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
  const afterId = req.afterId;
  // No id to start from: paged backwards, every page kept to the end and sorted (`onPage` is for forward pages), read
  // whole — not in turns.
  if (afterId === undefined)
    return keepingFetchedPages(out, req.signal, () =>
      backwardsFrom(req, fetch, o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES, out),
    );
  const maxPages = req.maxPages ?? o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES;
  let from = req.goOnFrom instanceof BinanceRefillPosition ? req.goOnFrom.fromId : afterId + 1;
  return keepingFetchedPages(out, req.signal, async () => {
    // Forward by id from the last trade we have, until the gap closes or the present is reached. Each page (ids above
    // the last page's) is handed over as it comes, none kept (`onPage`): a long outage's refill used to keep them all
    // to its end (~0.3 KB a trade, 1,000 a page) and hold the connection's frames for all of them.
    for (let page = 0; page < maxPages; page++) {
      const r = await fetch(from);
      if (req.onPage !== undefined) await req.onPage({ trades: r.trades, rejects: r.rejects });
      else {
        out.trades.push(...r.trades);
        out.rejects.push(...r.rejects);
      }
      // From the rows' ids, parsed or not: a page of rows that all failed to parse (dead-lettered as rejects) is gone
      // past too. By the trades alone it gave -1, and the next page was asked from id 0, the symbol's first trade.
      const maxId = r.trades.reduce((m, t) => Math.max(m, Number(t.tradeId)), r.lastRowId ?? -1);
      const closed = req.untilId !== undefined && maxId >= req.untilId - 1;
      // A short page (counting unusable rows) means the present is reached.
      if (r.trades.length + r.rejects.length < BINANCE_PAGE_LIMIT || closed) {
        out.complete = true;
        break;
      }
      from = maxId + 1;
    }
    // Stopped at maxPages: the next turn goes on from the next id (`RefillResult.more`).
    if (!out.complete) out.more = new BinanceRefillPosition(from);
  });
}

/** Where a forward Binance refill stopped at its page limit: the next id to ask for (`RefillResult.more`). */
class BinanceRefillPosition {
  readonly fromId: number;
  constructor(fromId: number) {
    this.fromId = fromId;
  }
}

/**
 * No trade of this pair seen yet (an outage before its first trade): there is no id to start from, so page
 * backwards from the most recent trades until one is older than `sinceTs`.
 */
async function backwardsFrom(
  req: RefillRequest,
  fetch: (fromId: number | undefined) => Promise<{ trades: Trade[]; rejects: string[] }>,
  maxPages: number,
  out: RefillResult,
): Promise<RefillResult> {
  let from: number | undefined;
  for (let page = 0; page < maxPages; page++) {
    const r = await fetch(from);
    out.trades.push(...r.trades);
    out.rejects.push(...r.rejects);
    const oldest = r.trades.reduce<Trade | undefined>(
      (o, t) => (o === undefined || Number(t.tradeId) < Number(o.tradeId) ? t : o),
      undefined,
    );
    if (oldest === undefined || oldest.tradeTs < req.sinceTs || Number(oldest.tradeId) === 0) {
      out.complete = true;
      break;
    }
    from = Math.max(0, Number(oldest.tradeId) - BINANCE_PAGE_LIMIT);
  }
  return out;
}

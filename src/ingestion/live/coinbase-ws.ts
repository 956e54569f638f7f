import { coinbaseProduct } from '../symbols.ts';
import {
  type ExchangeAdapter,
  keepingFetchedPages,
  type LiveSourceOptions,
  REFILL_MAX_RETRY_AFTER_MS,
  type RefillRequest,
  type RefillResult,
} from './adapter.ts';
import {
  type CoinbaseSideMeaning,
  DEFAULT_COINBASE_SIDE_MEANING,
  parseCoinbaseFrame,
} from './coinbase-parser.ts';
import { COINBASE_PAGE_LIMIT, COINBASE_REST_URL, fetchCoinbaseTrades } from './coinbase-trades-api.ts';
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
 * The window [sinceTs − 1 s, untilTs or now], newest first: when a page is full, the next asks for what is older than
 * its oldest trade. Stops incomplete if a page cannot move further back (more than a page in one second).
 */
async function coinbaseRefill(
  rest: string,
  o: CoinbaseWsOptions,
  side: CoinbaseSideMeaning,
  req: RefillRequest,
): Promise<RefillResult> {
  const out: RefillResult = { trades: [], rejects: [], complete: false };
  const startSec = Math.floor((req.sinceTs - 1_000) / 1000);
  let endSec = Math.ceil((req.untilTs ?? Date.now()) / 1000);
  const maxPages = o.maxRefillPages ?? 500;
  return keepingFetchedPages(out, req.signal, async () => {
    for (let page = 0; page < maxPages; page++) {
      const r = await fetchCoinbaseTrades(rest, req.pair, { startSec, endSec }, side, {
        signal: req.signal,
        log: req.log,
        backoff: o.restBackoff,
        retries: req.retries ?? o.restRetries,
        maxRetryAfterMs: REFILL_MAX_RETRY_AFTER_MS,
      });
      out.trades.push(...r.trades);
      out.rejects.push(...r.rejects);
      const oldest = r.trades[0];
      if (r.trades.length + r.rejects.length < COINBASE_PAGE_LIMIT || oldest === undefined) {
        out.complete = true;
        break;
      }
      const next = Math.ceil(oldest.tradeTs / 1000);
      if (next <= startSec) {
        out.complete = true;
        break;
      }
      if (next >= endSec) break; // no progress possible: report incomplete
      endSec = next;
    }
  });
}

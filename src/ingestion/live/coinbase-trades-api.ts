import { ERR, fail } from '../../core/errors.ts';
import { getJson } from '../../core/http.ts';
import type { Logger } from '../../core/log.ts';
import type { Backoff } from '../../core/retry.ts';
import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';
import { coinbaseProduct } from '../symbols.ts';
import { type CoinbaseSideMeaning, coinbaseTakerSide } from './coinbase-parser.ts';
import { decimal, rfc3339ToMs } from './parse-common.ts';

/**
 * Coinbase Advanced Trade "Get Public Market Trades", `GET /api/v3/brokerage/market/products/{id}/ticker`
 * (public, no auth; coinbase-advanced-py `get_public_market_trades`, docs.cdp.coinbase.com OpenAPI):
 * `limit` (required), optional `start`/`end` — "the UNIX timestamp indicating the start/end of the time
 * interval", as strings (taken as whole seconds here). Response (real, recorded by NautilusTrader):
 * `{"trades":[{"trade_id":"995098663","product_id":"BTC-USD","price":"68923.67","size":"0.00064",
 * "time":"2026-04-07T00:28:58.544778Z","side":"SELL","bid":"","ask":"","exchange":"coinbase"},…],
 * "best_bid":…,"best_ask":…}`, newest first.
 * **Unconfirmed**: the largest `limit` (1000 is used; clients cite it), whether `end` is inclusive, and that a
 * window holding more than `limit` trades returns its newest ones — the refill walks back on that basis (then reads
 * the pages again, oldest first: `coinbase-ws.ts`) and reports when it cannot get further.
 */
export const COINBASE_REST_URL = 'https://api.coinbase.com';
export const COINBASE_PAGE_LIMIT = 1000;

export interface CoinbaseFetchOptions {
  signal?: AbortSignal;
  log?: Logger;
  backoff?: Backoff;
  retries?: number;
  /** The longest `Retry-After` waited out (getJson): a longer one fails the call at once. */
  maxRetryAfterMs?: number;
}

export interface CoinbaseTradesPage {
  /** Oldest first. */
  trades: Trade[];
  rejects: string[];
  /**
   * The oldest `time` among the page's rows, parsed or not (undefined: no row had a readable one): where a backward
   * refill goes on from. By the trades alone, a page of rows that all failed to parse had no oldest trade.
   */
  oldestRowTs?: number;
  /** The newest `time` among the page's rows, parsed or not (whether a window held the one before it: `coinbase-ws`). */
  newestRowTs?: number;
}

export async function fetchCoinbaseTrades(
  baseUrl: string,
  pair: string,
  window: { startSec?: number; endSec?: number; limit?: number },
  sideMeaning: CoinbaseSideMeaning,
  o: CoinbaseFetchOptions = {},
): Promise<CoinbaseTradesPage> {
  const q = new URLSearchParams({ limit: String(window.limit ?? COINBASE_PAGE_LIMIT) });
  if (window.startSec !== undefined) q.set('start', String(Math.floor(window.startSec)));
  if (window.endSec !== undefined) q.set('end', String(Math.ceil(window.endSec)));
  const url = `${baseUrl}/api/v3/brokerage/market/products/${coinbaseProduct(pair)}/ticker?${q}`;
  const body = (await getJson(url, o)) as { trades?: unknown } | null;
  if (!Array.isArray(body?.trades))
    throw fail(ERR.UPSTREAM, `Coinbase market trades: no trades list: ${JSON.stringify(body).slice(0, 200)}`);
  const page: CoinbaseTradesPage = { trades: [], rejects: [] };
  const now = Date.now();
  for (const t of body.trades as unknown[]) {
    const row = (typeof t === 'object' && t !== null ? t : {}) as Record<string, unknown>;
    const time = rfc3339ToMs(row.time);
    if (Number.isFinite(time)) {
      page.oldestRowTs = Math.min(page.oldestRowTs ?? time, time);
      page.newestRowTs = Math.max(page.newestRowTs ?? time, time);
    }
    const r = validate(TradeSchema, {
      v: 1,
      type: 'trade',
      exchange: 'coinbase',
      pair,
      price: typeof row.price === 'string' ? decimal(row.price) : Number.NaN,
      qty: typeof row.size === 'string' ? decimal(row.size) : Number.NaN,
      side: coinbaseTakerSide(row.side, sideMeaning),
      tradeId: typeof row.trade_id === 'string' && row.trade_id.length > 0 ? row.trade_id : undefined,
      tradeTs: time,
      receivedTs: now,
    });
    if (r.success) page.trades.push(r.data);
    else page.rejects.push(`${JSON.stringify(t)?.slice(0, 200)}: ${r.error.issues[0]?.message}`);
  }
  page.trades.sort((a, b) => a.tradeTs - b.tradeTs || compareIds(a.tradeId, b.tradeId));
  return page;
}

/** Numeric ids by value, others as text. */
export function compareIds(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  return Number.isFinite(x) && Number.isFinite(y) ? x - y : a < b ? -1 : a > b ? 1 : 0;
}

import { ERR, fail } from '../../core/errors.ts';
import { getJson } from '../../core/http.ts';
import type { Logger } from '../../core/log.ts';
import type { Backoff } from '../../core/retry.ts';
import { redactSecrets } from '../../core/secrets.ts';
import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';
import { binanceRestSymbol } from '../symbols.ts';
import { decimal } from './parse-common.ts';

/**
 * Binance spot `GET /api/v3/historicalTrades?symbol=&fromId=&limit=` ("Old trade lookup", binance-spot-api-docs
 * rest-api.md): weight 25; `limit` default 500, max 1000; `fromId` = the first trade id wanted (inclusive);
 * without it, the most recent trades. Response: `[{id, price, qty, quoteQty, time, isBuyerMaker,
 * isBestMatch}]`, oldest first. Older doc versions marked it MARKET_DATA (an `X-MBX-APIKEY` header); current
 * ones do not — a key is sent only if configured. Served by `api.binance.com`, not the `data-api` mirror.
 */
export const BINANCE_REST_URL = 'https://api.binance.com';
export const BINANCE_PAGE_LIMIT = 1000;

export interface BinanceFetchOptions {
  signal?: AbortSignal;
  log?: Logger;
  backoff?: Backoff;
  retries?: number;
  apiKey?: string;
  /** The longest `Retry-After` waited out (getJson): a longer one fails the call at once. */
  maxRetryAfterMs?: number;
}

export interface BinanceTradesPage {
  trades: Trade[];
  rejects: string[];
  /**
   * The highest `id` among the page's rows, parsed or not (undefined: no row had one): where a forward refill goes on
   * from. The trades' ids alone gave none for a page whose rows all failed to parse, and the refill started over.
   */
  lastRowId?: number;
  /**
   * The lowest `id` among the page's rows, parsed or not: where a backward refill goes on from (before it). By the
   * trades alone, a page whose rows all failed to parse had no oldest trade, and was taken for the end.
   */
  firstRowId?: number;
}

export async function fetchBinanceTrades(
  baseUrl: string,
  pair: string,
  fromId: number | undefined,
  o: BinanceFetchOptions = {},
): Promise<BinanceTradesPage> {
  const from = fromId === undefined ? '' : `&fromId=${Math.max(0, Math.floor(fromId))}`;
  const url = `${baseUrl}/api/v3/historicalTrades?symbol=${binanceRestSymbol(pair)}${from}&limit=${BINANCE_PAGE_LIMIT}`;
  const body = await getJson(url, { ...o, headers: o.apiKey ? { 'X-MBX-APIKEY': o.apiKey } : {} });
  if (!Array.isArray(body))
    throw fail(
      ERR.UPSTREAM,
      `Binance historicalTrades: not a list: ${redactSecrets(JSON.stringify(body).slice(0, 200))}`,
    );
  const page: BinanceTradesPage = { trades: [], rejects: [] };
  const now = Date.now();
  for (const t of body as unknown[]) {
    const row = (typeof t === 'object' && t !== null ? t : {}) as Record<string, unknown>;
    if (typeof row.id === 'number' && Number.isSafeInteger(row.id)) {
      page.lastRowId = Math.max(page.lastRowId ?? row.id, row.id);
      page.firstRowId = Math.min(page.firstRowId ?? row.id, row.id);
    }
    const r = validate(TradeSchema, {
      v: 1,
      type: 'trade',
      exchange: 'binance',
      pair,
      price: typeof row.price === 'string' ? decimal(row.price) : Number.NaN,
      qty: typeof row.qty === 'string' ? decimal(row.qty) : Number.NaN,
      // isBuyerMaker ⇒ the taker sold (as `m` on the stream).
      side: row.isBuyerMaker === true ? 'sell' : row.isBuyerMaker === false ? 'buy' : undefined,
      tradeId: typeof row.id === 'number' && Number.isSafeInteger(row.id) ? String(row.id) : undefined,
      tradeTs: row.time,
      receivedTs: now,
    });
    if (r.success) page.trades.push(r.data);
    else page.rejects.push(`${JSON.stringify(t)?.slice(0, 200)}: ${r.error.issues[0]?.message}`);
  }
  return page;
}

import type { Logger } from '../../core/log.ts';
import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';
import { KRAKEN_REST_PAIR } from '../files/symbols.ts';
import { secondsTextToMs } from '../files/time.ts';
import { getJson } from './http.ts';
import { coinbaseTakerSide } from './parsers.ts';

/**
 * REST trade history of each exchange, used to backfill (`cryptocast backfill`) and to refill the gaps of a
 * live connection. Documented shapes: docs/exchange-protocols.md.
 */
export interface RestPage {
  trades: Trade[];
  /** Rows that could not be used, with the reason. */
  rejects: string[];
}

export const DEFAULT_REST = {
  kraken: 'https://api.kraken.com',
  binance: 'https://api.binance.com',
  coinbase: 'https://api.coinbase.com',
} as const;

export function krakenRestPair(pair: string): string {
  const p = KRAKEN_REST_PAIR[pair];
  if (p === undefined)
    throw new Error(
      `Kraken REST: no mapping for pair ${pair} (known: ${Object.keys(KRAKEN_REST_PAIR).join(', ')})`,
    );
  return p;
}

const isKrakenRateLimit = (body: unknown) =>
  Array.isArray((body as { error?: unknown })?.error) &&
  (body as { error: string[] }).error.some((e) => /rate limit|EAPI:Rate/i.test(e));

/** `GET /0/public/Trades?pair=&since=` → trades and the `last` cursor (ns, a string). */
export async function krakenTradesPage(
  base: string,
  pair: string,
  sinceNs: string | undefined,
  o: {
    signal?: AbortSignal;
    log?: Logger;
    backoff?: { initialMs: number; maxMs: number };
    onRetry?(a: number, r: string, d: number): void;
  } = {},
): Promise<RestPage & { last: string }> {
  const url = `${base}/0/public/Trades?pair=${encodeURIComponent(krakenRestPair(pair))}${sinceNs ? `&since=${sinceNs}` : ''}`;
  // The reviver keeps the decimal source of each time, converted exactly (see files/time.ts).
  const body = (await getJson(url, {
    ...o,
    isRateLimited: isKrakenRateLimit,
    // Trade times are decimal seconds: keep their text to convert exactly (a float can round up a minute).
    reviver: (_k, v, ctx) => (typeof v === 'number' && ctx?.source?.includes('.') ? ctx.source : v),
  })) as { error?: string[]; result?: Record<string, unknown> };
  if (Array.isArray(body.error) && body.error.length > 0) throw new Error(`Kraken: ${body.error.join('; ')}`);
  const result = body.result ?? {};
  const key = Object.keys(result).find((k) => k !== 'last');
  const rows = key ? (result[key] as unknown[]) : [];
  const last = String(result.last ?? sinceNs ?? '');
  const page: RestPage & { last: string } = { trades: [], rejects: [], last };
  const now = Date.now();
  for (const row of Array.isArray(rows) ? rows : []) {
    if (!Array.isArray(row) || row.length < 7) {
      page.rejects.push(
        `row is not [price, volume, time, side, type, misc, id]: ${JSON.stringify(row)?.slice(0, 200)}`,
      );
      continue;
    }
    const [price, volume, time, side, , , id] = row;
    const tradeTs =
      typeof time === 'string' ? secondsTextToMs(time) : typeof time === 'number' ? time * 1000 : undefined;
    const r = validate(TradeSchema, {
      v: 1,
      type: 'trade',
      exchange: 'kraken',
      pair,
      price: typeof price === 'string' ? Number(price) : Number.NaN,
      qty: typeof volume === 'string' ? Number(volume) : Number.NaN,
      side: side === 'b' ? 'buy' : side === 's' ? 'sell' : 'invalid',
      tradeId: typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : undefined,
      tradeTs,
      receivedTs: now,
    });
    if (r.success) page.trades.push(r.data);
    else page.rejects.push(`row ${JSON.stringify(row).slice(0, 200)}: ${r.error.issues[0]?.message}`);
  }
  return page;
}

/** `GET /api/v3/historicalTrades?symbol=&fromId=&limit=1000` (MARKET_DATA: an API key header if configured). */
export async function binanceTradesPage(
  base: string,
  pair: string,
  fromId: number,
  o: { signal?: AbortSignal; log?: Logger; apiKey?: string } = {},
): Promise<RestPage> {
  const symbol = pair.replace('/', '');
  const url = `${base}/api/v3/historicalTrades?symbol=${symbol}&fromId=${fromId}&limit=1000`;
  const body = await getJson(url, { ...o, headers: o.apiKey ? { 'X-MBX-APIKEY': o.apiKey } : {} });
  const page: RestPage = { trades: [], rejects: [] };
  if (!Array.isArray(body))
    throw new Error(`Binance historicalTrades: not a list: ${JSON.stringify(body).slice(0, 200)}`);
  const now = Date.now();
  for (const t of body as Record<string, unknown>[]) {
    const r = validate(TradeSchema, {
      v: 1,
      type: 'trade',
      exchange: 'binance',
      pair,
      price: Number(t?.price),
      qty: Number(t?.qty),
      side: t?.isBuyerMaker === true ? 'sell' : t?.isBuyerMaker === false ? 'buy' : 'invalid',
      tradeId: typeof t?.id === 'number' ? String(t.id) : undefined,
      tradeTs: t?.time,
      receivedTs: now,
    });
    if (r.success) page.trades.push(r.data);
    else page.rejects.push(`${JSON.stringify(t).slice(0, 200)}: ${r.error.issues[0]?.message}`);
  }
  return page;
}

/**
 * `GET /api/v3/brokerage/market/products/{id}/ticker?limit=` (public): the most recent trades only, so a gap
 * older than that window cannot be refilled on Coinbase; the connector reports it.
 */
export async function coinbaseRecentTrades(
  base: string,
  pair: string,
  limit: number,
  sideMeaning: 'maker' | 'taker',
  o: { signal?: AbortSignal; log?: Logger } = {},
): Promise<RestPage> {
  const product = pair.replace('/', '-');
  const body = (await getJson(
    `${base}/api/v3/brokerage/market/products/${product}/ticker?limit=${limit}`,
    o,
  )) as { trades?: unknown };
  const page: RestPage = { trades: [], rejects: [] };
  const now = Date.now();
  for (const t of Array.isArray(body?.trades) ? (body.trades as Record<string, unknown>[]) : []) {
    const taker = coinbaseTakerSide(t?.side, sideMeaning);
    const r = validate(TradeSchema, {
      v: 1,
      type: 'trade',
      exchange: 'coinbase',
      pair,
      price: Number(t?.price),
      qty: Number(t?.size),
      side: taker,
      tradeId: typeof t?.trade_id === 'string' ? t.trade_id : undefined,
      tradeTs: typeof t?.time === 'string' ? Date.parse(t.time) : undefined,
      receivedTs: now,
    });
    if (r.success) page.trades.push(r.data);
    else page.rejects.push(`${JSON.stringify(t).slice(0, 200)}: ${r.error.issues[0]?.message}`);
  }
  return page;
}

import { CryptocastError, ERR, fail } from '../../core/errors.ts';
import { getJson } from '../../core/http.ts';
import type { Logger } from '../../core/log.ts';
import type { Backoff } from '../../core/retry.ts';
import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';
import { krakenRestPair } from '../symbols.ts';
import { decimal } from './parse-common.ts';

/**
 * Kraken REST `GET /0/public/Trades?pair=&since=` (docs/exchange-protocols.md §2), used by the live
 * connector to refill gaps and by `KrakenRestBackfill`.
 *
 * Response: `{"error":[],"result":{"<kraken pair name>":[[price, volume, time, "b"|"s", "m"|"l", misc, id],
 * …],"last":"<ns>"}}` — price/volume strings, time float seconds, side = taker's, id an integer. The result
 * key is Kraken's own name (`XXBTZUSD` for `XBTUSD`), so the single key other than `last` is read.
 */
export const KRAKEN_REST_URL = 'https://api.kraken.com';

export interface KrakenTradesPage {
  trades: Trade[];
  /** Rows that could not be used, with the reason. */
  rejects: string[];
  /** The cursor for the next page (ns since the epoch, a decimal string). */
  last: string;
}

/** An error Kraken reported in `error[]` that retrying will not fix (e.g. `EQuery:Unknown asset pair`). */
export class KrakenApiError extends CryptocastError {
  override readonly name = 'KrakenApiError';
  readonly errors: string[];
  constructor(errors: string[]) {
    super(ERR.UPSTREAM.code, `Kraken: ${errors.join('; ')}`, {
      exitCode: ERR.UPSTREAM.exitCode,
      hint: 'Kraken refused the request: check the pair and the time range',
    });
    this.errors = errors;
  }
}

/** `error[]` entries worth retrying after a pause: throttling and temporary unavailability. */
const TRANSIENT = /^(EAPI:Rate limit exceeded|EGeneral:Too many requests|EService:(Unavailable|Busy))/;

function transientError(body: unknown): boolean {
  const errors = (body as { error?: unknown } | null)?.error;
  return Array.isArray(errors) && errors.some((e) => typeof e === 'string' && TRANSIENT.test(e));
}

export interface KrakenFetchOptions {
  signal?: AbortSignal;
  log?: Logger;
  backoff?: Backoff;
  retries?: number;
  /** Retries while nothing has answered (getJson): fewer for a first contact. */
  unansweredRetries?: number | undefined;
  /** The longest `Retry-After` waited out (getJson): a longer one fails the call at once. */
  maxRetryAfterMs?: number;
  onRetry?(attempt: number, reason: string, delayMs: number): void;
}

export async function fetchKrakenTrades(
  baseUrl: string,
  pair: string,
  sinceNs: string | undefined,
  o: KrakenFetchOptions = {},
): Promise<KrakenTradesPage> {
  const query = `pair=${encodeURIComponent(krakenRestPair(pair))}${sinceNs ? `&since=${sinceNs}` : ''}`;
  const body = (await getJson(`${baseUrl}/0/public/Trades?${query}`, {
    ...o,
    isRateLimited: transientError,
    // Trade times are float seconds: keep their decimal text, converted exactly below (a float can round a
    // trade at hh:mm:59.9999 up into the next minute).
    reviver: (_k, v, ctx) => (typeof v === 'number' && ctx?.source?.includes('.') ? ctx.source : v),
  })) as { error?: unknown; result?: unknown } | null;
  const errors = Array.isArray(body?.error) ? body.error.map(String) : [];
  if (errors.length > 0) throw new KrakenApiError(errors);
  const result = body?.result;
  if (typeof result !== 'object' || result === null || Array.isArray(result))
    throw fail(
      ERR.UPSTREAM,
      `Kraken Trades: response without a result object: ${JSON.stringify(body).slice(0, 200)}`,
    );
  const r = result as Record<string, unknown>;
  const keys = Object.keys(r).filter((k) => k !== 'last');
  if (keys.length > 1)
    throw fail(ERR.UPSTREAM, `Kraken Trades: several result keys (${keys.join(', ')}), expected one`);
  const rows = keys[0] === undefined ? [] : r[keys[0]];
  if (!Array.isArray(rows)) throw fail(ERR.UPSTREAM, `Kraken Trades: result.${keys[0]} is not a list`);
  const last = typeof r.last === 'string' || typeof r.last === 'number' ? String(r.last) : (sinceNs ?? '0');
  if (!/^\d{1,25}$/.test(last))
    throw fail(ERR.UPSTREAM, `Kraken Trades: cursor "last" is not a number: ${last}`);
  const page: KrakenTradesPage = { trades: [], rejects: [], last };
  const now = Date.now();
  for (const row of rows) {
    const reason = parseRow(row, pair, now, page.trades);
    if (reason !== undefined) page.rejects.push(`${reason}: ${JSON.stringify(row)?.slice(0, 200)}`);
  }
  return page;
}

/** Adds the row's trade to `out`, or returns why it cannot. */
function parseRow(row: unknown, pair: string, receivedTs: number, out: Trade[]): string | undefined {
  if (!Array.isArray(row) || row.length < 7) return 'row is not [price, volume, time, side, type, misc, id]';
  const [price, volume, time, side, , , id] = row;
  const r = validate(TradeSchema, {
    v: 1,
    type: 'trade',
    exchange: 'kraken',
    pair,
    price: typeof price === 'string' ? decimal(price) : Number.NaN,
    qty: typeof volume === 'string' ? decimal(volume) : Number.NaN,
    side: side === 'b' ? 'buy' : side === 's' ? 'sell' : undefined,
    tradeId: typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? String(id) : undefined,
    tradeTs: secondsToMs(time),
    receivedTs,
  });
  if (r.success) {
    out.push(r.data);
    return undefined;
  }
  return r.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.')}: ${i.message}`)
    .join('; ');
}

/** Decimal seconds (text kept by the reviver, or a plain number) → epoch ms, truncated. */
export function secondsToMs(v: unknown): number | undefined {
  const text = typeof v === 'number' ? String(v) : v;
  if (typeof text !== 'string') return undefined;
  const m = /^(\d{1,12})(?:\.(\d+))?$/.exec(text);
  if (m === null) return undefined;
  return Number(m[1]) * 1000 + Number((m[2] ?? '').padEnd(3, '0').slice(0, 3));
}

/** Epoch ms → Kraken's ns cursor. */
export function msToNs(ms: number): string {
  return (BigInt(Math.max(0, Math.floor(ms))) * 1_000_000n).toString();
}

/** Kraken's ns cursor → epoch ms (truncated). */
export function nsToMs(ns: string): number {
  return Number(BigInt(ns) / 1_000_000n);
}

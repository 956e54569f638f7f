import { krakenPair } from '../symbols.ts';
import type { ParseContext } from './context.ts';
import {
  decimal,
  digitsId,
  Problems,
  type RowResult,
  reject,
  show,
  type TradeFields,
  toTrade,
} from './row.ts';
import { secondsTextToMs } from './time.ts';

/**
 * A Kraken REST `Trades` response, as recorded:
 * `{"error":[],"result":{"XBTUSDT":[[price, volume, time, side, ordtype, misc, trade_id], …],"last":"<ns>"}}`.
 *
 * - The result key is Kraken's own pair name (`XBTUSDT`, `XXBTZUSD`): mapped by an explicit table
 *   (`symbols.ts`), or given with the `pair` option.
 * - `time` is float seconds with 100 ns digits. As a double, `1762820039.9999999` is `1762820040`, which would
 *   move a trade into the next minute; so every JSON number is kept as its source text (`JSON.rawJSON`) and
 *   converted from the decimals (`secondsTextToMs`). Ids too are kept exactly.
 * - `side` `b`/`s` is the taker side. Rows are numbered from 1 in rejects.
 * The document is parsed whole: it is one JSON value, and Kraken pages are 1,000 trades.
 */
interface RawJson {
  readonly rawJSON: string;
}
const JSONX = JSON as unknown as {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
};

/** Number → its source text (still a JSON number when stringified); strings and the rest unchanged. */
function keepNumberText(_key: string, value: unknown, context?: { source?: string }): unknown {
  return typeof value === 'number' && context?.source !== undefined ? JSONX.rawJSON(context.source) : value;
}

/** The text of a JSON number, else the value itself (so that it is reported as it was). */
function text(value: unknown): unknown {
  return JSONX.isRawJSON(value) ? value.rawJSON : value;
}

const SHAPE = 'not a Kraken Trades response: expected {"error":[],"result":{"<PAIR>":[[…]],"last":…}}';

/** All rows of one response, in order: trades and rejects. */
export function parseKrakenRestTrades(json: string, ctx: ParseContext): RowResult[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json, keepNumberText as (key: string, value: unknown) => unknown);
  } catch (err) {
    return [reject(1, `not JSON: ${(err as Error).message}`, json.slice(0, 2000))];
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return [reject(1, SHAPE, json.slice(0, 2000))];
  const { error, result } = doc as { error?: unknown; result?: unknown };
  // Kraken reports failures in `error` ("EQuery:Unknown asset pair"); `W…` entries are warnings only.
  const errors = Array.isArray(error) ? error.filter((e) => typeof e !== 'string' || !e.startsWith('W')) : [];
  if (errors.length > 0)
    return [reject(1, `Kraken error: ${errors.map(show).join('; ')}`, JSON.stringify(error))];
  if (typeof result !== 'object' || result === null) return [reject(1, SHAPE, json.slice(0, 2000))];
  const keys = Object.keys(result).filter((k) => k !== 'last');
  const key = keys[0];
  const rows = key === undefined ? undefined : (result as Record<string, unknown>)[key];
  if (keys.length !== 1 || !Array.isArray(rows)) return [reject(1, SHAPE, json.slice(0, 2000))];

  const pair = ctx.pair ?? krakenPair(key!);
  return rows.map((row, i) => {
    const payload = JSON.stringify(row) ?? String(row);
    if (pair === undefined)
      return reject(i + 1, `unknown Kraken pair "${key}": pass the pair (--pair)`, payload);
    return krakenRow(row, i + 1, pair, ctx, payload);
  });
}

function krakenRow(row: unknown, n: number, pair: string, ctx: ParseContext, payload: string): RowResult {
  // Kraken may append fields one day; fewer than 7 is an older or broken layout without a trade id.
  if (!Array.isArray(row) || row.length < 7)
    return reject(n, 'row must be [price, volume, time, side, ordtype, misc, trade_id]', payload);
  const [price, volume, time, side, , , id] = row.map(text);
  const p = new Problems();
  const tradeTs =
    (typeof time === 'string' ? secondsTextToMs(time) : undefined) ??
    p.add(`time: not decimal seconds (${show(time)})`);
  const trade: TradeFields = {
    exchange: ctx.exchange,
    pair,
    price: decimal(p, 'price', price),
    qty: decimal(p, 'volume', volume),
    side: side === 'b' ? 'buy' : side === 's' ? 'sell' : p.add(`side: not "b" or "s" (${show(side)})`),
    tradeId: digitsId(p, 'trade_id', id),
    tradeTs,
    receivedTs: tradeTs,
  };
  return toTrade(trade, p, n, payload);
}

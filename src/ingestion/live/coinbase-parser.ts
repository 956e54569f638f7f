import { coinbasePair } from '../symbols.ts';
import {
  decimal,
  emptyParsed,
  isObj,
  type Parsed,
  parseJson,
  pushTrade,
  rfc3339ToMs,
  show,
} from './parse-common.ts';

/**
 * Whose side Coinbase's `market_trades.side` names. The documentation does not say, and clients disagree
 * (docs/exchange-protocols.md §6):
 * - `maker` (the default): Coinbase's Exchange API documents the `side` of a trade as the **maker** order's
 *   side ("a buy side indicates a down-tick"); Advanced Trade is served from the same matching engine, and
 *   the most careful client (NautilusTrader) reads `market_trades.side` the same way. The one real
 *   recording at hand agrees: in NautilusTrader's recorded public ticker response, two `SELL` trades printed
 *   at 68923.67, which was the best *ask* (68923.66 bid) — a taker *buy* lifting a resting sell (weak
 *   evidence: the book may have moved between the trades and the quote).
 * - `taker`: what one client (bbgo PR #2509) switched to.
 * The default is `maker`, so the normalised `side` (always the taker's) is the opposite of the field. Flip it
 * with the connector's `sideMeaning` option once verified against live data (compare sides with upticks).
 */
export type CoinbaseSideMeaning = 'maker' | 'taker';

export const DEFAULT_COINBASE_SIDE_MEANING: CoinbaseSideMeaning = 'maker';

/** Coinbase's `side` (`BUY`/`SELL`, read as `meaning`) → the taker side; undefined if neither. */
export function coinbaseTakerSide(side: unknown, meaning: CoinbaseSideMeaning): 'buy' | 'sell' | undefined {
  const s = typeof side === 'string' ? side.toUpperCase() : '';
  const given = s === 'BUY' ? 'buy' : s === 'SELL' ? 'sell' : undefined;
  if (given === undefined || meaning === 'taker') return given;
  return given === 'buy' ? 'sell' : 'buy';
}

/** Coinbase sends decimals (and, per some clients, counters) as strings. */
function counter(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Coinbase Advanced Trade (docs/exchange-protocols.md §6). Every message is an envelope
 * `{channel, client_id, timestamp, sequence_num, events: […]}`:
 * - `market_trades`: events `{type: "snapshot"|"update", trades: [{trade_id, product_id, price, size, side,
 *   time}]}`, all values strings;
 * - `heartbeats`: events `{current_time, heartbeat_counter}` every second;
 * - `subscriptions`: events `{subscriptions: {market_trades: ["BTC-USD"], …}}`;
 * - `{"type":"error","message":…}` on a bad request.
 */
export function parseCoinbaseFrame(
  text: string,
  receivedTs: number,
  sideMeaning: CoinbaseSideMeaning = DEFAULT_COINBASE_SIDE_MEANING,
): Parsed {
  const out = emptyParsed();
  const msg = parseJson(text, out);
  if (msg === undefined) return out;
  if (!isObj(msg)) {
    out.rejects.push({ kind: 'unknown', reason: 'frame is not a JSON object' });
    return out;
  }
  if (msg.type === 'error') {
    out.controls.push({ type: 'error', message: String(msg.message ?? msg.reason ?? 'error').slice(0, 500) });
    return out;
  }
  const sequence = counter(msg.sequence_num);
  if (sequence !== undefined && typeof msg.channel === 'string')
    out.controls.push({ type: 'sequence', sequence, channel: msg.channel });
  if (msg.channel !== 'heartbeats' && msg.channel !== 'market_trades' && msg.channel !== 'subscriptions') {
    out.rejects.push({ kind: 'unknown', reason: `unexpected channel ${show(msg.channel)}` });
    return out;
  }
  if (!Array.isArray(msg.events)) {
    out.rejects.push({ kind: 'invalid', reason: `${msg.channel} message without an events array` });
    return out;
  }
  if (msg.channel === 'heartbeats') heartbeats(msg.events, out);
  else if (msg.channel === 'subscriptions') subscriptions(msg.events, out);
  else marketTrades(msg.events, receivedTs, sideMeaning, out);
  return out;
}

function heartbeats(events: unknown[], out: Parsed): void {
  if (events.length === 0) out.controls.push({ type: 'heartbeat' });
  for (const e of events) {
    if (!isObj(e)) out.rejects.push({ kind: 'invalid', reason: 'heartbeat event is not an object' });
    else {
      const c = counter(e.heartbeat_counter);
      out.controls.push(c === undefined ? { type: 'heartbeat' } : { type: 'heartbeat', counter: c });
    }
  }
}

function subscriptions(events: unknown[], out: Parsed): void {
  const symbols: string[] = [];
  for (const e of events) {
    const products = isObj(e) && isObj(e.subscriptions) ? e.subscriptions.market_trades : undefined;
    if (Array.isArray(products))
      for (const p of products) {
        const pair = typeof p === 'string' ? coinbasePair(p) : undefined;
        if (pair !== undefined) symbols.push(pair);
      }
  }
  out.controls.push({ type: 'subscribed', symbols });
}

function marketTrades(
  events: unknown[],
  receivedTs: number,
  meaning: CoinbaseSideMeaning,
  out: Parsed,
): void {
  if (events.length === 0) out.controls.push({ type: 'ignored', what: 'market_trades without events' });
  for (const e of events) {
    if (!isObj(e) || !Array.isArray(e.trades)) {
      out.rejects.push({ kind: 'invalid', reason: 'market_trades event without a trades array' });
      continue;
    }
    if (e.type !== 'snapshot' && e.type !== 'update') {
      out.rejects.push({ kind: 'invalid', reason: `market_trades event of unknown type ${show(e.type)}` });
      continue;
    }
    if (e.trades.length === 0) out.controls.push({ type: 'ignored', what: `empty market_trades ${e.type}` });
    for (const t of e.trades) {
      if (!isObj(t)) {
        out.rejects.push({ kind: 'invalid', reason: 'trade entry is not an object' });
        continue;
      }
      pushTrade(
        out,
        {
          v: 1,
          type: 'trade',
          exchange: 'coinbase',
          pair:
            typeof t.product_id === 'string' ? (coinbasePair(t.product_id) ?? t.product_id) : t.product_id,
          price: typeof t.price === 'string' ? decimal(t.price) : Number.NaN,
          qty: typeof t.size === 'string' ? decimal(t.size) : Number.NaN,
          side: coinbaseTakerSide(t.side, meaning),
          tradeId:
            typeof t.trade_id === 'string' && /^[0-9A-Za-z-]{1,64}$/.test(t.trade_id)
              ? t.trade_id
              : undefined,
          tradeTs: rfc3339ToMs(t.time),
          receivedTs,
        },
        'coinbase trade',
      );
    }
  }
}

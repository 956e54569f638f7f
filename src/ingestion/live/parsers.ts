import { summarise } from '../../runtime/in-process-bus.ts';
import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';
import { splitSymbol } from '../files/symbols.ts';

/**
 * Pure parsers of exchange websocket frames (text) → normalised trades, control events and rejects. They never
 * throw: anything unusable becomes a reject with a reason (the connector dead-letters it and carries on).
 * Field meanings are from docs/exchange-protocols.md (taken from each exchange's documentation).
 */
export interface Reject {
  kind: 'parse' | 'invalid' | 'exchange-error' | 'unknown';
  reason: string;
}

export type Control =
  | { type: 'heartbeat'; counter?: number; ts?: number }
  | { type: 'status'; status: string }
  | { type: 'subscribed'; symbols: string[] }
  | { type: 'pong' }
  | { type: 'error'; message: string }
  | { type: 'sequence'; sequence: number; channel: string }
  | { type: 'ignored'; what: string };

export interface Parsed {
  trades: Trade[];
  rejects: Reject[];
  controls: Control[];
}

const MAX_FRAME = 1024 * 1024;

function empty(): Parsed {
  return { trades: [], rejects: [], controls: [] };
}

function parseJson(text: string, out: Parsed): unknown {
  if (text.length > MAX_FRAME) {
    out.rejects.push({ kind: 'parse', reason: `frame of ${text.length} characters exceeds ${MAX_FRAME}` });
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    out.rejects.push({ kind: 'parse', reason: `not JSON: ${(e as Error).message}` });
    return undefined;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function push(out: Parsed, raw: Record<string, unknown>, what: string): void {
  const r = validate(TradeSchema, raw);
  if (r.success) out.trades.push(r.data);
  else out.rejects.push({ kind: 'invalid', reason: `${what}: ${summarise(r.error)}` });
}

/** Decimal number given as a JSON number or a numeric string; NaN otherwise (rejected by the schema). */
function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v.trim())) return Number(v);
  return Number.NaN;
}

/** RFC 3339 with `Z` or offset → epoch ms; NaN otherwise. */
function rfc3339(v: unknown): number {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v))
    return Number.NaN;
  return Date.parse(v);
}

// ---------------------------------------------------------------------------------------------------------
// Kraken WebSocket v2: channel "trade" (snapshot/update), "heartbeat", "status"; method acks and pong.

/** Kraken v2 symbol (`BTC/USD`, `XBT/USD`) → canonical pair. */
export function krakenWsPair(symbol: string): string {
  return symbol
    .toUpperCase()
    .replace(/^XBT\//, 'BTC/')
    .replace(/\/XBT$/, '/BTC');
}

export function parseKrakenFrame(text: string, receivedTs: number): Parsed {
  const out = empty();
  const msg = parseJson(text, out);
  if (msg === undefined) return out;
  if (!isObj(msg)) {
    out.rejects.push({ kind: 'unknown', reason: 'frame is not a JSON object (Kraken v2 sends objects)' });
    return out;
  }
  if (typeof msg.method === 'string') {
    if (msg.method === 'pong') out.controls.push({ type: 'pong' });
    else if (msg.success === false)
      out.controls.push({
        type: 'error',
        message: `${msg.method} failed: ${String(msg.error ?? 'no reason given')}`,
      });
    else if (msg.method === 'subscribe' && isObj(msg.result)) {
      const sym = msg.result.symbol;
      out.controls.push({
        type: 'subscribed',
        symbols: typeof sym === 'string' ? [sym] : Array.isArray(sym) ? sym.map(String) : [],
      });
    } else out.controls.push({ type: 'ignored', what: `method ${msg.method}` });
    return out;
  }
  if (msg.error !== undefined && msg.channel === undefined) {
    out.controls.push({ type: 'error', message: String(msg.error) });
    return out;
  }
  switch (msg.channel) {
    case 'heartbeat':
      out.controls.push({ type: 'heartbeat' });
      return out;
    case 'status': {
      const d = Array.isArray(msg.data) && isObj(msg.data[0]) ? msg.data[0] : undefined;
      out.controls.push({ type: 'status', status: String(d?.system ?? 'unknown') });
      return out;
    }
    case 'trade': {
      if (!Array.isArray(msg.data)) {
        out.rejects.push({ kind: 'invalid', reason: 'trade message without a data array' });
        return out;
      }
      // An empty snapshot is normal (no recent trade): nothing to do, but not nothing seen.
      if (msg.data.length === 0)
        out.controls.push({ type: 'ignored', what: `empty trade ${String(msg.type)}` });
      for (const d of msg.data) {
        if (!isObj(d)) {
          out.rejects.push({ kind: 'invalid', reason: 'trade entry is not an object' });
          continue;
        }
        const tradeTs = rfc3339(d.timestamp);
        push(
          out,
          {
            v: 1,
            type: 'trade',
            exchange: 'kraken',
            pair: typeof d.symbol === 'string' ? krakenWsPair(d.symbol) : d.symbol,
            price: num(d.price),
            qty: num(d.qty),
            side: d.side === 'buy' || d.side === 'sell' ? d.side : 'invalid',
            tradeId:
              typeof d.trade_id === 'number' && Number.isSafeInteger(d.trade_id) && d.trade_id >= 0
                ? String(d.trade_id)
                : undefined,
            tradeTs: Math.floor(tradeTs),
            receivedTs,
          },
          'kraken trade',
        );
      }
      return out;
    }
    default:
      out.controls.push({ type: 'ignored', what: `channel ${String(msg.channel)}` });
      return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Binance spot: `<symbol>@trade` events, raw (`/ws/...`) or wrapped by the combined stream (`{stream, data}`).

export function parseBinanceFrame(text: string, receivedTs: number): Parsed {
  const out = empty();
  const msg = parseJson(text, out);
  if (msg === undefined) return out;
  if (!isObj(msg)) {
    out.rejects.push({ kind: 'unknown', reason: 'frame is not a JSON object' });
    return out;
  }
  if ('result' in msg && 'id' in msg) {
    out.controls.push({ type: 'subscribed', symbols: [] });
    return out;
  }
  if (isObj(msg.error) || (typeof msg.code === 'number' && typeof msg.msg === 'string')) {
    const e = isObj(msg.error) ? msg.error : msg;
    out.controls.push({ type: 'error', message: `${String(e.code)}: ${String(e.msg)}` });
    return out;
  }
  const ev = isObj(msg.data) ? msg.data : msg;
  if (ev.e === 'serverShutdown') {
    out.controls.push({ type: 'status', status: 'shutdown' });
    return out;
  }
  if (ev.e !== 'trade') {
    out.rejects.push({
      kind: 'unknown',
      reason: `not a trade event (e=${JSON.stringify(ev.e)?.slice(0, 40)})`,
    });
    return out;
  }
  push(
    out,
    {
      v: 1,
      type: 'trade',
      exchange: 'binance',
      pair: typeof ev.s === 'string' ? (splitSymbol(ev.s) ?? ev.s) : ev.s,
      price: typeof ev.p === 'string' ? num(ev.p) : Number.NaN,
      qty: typeof ev.q === 'string' ? num(ev.q) : Number.NaN,
      // m = buyer is the maker ⇒ the taker sold.
      side: ev.m === true ? 'sell' : ev.m === false ? 'buy' : 'invalid',
      tradeId: typeof ev.t === 'number' && Number.isSafeInteger(ev.t) && ev.t >= 0 ? String(ev.t) : undefined,
      tradeTs: ev.T,
      receivedTs,
    },
    'binance trade',
  );
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Coinbase Advanced Trade: `market_trades` (snapshot/update events), `heartbeats`, `subscriptions`.

/**
 * Whose side `market_trades.side` is. Coinbase's documentation and clients disagree (see
 * docs/exchange-protocols.md §6): the Exchange API's `match` side is the maker's, and the most careful client
 * (NautilusTrader) reads Advanced Trade the same way, so the default is `maker` (taker = the opposite side).
 */
export type CoinbaseSideMeaning = 'maker' | 'taker';

/** Coinbase's `side` (BUY/SELL, read as `meaning`) → the taker side, or `invalid`. */
export function coinbaseTakerSide(side: unknown, meaning: CoinbaseSideMeaning): string {
  const s = typeof side === 'string' ? side.toUpperCase() : '';
  const given = s === 'BUY' ? 'buy' : s === 'SELL' ? 'sell' : 'invalid';
  if (given === 'invalid' || meaning === 'taker') return given;
  return given === 'buy' ? 'sell' : 'buy';
}

export function parseCoinbaseFrame(
  text: string,
  receivedTs: number,
  sideMeaning: CoinbaseSideMeaning = 'maker',
): Parsed {
  const out = empty();
  const msg = parseJson(text, out);
  if (msg === undefined) return out;
  if (!isObj(msg)) {
    out.rejects.push({ kind: 'unknown', reason: 'frame is not a JSON object' });
    return out;
  }
  if (msg.type === 'error') {
    out.controls.push({ type: 'error', message: String(msg.message ?? msg.reason ?? 'error') });
    return out;
  }
  if (typeof msg.sequence_num === 'number' && typeof msg.channel === 'string') {
    out.controls.push({ type: 'sequence', sequence: msg.sequence_num, channel: msg.channel });
  }
  if ((msg.channel === 'heartbeats' || msg.channel === 'market_trades') && !Array.isArray(msg.events)) {
    out.rejects.push({ kind: 'invalid', reason: `${msg.channel} message without an events array` });
    return out;
  }
  const events = Array.isArray(msg.events) ? msg.events : [];
  switch (msg.channel) {
    case 'heartbeats':
      for (const e of events) {
        if (isObj(e))
          out.controls.push({
            type: 'heartbeat',
            counter: typeof e.heartbeat_counter === 'number' ? e.heartbeat_counter : undefined,
          });
        else out.rejects.push({ kind: 'invalid', reason: 'heartbeat event is not an object' });
      }
      if (events.length === 0) out.controls.push({ type: 'heartbeat' });
      return out;
    case 'subscriptions':
      out.controls.push({ type: 'subscribed', symbols: [] });
      return out;
    case 'market_trades':
      if (events.length === 0) out.controls.push({ type: 'ignored', what: 'market_trades without events' });
      for (const e of events) {
        if (!isObj(e) || !Array.isArray(e.trades)) {
          out.rejects.push({ kind: 'invalid', reason: 'market_trades event without a trades array' });
          continue;
        }
        if (e.trades.length === 0)
          out.controls.push({ type: 'ignored', what: 'market_trades event with no trades' });
        for (const t of e.trades) {
          if (!isObj(t)) {
            out.rejects.push({ kind: 'invalid', reason: 'trade entry is not an object' });
            continue;
          }
          const taker = coinbaseTakerSide(t.side, sideMeaning);
          push(
            out,
            {
              v: 1,
              type: 'trade',
              exchange: 'coinbase',
              pair:
                typeof t.product_id === 'string'
                  ? t.product_id.toUpperCase().replace('-', '/')
                  : t.product_id,
              price: typeof t.price === 'string' ? num(t.price) : Number.NaN,
              qty: typeof t.size === 'string' ? num(t.size) : Number.NaN,
              side: taker,
              tradeId:
                typeof t.trade_id === 'string' && /^\d{1,20}$/.test(t.trade_id) ? t.trade_id : undefined,
              tradeTs: Math.floor(rfc3339(t.time)),
              receivedTs,
            },
            'coinbase trade',
          );
        }
      }
      return out;
    default:
      out.controls.push({ type: 'ignored', what: `channel ${String(msg.channel)}` });
      return out;
  }
}

import { krakenWsPair } from '../symbols.ts';
import {
  decimal,
  emptyParsed,
  isObj,
  type Parsed,
  parseJson,
  pushTrade,
  rfc3339ToMs,
  safeId,
  show,
} from './parse-common.ts';

/**
 * Kraken Spot WebSocket v2 (docs/exchange-protocols.md §1):
 * - `{"channel":"trade","type":"snapshot"|"update","data":[{symbol, side, price, qty, ord_type, trade_id,
 *   timestamp}]}` — `side` is the taker's; `price`/`qty` JSON numbers; `timestamp` RFC 3339 (µs);
 * - `{"channel":"heartbeat"}` (about 1/s when nothing else is sent), `{"channel":"status",…}`;
 * - method replies: subscribe acks (one per symbol, `success` true or false with `error`; "Already subscribed" is
 *   an ack), `pong`.
 */
export function parseKrakenFrame(text: string, receivedTs: number): Parsed {
  const out = emptyParsed();
  const msg = parseJson(text, out);
  if (msg === undefined) return out;
  if (!isObj(msg)) {
    out.rejects.push({ kind: 'unknown', reason: 'frame is not a JSON object (Kraken v2 sends objects)' });
    return out;
  }
  if (msg.method !== undefined) return methodReply(msg, out);
  if (msg.channel === undefined && msg.error !== undefined) {
    out.controls.push({ type: 'error', message: String(msg.error).slice(0, 500) });
    return out;
  }
  switch (msg.channel) {
    case 'heartbeat':
      out.controls.push({ type: 'heartbeat' });
      return out;
    case 'status':
      return status(msg, out);
    case 'trade':
      return trades(msg, receivedTs, out);
    default:
      out.rejects.push({ kind: 'unknown', reason: `unexpected channel ${show(msg.channel)}` });
      return out;
  }
}

function methodReply(msg: Record<string, unknown>, out: Parsed): Parsed {
  const method = msg.method;
  if (typeof method !== 'string') {
    out.rejects.push({ kind: 'invalid', reason: `method is not a string: ${show(method)}` });
    return out;
  }
  const result = isObj(msg.result) ? msg.result : undefined;
  // Acks name their symbol in `result`; where a failed one names it is unconfirmed: `result` or top level.
  const named = typeof result?.symbol === 'string' ? result.symbol : msg.symbol;
  const symbol = typeof named === 'string' ? krakenWsPair(named) : undefined;
  if (method === 'pong') out.controls.push({ type: 'pong' });
  else if (method === 'subscribe' && msg.success === false && symbol && alreadySubscribed(msg.error))
    out.controls.push({ type: 'subscribed', symbols: [symbol] });
  else if (msg.success === false) {
    const message = `${method} failed: ${typeof msg.error === 'string' ? msg.error.slice(0, 500) : 'no reason given'}`;
    out.controls.push(symbol ? { type: 'error', message, symbol } : { type: 'error', message });
  } else if (msg.success !== true)
    out.rejects.push({ kind: 'invalid', reason: `${method} reply without success true/false` });
  else if (method === 'subscribe') {
    if (symbol === undefined)
      out.rejects.push({ kind: 'invalid', reason: `subscribe ack without a symbol: ${show(result)}` });
    else out.controls.push({ type: 'subscribed', symbols: [symbol] });
  } else out.controls.push({ type: 'ignored', what: `${method} reply` });
  return out;
}

/**
 * A subscription asked again for a pair the connection already has (its acknowledgement lost, or late) is answered
 * `success:false` with this error on the real v2 server, as a third-party client logged it — exchange-protocols.md §1
 * leaves error texts unconfirmed: the pair is subscribed, so it is an acknowledgement, not a refusal (taken as one, the
 * pair streamed without watermarks until the next connection). An answer `success:true` is an ack as it stands.
 */
function alreadySubscribed(error: unknown): boolean {
  return typeof error === 'string' && /already subscribed/i.test(error);
}

const SYSTEM_STATES = new Set(['online', 'maintenance', 'cancel_only', 'post_only']);

function status(msg: Record<string, unknown>, out: Parsed): Parsed {
  const d = Array.isArray(msg.data) && isObj(msg.data[0]) ? msg.data[0] : undefined;
  if (typeof d?.system !== 'string' || !SYSTEM_STATES.has(d.system))
    out.rejects.push({ kind: 'invalid', reason: `status without a known system state: ${show(d?.system)}` });
  else out.controls.push({ type: 'status', status: d.system });
  return out;
}

function trades(msg: Record<string, unknown>, receivedTs: number, out: Parsed): Parsed {
  if (msg.type !== 'snapshot' && msg.type !== 'update') {
    out.rejects.push({ kind: 'invalid', reason: `trade message of unknown type ${show(msg.type)}` });
    return out;
  }
  if (!Array.isArray(msg.data)) {
    out.rejects.push({ kind: 'invalid', reason: 'trade message without a data array' });
    return out;
  }
  if (msg.type === 'snapshot') out.snapshot = true;
  // An empty snapshot is normal (no recent trade): nothing to emit, but the frame was understood.
  if (msg.data.length === 0) out.controls.push({ type: 'ignored', what: `empty trade ${msg.type}` });
  for (const d of msg.data) {
    if (!isObj(d)) {
      out.rejects.push({ kind: 'invalid', reason: 'trade entry is not an object' });
      continue;
    }
    pushTrade(
      out,
      {
        v: 1,
        type: 'trade',
        exchange: 'kraken',
        pair: typeof d.symbol === 'string' ? (krakenWsPair(d.symbol) ?? d.symbol) : d.symbol,
        price: decimal(d.price),
        qty: decimal(d.qty),
        side: d.side === 'buy' || d.side === 'sell' ? d.side : undefined,
        tradeId: safeId(d.trade_id)?.toString(),
        tradeTs: rfc3339ToMs(d.timestamp),
        receivedTs,
      },
      'kraken trade',
    );
  }
  return out;
}

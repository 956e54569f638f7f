import { splitSymbol } from '../symbols.ts';
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
import { epochToMs } from './time.ts';

/**
 * One line of a Binance websocket capture: `<local receive time, ns> <message JSON>`, the message being a
 * combined-stream envelope `{"stream":"btcusdt@trade","data":{"e":"trade",…}}` (or a bare event).
 *
 * - `T` (trade time, ms) is the event time; the receive time prefix becomes `receivedTs`. The recorder's
 *   clock may differ from Binance's (≈1.3 s in the shared capture): the two are kept, never mixed.
 * - `m` = buyer is the maker ⇒ the taker sold. A missing `m` is `unknown`; a non-boolean one is an error.
 * - A line that is not a trade event (a depth update kept by mistake) is a reject, not skipped silently.
 * - The stream name must agree with the symbol: a mismatch means the line was corrupted or spliced.
 */
export function parseBinanceCaptureLine(line: string, n: number, ctx: ParseContext): RowResult {
  const sp = line.indexOf(' ');
  if (sp <= 0) return reject(n, 'expected "<receive time ns> <JSON message>"', line);
  let msg: unknown;
  try {
    msg = JSON.parse(line.slice(sp + 1));
  } catch (err) {
    return reject(n, `message is not JSON: ${(err as Error).message}`, line);
  }
  const envelope = isObject(msg) && 'data' in msg ? msg : undefined;
  const ev = envelope ? envelope.data : msg;
  if (!isObject(ev)) return reject(n, 'message holds no event object', line);
  if (ev.e !== 'trade') return reject(n, `not a trade event (e=${show(ev.e)})`, line);

  const p = new Problems();
  const recvText = line.slice(0, sp);
  const receivedTs = epochToMs(recvText) ?? p.add(`receive time: not an epoch number (${show(recvText)})`);
  const symbol = typeof ev.s === 'string' ? ev.s : p.add(`s: not a symbol (${show(ev.s)})`);
  if (symbol !== undefined && typeof envelope?.stream === 'string') {
    if (!envelope.stream.toLowerCase().startsWith(symbol.toLowerCase() + '@'))
      p.add(`stream ${show(envelope.stream)} does not match symbol ${show(symbol)}`);
  }
  const pair =
    ctx.pair ??
    (symbol === undefined ? undefined : (splitSymbol(symbol) ?? p.add(`s: unknown quote (${show(symbol)})`)));
  const trade: TradeFields = {
    exchange: ctx.exchange,
    pair,
    price: decimal(p, 'p', ev.p),
    qty: decimal(p, 'q', ev.q),
    side:
      ev.m === true
        ? 'sell'
        : ev.m === false
          ? 'buy'
          : ev.m === undefined
            ? 'unknown'
            : p.add(`m: not a boolean (${show(ev.m)})`),
    tradeId: digitsId(p, 't', ev.t),
    tradeTs: Number.isSafeInteger(ev.T)
      ? (ev.T as number)
      : p.add(`T: not epoch milliseconds (${show(ev.T)})`),
    receivedTs,
  };
  return toTrade(trade, p, n, line);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

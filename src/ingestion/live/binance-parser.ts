import { binancePair } from '../symbols.ts';
import {
  decimal,
  emptyParsed,
  isObj,
  type Parsed,
  parseJson,
  pushTrade,
  safeId,
  show,
} from './parse-common.ts';

/**
 * Binance spot `<symbol>@trade` (docs/exchange-protocols.md §4), raw (`/ws/…`) or wrapped by the combined
 * stream as `{"stream":"btcusdt@trade","data":{…}}`:
 * `{"e":"trade","E":…,"s":"BTCUSDT","t":…,"p":"61837.63","q":"0.02","T":…,"m":true,"M":true}` — `p`/`q`
 * strings, `T` trade time (ms), `t` trade id (contiguous per symbol), `m` = buyer is maker ⇒ the taker sold.
 * Also: request replies `{"result":null,"id":1}`, errors `{"error":{"code":2,"msg":"…"},"id":…}` (or a bare
 * `{code,msg}`), and the `serverShutdown` event that precedes a planned disconnect.
 */
/**
 * Times are ms unless the connection asked for µs (`timeUnit=MICROSECOND` in the URL, §4): told apart by magnitude
 * (ms epochs have 13 digits until 2286, µs ones 16), so a URL with either unit reads right. Truncated to the ms.
 */
function tradeTimeMs(t: unknown): unknown {
  return typeof t === 'number' && Number.isSafeInteger(t) && t >= 1e14 ? Math.floor(t / 1000) : t;
}

export function parseBinanceFrame(text: string, receivedTs: number): Parsed {
  const out = emptyParsed();
  const msg = parseJson(text, out);
  if (msg === undefined) return out;
  if (!isObj(msg)) {
    out.rejects.push({ kind: 'unknown', reason: 'frame is not a JSON object' });
    return out;
  }
  if ('id' in msg && 'result' in msg) {
    // `null` answers SUBSCRIBE/UNSUBSCRIBE; a list answers LIST_SUBSCRIPTIONS.
    if (msg.result === null) out.controls.push({ type: 'subscribed', symbols: [] });
    else out.controls.push({ type: 'ignored', what: `reply to request ${show(msg.id)}` });
    return out;
  }
  const err = isObj(msg.error) ? msg.error : 'code' in msg && 'msg' in msg ? msg : undefined;
  if (err !== undefined) {
    out.controls.push({ type: 'error', message: `${show(err.code)}: ${String(err.msg).slice(0, 500)}` });
    return out;
  }
  let ev: Record<string, unknown> = msg;
  if ('stream' in msg || 'data' in msg) {
    if (typeof msg.stream !== 'string' || !isObj(msg.data)) {
      out.rejects.push({
        kind: 'invalid',
        reason: 'combined-stream envelope without a stream name and data',
      });
      return out;
    }
    ev = msg.data;
    const expected = typeof ev.s === 'string' ? `${ev.s.toLowerCase()}@${String(ev.e)}` : undefined;
    if (ev.e === 'trade' && msg.stream !== expected) {
      out.rejects.push({ kind: 'invalid', reason: `stream ${show(msg.stream)} carries ${show(expected)}` });
      return out;
    }
  }
  if (ev.e === 'serverShutdown') {
    out.controls.push({ type: 'status', status: 'shutdown' });
    return out;
  }
  if (ev.e !== 'trade') {
    out.rejects.push({ kind: 'unknown', reason: `not a trade event (e=${show(ev.e)})` });
    return out;
  }
  pushTrade(
    out,
    {
      v: 1,
      type: 'trade',
      exchange: 'binance',
      pair: typeof ev.s === 'string' ? (binancePair(ev.s) ?? ev.s) : ev.s,
      // Binance sends decimals as strings; a number here is not the documented shape.
      price: typeof ev.p === 'string' ? decimal(ev.p) : Number.NaN,
      qty: typeof ev.q === 'string' ? decimal(ev.q) : Number.NaN,
      side: ev.m === true ? 'sell' : ev.m === false ? 'buy' : undefined,
      tradeId: safeId(ev.t)?.toString(),
      tradeTs: tradeTimeMs(ev.T),
      receivedTs,
    },
    'binance trade',
  );
  return out;
}

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV, KRAKEN_REST_TRADES } from '../data.ts';
import type { CoinbaseTrade } from './coinbase.ts';
import type { KrakenTrade } from './kraken.ts';

/**
 * Real recorded trades (../shared/data/btc-eth-trade-ticks, see its README) shaped as each local exchange
 * server keeps them.
 */

/** The 1,000 real Kraken XBT/USDT trades of the REST recording (ids 10218208…10219207), time text kept exactly. */
export function krakenRecordedTrades(): KrakenTrade[] {
  const doc = JSON.parse(readFileSync(KRAKEN_REST_TRADES, 'utf8'), (_k, v, ctx?: { source?: string }) =>
    typeof v === 'number' && ctx?.source?.includes('.') ? ctx.source : v,
  );
  return (doc.result.XBTUSDT as unknown[][]).map((r) => ({
    price: r[0] as string,
    qty: r[1] as string,
    time: r[2] as string,
    side: r[3] as 'b' | 's',
    ordType: r[4] as 'l' | 'm',
    id: r[6] as number,
  }));
}

/** Real Binance `@trade` events of the websocket capture (the `data` objects), in capture order. */
export function binanceRecordedEvents(
  symbol = 'BTCUSDT',
  limit = Number.POSITIVE_INFINITY,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of gunzipSync(readFileSync(BINANCE_CAPTURE)).toString('utf8').split('\n')) {
    if (!line) continue;
    const data = JSON.parse(line.slice(line.indexOf(' ') + 1)).data;
    if (data.s === symbol) out.push(data);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * Coinbase `market_trades` entries built from real BTC/USD trades (the 2019 Kraken recording: real prices,
 * sizes, times; there is no Coinbase recording at hand) in the documented shape, with consecutive ids from
 * `firstId`. `side` is written as Coinbase's field under the default reading (the maker's side), i.e. the
 * opposite of the recorded taker side, so a connector with the default mapping must give back the recording.
 */
export function coinbaseTradesFromRecording(
  limit = Number.POSITIVE_INFINITY,
  firstId = 995098700,
): CoinbaseTrade[] {
  const lines = readFileSync(KRAKEN_2019_CSV, 'utf8').trim().split(/\r?\n/).slice(1);
  const out: CoinbaseTrade[] = [];
  for (const line of lines) {
    if (out.length >= limit) break;
    const [timeMs, , side, price, amount] = line.split(',') as [string, string, string, string, string];
    out.push({
      trade_id: String(firstId + out.length),
      product_id: 'BTC-USD',
      price,
      size: amount,
      side: side === 'buy' ? 'SELL' : 'BUY',
      // Coinbase sends µs; the recording has ms: pad, do not invent digits.
      time: new Date(Number(timeMs)).toISOString().replace('Z', '000Z'),
    });
  }
  return out;
}

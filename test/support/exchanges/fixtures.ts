import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { BINANCE_CAPTURE, KRAKEN_REST_TRADES } from '../data.ts';
import type { KrakenTrade } from './kraken.ts';

/** The 1,000 real Kraken XBT/USDT trades of the REST recording, with their time text kept exactly. */
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

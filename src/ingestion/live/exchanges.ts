import type { Trade } from '../../schemas/trade.ts';
import type { ExchangeAdapter } from './live-source.ts';
import {
  type CoinbaseSideMeaning,
  parseBinanceFrame,
  parseCoinbaseFrame,
  parseKrakenFrame,
} from './parsers.ts';
import { binanceTradesPage, coinbaseRecentTrades, DEFAULT_REST, krakenTradesPage } from './rest.ts';

/** Endpoints are configurable (tests point them at local servers that speak each protocol). */
export interface Endpoints {
  ws?: string;
  rest?: string;
}

/** Kraken WebSocket v2 `trade` channel; gaps refilled from REST `Trades` (cursor `since`, ns). */
export function krakenAdapter(e: Endpoints = {}): ExchangeAdapter {
  const rest = e.rest ?? DEFAULT_REST.kraken;
  let reqId = 0;
  return {
    exchange: 'kraken',
    url: e.ws ?? 'wss://ws.kraken.com/v2',
    contiguousIds: true,
    idleTimeoutMs: 15_000, // heartbeats arrive every second when nothing else does
    appPing: { intervalMs: 30_000, frame: () => JSON.stringify({ method: 'ping', req_id: ++reqId }) },
    subscribeFrames: (pairs) => [
      JSON.stringify({
        method: 'subscribe',
        params: { channel: 'trade', symbol: pairs, snapshot: true },
        req_id: ++reqId,
      }),
    ],
    parse: parseKrakenFrame,
    recover: async (pair, after, untilId, signal) => {
      const out: Trade[] = [];
      // `since` is a time cursor in ns: start just before the last known trade, dedup by id.
      let since = String(BigInt(Math.max(0, after.ts - 1)) * 1_000_000n);
      for (let page = 0; page < 1000; page++) {
        const r = await krakenTradesPage(rest, pair, since, {
          signal,
          backoff: { initialMs: 200, maxMs: 10_000 },
        });
        out.push(...r.trades);
        const maxId = r.trades.reduce((m, t) => Math.max(m, Number(t.tradeId)), 0);
        if (r.trades.length === 0 || r.last === since || (untilId !== undefined && maxId >= untilId - 1))
          break;
        since = r.last;
      }
      return out;
    },
  };
}

/** Binance spot `<symbol>@trade` on the combined stream; gaps refilled from `historicalTrades` by id. */
export function binanceAdapter(e: Endpoints & { apiKey?: string } = {}): ExchangeAdapter {
  const rest = e.rest ?? DEFAULT_REST.binance;
  return {
    exchange: 'binance',
    url: e.ws ?? 'wss://stream.binance.com:9443/stream',
    contiguousIds: true,
    idleTimeoutMs: 60_000, // the server pings every 20 s
    subscribeFrames: (pairs) => [
      JSON.stringify({
        method: 'SUBSCRIBE',
        params: pairs.map((p) => `${p.replace('/', '').toLowerCase()}@trade`),
        id: 1,
      }),
    ],
    parse: parseBinanceFrame,
    recover: async (pair, after, untilId, signal) => {
      const out: Trade[] = [];
      let from = after.id + 1;
      for (let page = 0; page < 10_000; page++) {
        const r = await binanceTradesPage(rest, pair, from, { signal, apiKey: e.apiKey });
        out.push(...r.trades);
        if (r.trades.length === 0) break;
        const maxId = Math.max(...r.trades.map((t) => Number(t.tradeId)));
        if ((untilId !== undefined && maxId >= untilId - 1) || r.trades.length < 1000) break;
        from = maxId + 1;
      }
      return out;
    },
  };
}

/**
 * Coinbase Advanced Trade `market_trades` + `heartbeats`. Trade ids are not promised contiguous, so gaps are
 * found from `sequence_num` jumps and disconnects; the public REST API only has the most recent trades, so a
 * long outage can be refilled only partly (counted as unrecoverable in the connector's stats).
 */
export function coinbaseAdapter(e: Endpoints & { sideMeaning?: CoinbaseSideMeaning } = {}): ExchangeAdapter {
  const rest = e.rest ?? DEFAULT_REST.coinbase;
  const side = e.sideMeaning ?? 'maker';
  return {
    exchange: 'coinbase',
    url: e.ws ?? 'wss://advanced-trade-ws.coinbase.com',
    contiguousIds: false,
    idleTimeoutMs: 15_000,
    subscribeFrames: (pairs) => {
      const product_ids = pairs.map((p) => p.replace('/', '-'));
      return [
        JSON.stringify({ type: 'subscribe', product_ids, channel: 'market_trades' }),
        JSON.stringify({ type: 'subscribe', product_ids, channel: 'heartbeats' }),
      ];
    },
    parse: (text, ts) => parseCoinbaseFrame(text, ts, side),
    recover: async (pair, after, _untilId, signal) => {
      const r = await coinbaseRecentTrades(rest, pair, 1000, side, { signal });
      return r.trades.filter((t) => t.tradeTs >= after.ts);
    },
  };
}

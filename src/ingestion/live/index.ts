import { binanceAdapter, coinbaseAdapter, krakenAdapter } from './exchanges.ts';
import { LiveTradeSource } from './live-source.ts';

export { binanceAdapter, coinbaseAdapter, krakenAdapter } from './exchanges.ts';
export { LiveTradeSource } from './live-source.ts';

/**
 * The live sources for `--source live`: each exchange follows the pairs it lists. Endpoints can be moved with
 * CRYPTOCAST_{KRAKEN,BINANCE,COINBASE}_{WS,REST}_URL; `CRYPTOCAST_EXCHANGES` picks exchanges (default kraken).
 * Binance quotes in USDT: a `BTC/USD` pair is followed there as `BTC/USDT`.
 */
export function liveSources(
  pairs: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): LiveTradeSource[] {
  const exchanges = (env.CRYPTOCAST_EXCHANGES ?? 'kraken').split(',').map((s) => s.trim().toLowerCase());
  const out: LiveTradeSource[] = [];
  for (const x of exchanges) {
    if (x === 'kraken') {
      out.push(
        new LiveTradeSource(
          krakenAdapter({ ws: env.CRYPTOCAST_KRAKEN_WS_URL, rest: env.CRYPTOCAST_KRAKEN_REST_URL }),
          { pairs },
        ),
      );
    } else if (x === 'binance') {
      const usdt = [...new Set(pairs.map((p) => p.replace(/\/USD$/, '/USDT')))];
      out.push(
        new LiveTradeSource(
          binanceAdapter({
            ws: env.CRYPTOCAST_BINANCE_WS_URL,
            rest: env.CRYPTOCAST_BINANCE_REST_URL,
            apiKey: env.BINANCE_API_KEY,
          }),
          { pairs: usdt },
        ),
      );
    } else if (x === 'coinbase') {
      out.push(
        new LiveTradeSource(
          coinbaseAdapter({ ws: env.CRYPTOCAST_COINBASE_WS_URL, rest: env.CRYPTOCAST_COINBASE_REST_URL }),
          { pairs },
        ),
      );
    } else throw new Error(`unknown exchange "${x}" in CRYPTOCAST_EXCHANGES (kraken, binance, coinbase)`);
  }
  return out;
}

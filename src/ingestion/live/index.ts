import { secret, setting } from '../../config/env.ts';
import { ERR, fail } from '../../core/errors.ts';
import { BinanceWsSource } from './binance-ws.ts';
import { CoinbaseWsSource } from './coinbase-ws.ts';
import { KrakenWsSource } from './kraken-ws.ts';
import type { LiveTradeSource } from './live-source.ts';

export type { ExchangeAdapter, LiveSourceOptions, RefillRequest, RefillResult } from './adapter.ts';
export { BINANCE_WS_URL, type BinanceWsOptions, BinanceWsSource, binanceAdapter } from './binance-ws.ts';
export type { CoinbaseSideMeaning } from './coinbase-parser.ts';
export { COINBASE_WS_URL, type CoinbaseWsOptions, CoinbaseWsSource, coinbaseAdapter } from './coinbase-ws.ts';
export { KRAKEN_WS_URL, type KrakenWsOptions, KrakenWsSource, krakenAdapter } from './kraken-ws.ts';
export { type LiveStats, LiveTradeSource } from './live-source.ts';
export { parseBinanceFrame, parseCoinbaseFrame, parseKrakenFrame } from './parsers.ts';

const EXCHANGES = ['kraken', 'binance', 'coinbase'];

/**
 * The live sources for `--source live`: each exchange follows the pairs it lists. Endpoints can be moved with
 * CRYPTOCAST_{KRAKEN,BINANCE,COINBASE}_{WS,REST}_URL; `CRYPTOCAST_EXCHANGES` picks exchanges (default kraken);
 * `CRYPTOCAST_COINBASE_SIDE` = `maker` (default) or `taker` says what Coinbase's trade side means.
 * Binance quotes in USDT: a `BTC/USD` pair is followed there as `BTC/USDT`.
 */
export function liveSources(
  pairs: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): LiveTradeSource[] {
  const exchanges = [
    ...new Set((setting('CRYPTOCAST_EXCHANGES', env) ?? ['kraken']).map((s) => s.toLowerCase())),
  ];
  for (const x of exchanges)
    if (!EXCHANGES.includes(x))
      throw fail(ERR.CONFIG, `unknown exchange "${x}" in CRYPTOCAST_EXCHANGES (${EXCHANGES.join(', ')})`);
  assertOneExchangePerPair(exchanges, pairs);
  const out: LiveTradeSource[] = [];
  for (const x of exchanges) {
    if (x === 'kraken') {
      out.push(
        new KrakenWsSource({
          pairs,
          wsUrl: setting('CRYPTOCAST_KRAKEN_WS_URL', env),
          restUrl: setting('CRYPTOCAST_KRAKEN_REST_URL', env),
        }),
      );
    } else if (x === 'binance') {
      const usdt = binancePairs(pairs);
      out.push(
        new BinanceWsSource({
          pairs: usdt,
          wsUrl: setting('CRYPTOCAST_BINANCE_WS_URL', env),
          restUrl: setting('CRYPTOCAST_BINANCE_REST_URL', env),
          apiKey: secret('BINANCE_API_KEY', env),
        }),
      );
    } else if (x === 'coinbase') {
      const side = setting('CRYPTOCAST_COINBASE_SIDE', env) ?? 'maker';
      out.push(
        new CoinbaseWsSource({
          pairs,
          wsUrl: setting('CRYPTOCAST_COINBASE_WS_URL', env),
          restUrl: setting('CRYPTOCAST_COINBASE_REST_URL', env),
          sideMeaning: side,
        }),
      );
    }
  }
  return out;
}

/** Binance quotes in USDT: the pairs it follows for `pairs`. */
function binancePairs(pairs: readonly string[]): string[] {
  return [...new Set(pairs.map((p) => p.replace(/\/USD$/, '/USDT')))];
}

/**
 * Refuses two exchanges following the same pair (Kraken's and Coinbase's BTC/USD). The pipeline keeps one series per
 * pair — candles, feature vectors, predictions and their stores are keyed by pair — so the second venue's minute of a
 * pair came after the first's: the features stage dead-lettered every one of them ("not after the previous one"),
 * and the candle store kept whichever venue's candle was written last.
 */
function assertOneExchangePerPair(exchanges: readonly string[], pairs: readonly string[]): void {
  const followedOn = new Map<string, string>();
  for (const x of exchanges)
    for (const pair of x === 'binance' ? binancePairs(pairs) : pairs) {
      const other = followedOn.get(pair);
      if (other !== undefined)
        throw fail(
          ERR.CONFIG,
          `${pair} would be followed on both ${other} and ${x} (CRYPTOCAST_EXCHANGES): cryptocast keeps one series per pair, keyed by pair, so two venues' minutes of it would overwrite each other`,
          {
            hint: 'follow each pair on one exchange: kraken or coinbase for the USD pairs, binance beside either (it follows the USDT pairs), e.g. CRYPTOCAST_EXCHANGES=kraken,binance',
          },
        );
      followedOn.set(pair, x);
    }
}

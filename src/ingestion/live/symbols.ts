/**
 * Canonical pairs (`BTC/USD`, upper case, slash) ↔ each exchange's own symbol. Kept here, explicit and small,
 * rather than guessed: a wrong mapping silently follows the wrong market.
 *
 * - Kraken WebSocket v2: `BTC/USD` (v1 and REST use `XBT`; v2 does not, but an `XBT` is still read as BTC).
 * - Kraken REST `Trades`: its own names (`XBTUSD`); only the pairs listed in `KRAKEN_REST_PAIRS`.
 * - Binance: `btcusdt` in stream names (lower case), `BTCUSDT` in events and REST.
 * - Coinbase Advanced Trade: `BTC-USD`.
 */

const PAIR = /^[A-Z0-9]{2,12}\/[A-Z0-9]{2,12}$/;

/** Whether `text` is a canonical pair. */
export function isCanonicalPair(text: string): boolean {
  return PAIR.test(text);
}

/** Throws a clear error for anything that is not a canonical pair (configuration mistakes fail early). */
export function assertPairs(exchange: string, pairs: readonly string[]): void {
  if (pairs.length === 0) throw new Error(`${exchange}: no pair to follow`);
  for (const p of pairs)
    if (!PAIR.test(p)) throw new Error(`${exchange}: "${p}" is not a pair like BTC/USD (upper case, slash)`);
}

// --- Kraken ------------------------------------------------------------------------------------------------

/** Canonical pair → Kraken v2 symbol (the same spelling; v2 dropped `XBT`). */
export function krakenWsSymbol(pair: string): string {
  return pair;
}

/** Kraken v2 symbol → canonical pair (`XBT` read as BTC, defensively). Undefined if not a pair. */
export function krakenWsPair(symbol: string): string | undefined {
  const p = symbol
    .toUpperCase()
    .replace(/^XBT\//, 'BTC/')
    .replace(/\/XBT$/, '/BTC');
  return PAIR.test(p) ? p : undefined;
}

/** Canonical pair → Kraken REST `pair` parameter. Explicit: only these are known to be right. */
export const KRAKEN_REST_PAIRS: Readonly<Record<string, string>> = {
  'BTC/USD': 'XBTUSD',
  'BTC/USDT': 'XBTUSDT',
  'BTC/USDC': 'XBTUSDC',
  'BTC/EUR': 'XBTEUR',
  'ETH/USD': 'ETHUSD',
  'ETH/USDT': 'ETHUSDT',
  'ETH/EUR': 'ETHEUR',
  'ETH/BTC': 'ETHXBT',
};

export function krakenRestPair(pair: string): string {
  const p = KRAKEN_REST_PAIRS[pair];
  if (p === undefined)
    throw new Error(
      `Kraken REST: no mapping for pair ${pair} (known: ${Object.keys(KRAKEN_REST_PAIRS).join(', ')})`,
    );
  return p;
}

// --- Binance -----------------------------------------------------------------------------------------------

/** Quote assets Binance symbols end with; longer first where one ends another (`USDT` before `USD`). */
const BINANCE_QUOTES = [
  'FDUSD',
  'USDT',
  'USDC',
  'TUSD',
  'BUSD',
  'USD',
  'EUR',
  'GBP',
  'TRY',
  'BTC',
  'ETH',
  'BNB',
];

/** `BTC/USDT` → `btcusdt` (stream names are lower case). */
export function binanceStreamSymbol(pair: string): string {
  return pair.replace('/', '').toLowerCase();
}

/** `BTC/USDT` → `BTCUSDT` (events and REST). */
export function binanceRestSymbol(pair: string): string {
  return pair.replace('/', '').toUpperCase();
}

/** `BTCUSDT` (any case) → `BTC/USDT`; undefined when no known quote asset ends it. */
export function binancePair(symbol: string): string | undefined {
  const s = symbol.toUpperCase();
  if (!/^[A-Z0-9]{4,24}$/.test(s)) return undefined;
  for (const q of BINANCE_QUOTES)
    if (s.endsWith(q) && s.length - q.length >= 2) {
      const p = `${s.slice(0, -q.length)}/${q}`;
      return PAIR.test(p) ? p : undefined;
    }
  return undefined;
}

// --- Coinbase ----------------------------------------------------------------------------------------------

/** `BTC/USD` → `BTC-USD`. */
export function coinbaseProduct(pair: string): string {
  return pair.replace('/', '-');
}

/** `BTC-USD` → `BTC/USD`; undefined if not of that shape. */
export function coinbasePair(product: string): string | undefined {
  const p = product.toUpperCase().replace('-', '/');
  return PAIR.test(p) ? p : undefined;
}

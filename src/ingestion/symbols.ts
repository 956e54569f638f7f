import { ERR, fail } from '../core/errors.ts';

/**
 * Canonical pairs (`BTC/USD`: upper case, slash) ↔ each exchange's own symbols, for the live connectors, the
 * backfill and the file readers alike. Explicit tables where an exchange has its own names (Kraken's XBT, XDG and
 * X/Z-prefixed legacy names: guessing there would turn `XXBTZUSD` into nonsense, and a wrong mapping silently
 * follows the wrong market); quote-suffix splitting only for plainly concatenated symbols (Binance `BTCUSDT`).
 *
 * - Kraken WebSocket v2: `BTC/USD` (v1 and REST use `XBT`; v2 does not, but an `XBT` is still read as BTC).
 * - Kraken REST: its own names (`XXBTZUSD` result keys, `XBTUSD` altnames); requests only for `KRAKEN_REST_PAIRS`.
 * - Binance: `btcusdt` in stream names (lower case), `BTCUSDT` in events and REST.
 * - Coinbase Advanced Trade: `BTC-USD`.
 */

const PAIR = /^[A-Z0-9]{2,12}\/[A-Z0-9]{2,12}$/;

/**
 * A pair given by the user (`--pair`, `--pairs`, `--as-pair`) in any spelling `normalisePair` reads → canonical, or
 * CC_ERR_PAIR naming the flag: one code for a pair that is not one, whatever the command.
 */
export function requirePair(text: string, flag: string): string {
  const pair = normalisePair(text);
  if (pair === undefined) throw fail(ERR.PAIR, `${flag}: not a pair: "${text}" (use e.g. BTC/USD)`);
  return pair;
}

/** Throws a clear error for anything that is not a canonical pair (configuration mistakes fail early). */
export function assertPairs(exchange: string, pairs: readonly string[]): void {
  if (pairs.length === 0) throw fail(ERR.PAIR, `${exchange}: no pair to follow`);
  for (const p of pairs)
    if (!PAIR.test(p))
      throw fail(ERR.PAIR, `${exchange}: "${p}" is not a pair like BTC/USD (upper case, slash)`);
}

/** `normalisePair`'s answers by spelling. */
const normalised = new Map<string, string | undefined>();

/**
 * Any user- or file-given pair spelling (`btc-usd`, `BTC_USD`, `BTCUSD`, `BTC/USD`, Kraken's `XBTUSD` or
 * `XBT/USD`) → canonical, or undefined. Kraken's names are looked up first: `XBTUSD` is BTC/USD, not XBT/USD.
 */
export function normalisePair(text: string): string | undefined {
  // A trade file names its pair on every row, and the parse (regexes, a split, a template) cost ~6 % of a replay
  // from CSV: remembered per spelling. Bounded, so a file of junk cells cannot grow it without limit.
  const known = normalised.get(text);
  if (known !== undefined || normalised.has(text)) return known;
  const t = text.trim().toUpperCase();
  const pair = separators(t) > 1 ? undefined : (krakenPair(t.replace(/[-_]/, '/')) ?? splitSymbol(t));
  if (normalised.size >= 1024) normalised.clear();
  normalised.set(text, pair);
  return pair;
}

function separators(text: string): number {
  return text.match(/[-_/]/g)?.length ?? 0;
}

// --- Kraken ------------------------------------------------------------------------------------------------

/** Kraken's own asset names that differ from the common ones. */
const KRAKEN_ASSETS: Record<string, string> = {
  XBT: 'BTC',
  XXBT: 'BTC',
  XETH: 'ETH',
  XXDG: 'DOGE',
  XDG: 'DOGE',
  XXRP: 'XRP',
  XLTC: 'LTC',
  ZUSD: 'USD',
  ZEUR: 'EUR',
  ZGBP: 'GBP',
};

/** Kraken REST result keys (and request altnames) → canonical pair. */
const KRAKEN_PAIRS: Record<string, string> = {
  XXBTZUSD: 'BTC/USD',
  XBTUSD: 'BTC/USD',
  XBTUSDT: 'BTC/USDT',
  XBTUSDC: 'BTC/USDC',
  XXBTZEUR: 'BTC/EUR',
  XBTEUR: 'BTC/EUR',
  XXBTZGBP: 'BTC/GBP',
  XBTGBP: 'BTC/GBP',
  XETHZUSD: 'ETH/USD',
  ETHUSD: 'ETH/USD',
  ETHUSDT: 'ETH/USDT',
  ETHUSDC: 'ETH/USDC',
  XETHZEUR: 'ETH/EUR',
  ETHEUR: 'ETH/EUR',
  XETHXXBT: 'ETH/BTC',
  ETHXBT: 'ETH/BTC',
  SOLUSD: 'SOL/USD',
  SOLUSDT: 'SOL/USDT',
  SOLEUR: 'SOL/EUR',
  XXRPZUSD: 'XRP/USD',
  XRPUSD: 'XRP/USD',
  XXDGZUSD: 'DOGE/USD',
  XDGUSD: 'DOGE/USD',
  XLTCZUSD: 'LTC/USD',
  LTCUSD: 'LTC/USD',
  ADAUSD: 'ADA/USD',
  DOTUSD: 'DOT/USD',
  USDTZUSD: 'USDT/USD',
  USDTUSD: 'USDT/USD',
};

/** Kraken REST result key, altname or `XBT/USD`-style name → canonical pair, or undefined when unknown. */
export function krakenPair(name: string): string | undefined {
  const upper = name.trim().toUpperCase();
  const known = KRAKEN_PAIRS[upper];
  if (known) return known;
  if (upper.includes('/')) {
    const parts = upper.split('/');
    if (parts.length !== 2) return undefined;
    const [b = '', q = ''] = parts;
    const pair = `${KRAKEN_ASSETS[b] ?? b}/${KRAKEN_ASSETS[q] ?? q}`;
    return PAIR.test(pair) ? pair : undefined;
  }
  return undefined;
}

/** Canonical pair → Kraken v2 symbol (the same spelling; v2 dropped `XBT`). */
export function krakenWsSymbol(pair: string): string {
  return pair;
}

/** Kraken v2 symbol (always `BASE/QUOTE`) → canonical pair (`XBT` read as BTC, defensively). Undefined if not a pair. */
export function krakenWsPair(symbol: string): string | undefined {
  return symbol.includes('/') ? krakenPair(symbol) : undefined;
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
    throw fail(
      ERR.PAIR,
      `Kraken REST: no mapping for pair ${pair} (known: ${Object.keys(KRAKEN_REST_PAIRS).join(', ')})`,
    );
  return p;
}

// --- Concatenated symbols (Binance, file names) ------------------------------------------------------------

/** Quote assets, longer first where one ends another (`USDT`, `FDUSD`, `TUSD`, `BUSD` before `USD`). */
const QUOTES = [
  'FDUSD',
  'USDT',
  'USDC',
  'TUSD',
  'BUSD',
  'USD',
  'EUR',
  'GBP',
  'TRY',
  'JPY',
  'BTC',
  'ETH',
  'BNB',
];

/** Concatenated symbol (`BTCUSDT`, `ethusdt`, `BTC-USDT`) → canonical pair by its quote suffix, or undefined. */
export function splitSymbol(symbol: string): string | undefined {
  if (separators(symbol) > 1) return undefined;
  const s = symbol.toUpperCase().replace(/[-_/]/g, '');
  if (!/^[A-Z0-9]+$/.test(s)) return undefined;
  for (const q of QUOTES)
    if (s.length > q.length + 1 && s.endsWith(q)) {
      const pair = `${s.slice(0, -q.length)}/${q}`;
      return PAIR.test(pair) ? pair : undefined;
    }
  return undefined;
}

/** `BTC/USDT` → `btcusdt` (stream names are lower case). */
export function binanceStreamSymbol(pair: string): string {
  return pair.replace('/', '').toLowerCase();
}

/** `BTC/USDT` → `BTCUSDT` (events and REST). */
export function binanceRestSymbol(pair: string): string {
  return pair.replace('/', '').toUpperCase();
}

/** `BTCUSDT` (any case, no separator: Binance never writes one) → `BTC/USDT`; undefined when no known quote ends it. */
export function binancePair(symbol: string): string | undefined {
  return /^[A-Za-z0-9]+$/.test(symbol) ? splitSymbol(symbol) : undefined;
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

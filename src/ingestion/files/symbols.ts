/**
 * Exchange symbols → canonical pairs (`BTC/USD`). Explicit tables where an exchange has its own names
 * (Kraken's XBT, XDG and X/Z-prefixed legacy names: guessing there would turn `XXBTZUSD` into nonsense),
 * quote-suffix splitting for plainly concatenated symbols (Binance `BTCUSDT`).
 */

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

/** Quote assets, longest first where one ends another (`USDT` before `USD`). */
const QUOTES = [
  'USDT',
  'USDC',
  'FDUSD',
  'BUSD',
  'TUSD',
  'USD',
  'EUR',
  'GBP',
  'BTC',
  'ETH',
  'BNB',
  'TRY',
  'JPY',
];

const PAIR_SHAPE = /^[A-Z0-9]{2,12}\/[A-Z0-9]{2,12}$/;

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
    return PAIR_SHAPE.test(pair) ? pair : undefined;
  }
  return undefined;
}

/** Concatenated symbol (`BTCUSDT`, `ethusdt`, `BTC-USDT`) → canonical pair by its quote suffix, or undefined. */
export function splitSymbol(symbol: string): string | undefined {
  if (separators(symbol) > 1) return undefined;
  const s = symbol.toUpperCase().replace(/[-_/]/g, '');
  if (!/^[A-Z0-9]+$/.test(s)) return undefined;
  for (const q of QUOTES)
    if (s.length > q.length + 1 && s.endsWith(q)) {
      const pair = `${s.slice(0, -q.length)}/${q}`;
      return PAIR_SHAPE.test(pair) ? pair : undefined;
    }
  return undefined;
}

/** Canonical pair → Binance stream symbol (`BTC/USDT` → `btcusdt`). */
export function binanceSymbol(pair: string): string {
  return pair.replace('/', '').toLowerCase();
}

/**
 * Any user- or file-given pair spelling (`btc-usd`, `BTC_USD`, `BTCUSD`, `BTC/USD`, Kraken's `XBTUSD` or
 * `XBT/USD`) → canonical, or undefined. Kraken's names are looked up first: `XBTUSD` is BTC/USD, not XBT/USD.
 */
export function normalisePair(text: string): string | undefined {
  const t = text.trim().toUpperCase();
  if (separators(t) > 1) return undefined;
  return krakenPair(t.replace(/[-_]/, '/')) ?? splitSymbol(t);
}

function separators(text: string): number {
  return text.match(/[-_/]/g)?.length ?? 0;
}

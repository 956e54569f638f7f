/**
 * Exchange symbols → canonical pairs (`BTC/USD`). Explicit tables where exchanges use their own names
 * (Kraken's XBT, X/Z prefixes), and quote-suffix splitting for concatenated symbols (Binance `BTCUSDT`).
 */
const KRAKEN_ASSETS: Record<string, string> = {
  XBT: 'BTC',
  XXBT: 'BTC',
  XETH: 'ETH',
  ZUSD: 'USD',
  ZEUR: 'EUR',
  XDG: 'DOGE',
  XXDG: 'DOGE',
};

const KRAKEN_PAIRS: Record<string, string> = {
  XXBTZUSD: 'BTC/USD',
  XBTUSD: 'BTC/USD',
  XBTUSDT: 'BTC/USDT',
  XBTUSDC: 'BTC/USDC',
  XBTEUR: 'BTC/EUR',
  XXBTZEUR: 'BTC/EUR',
  XETHZUSD: 'ETH/USD',
  ETHUSD: 'ETH/USD',
  ETHUSDT: 'ETH/USDT',
  XETHZEUR: 'ETH/EUR',
  ETHEUR: 'ETH/EUR',
  XETHXXBT: 'ETH/BTC',
  ETHXBT: 'ETH/BTC',
};

/** Canonical pair → Kraken REST `pair` parameter. */
export const KRAKEN_REST_PAIR: Record<string, string> = {
  'BTC/USD': 'XBTUSD',
  'BTC/USDT': 'XBTUSDT',
  'BTC/USDC': 'XBTUSDC',
  'BTC/EUR': 'XBTEUR',
  'ETH/USD': 'ETHUSD',
  'ETH/USDT': 'ETHUSDT',
  'ETH/EUR': 'ETHEUR',
  'ETH/BTC': 'ETHXBT',
};

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

/** Kraken REST result key or pair name → canonical pair, or undefined when unknown. */
export function krakenPair(name: string): string | undefined {
  const known = KRAKEN_PAIRS[name.toUpperCase()];
  if (known) return known;
  if (name.includes('/')) {
    const [b, q] = name.toUpperCase().split('/');
    return `${KRAKEN_ASSETS[b!] ?? b}/${KRAKEN_ASSETS[q!] ?? q}`;
  }
  return undefined;
}

/** Concatenated symbol (`BTCUSDT`, `ethusdt`) → canonical pair by its quote suffix, or undefined. */
export function splitSymbol(symbol: string): string | undefined {
  const s = symbol.toUpperCase().replace(/[-_/]/g, '');
  for (const q of QUOTES)
    if (s.length > q.length + 1 && s.endsWith(q)) return `${s.slice(0, -q.length)}/${q}`;
  return undefined;
}

/** Canonical pair → Binance stream symbol (`BTC/USDT` → `btcusdt`). */
export function binanceSymbol(pair: string): string {
  return pair.replace('/', '').toLowerCase();
}

/** Any user-given pair spelling (`btc-usd`, `BTCUSD`, `BTC/USD`) → canonical, or undefined. */
export function normalisePair(text: string): string | undefined {
  const t = text.trim().toUpperCase();
  if (/^[A-Z0-9]{2,12}[/-][A-Z0-9]{2,12}$/.test(t)) return t.replace('-', '/');
  return splitSymbol(t) ?? krakenPair(t);
}

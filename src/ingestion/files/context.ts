import { basename } from 'node:path';
import { normalisePair, requirePair, splitSymbol } from '../symbols.ts';
import { TradeFileError, type TradeFileFormat } from './types.ts';

/** What every row parser of one file needs to know besides the row. */
export interface ParseContext {
  /** Canonical pair override (the `pair` option), or the pair the file's name says for one-pair formats. */
  pair: string | undefined;
  exchange: string;
  /** The file's name, for messages. */
  file: string;
}

const DEFAULT_EXCHANGE: Record<TradeFileFormat, string> = {
  'kraken-rest-json': 'kraken',
  'binance-ws-capture': 'binance',
  'kraken-csv': 'kraken',
  'binance-trades-csv': 'binance',
  csv: 'file',
};

/**
 * One-pair CSV layouts do not name their pair inside: it comes from the option, else the file name as the
 * exchanges publish them (`BTCUSDT-trades-2024-08-08.csv`, our `kraken_btcusd_trades_….csv`), else the pair
 * of the only recording known in that layout (documented in `csv.ts`).
 */
function pairFromName(format: TradeFileFormat, file: string): string | undefined {
  if (format === 'binance-trades-csv') {
    const m = /^([A-Za-z0-9]+)-trades-/.exec(file);
    return (m && splitSymbol(m[1]!)) ?? 'BTC/USDT';
  }
  if (format === 'kraken-csv') {
    const m = /^kraken[_-]([A-Za-z0-9]+)[_-]/i.exec(file);
    return (m && normalisePair(m[1]!)) ?? 'BTC/USD';
  }
  return undefined;
}

export function parseContext(
  path: string,
  format: TradeFileFormat,
  options: { pair?: string; exchange?: string },
): ParseContext {
  const file = basename(path);
  let pair: string | undefined;
  if (options.pair !== undefined) {
    pair = requirePair(options.pair, '--pair');
  } else pair = pairFromName(format, file);
  const exchange = options.exchange ?? DEFAULT_EXCHANGE[format];
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(exchange))
    throw new TradeFileError(`not an exchange id: "${exchange}" (lower case, e.g. kraken)`);
  return { pair, exchange, file };
}

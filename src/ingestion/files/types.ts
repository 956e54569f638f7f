import { CryptocastError, ERR } from '../../core/errors.ts';
import type { Trade } from '../../schemas/trade.ts';

/**
 * The recorded trade file formats we read (see `readers.ts` for each layout). All of them may be gzip- or
 * zip-compressed; compression is recognised by magic bytes, never by the file name.
 */
export const TRADE_FILE_FORMATS = [
  'kraken-rest-json',
  'binance-ws-capture',
  'kraken-csv',
  'binance-trades-csv',
  'csv',
] as const;
export type TradeFileFormat = (typeof TRADE_FILE_FORMATS)[number];

export function isTradeFileFormat(value: string): value is TradeFileFormat {
  return (TRADE_FILE_FORMATS as readonly string[]).includes(value);
}

/**
 * A row (or line, or whole document) that could not be turned into a trade. `line` is the 1-based physical
 * line for line formats (CSV, capture) and the 1-based row of the trades array for Kraken REST JSON;
 * `payload` is the original text (a giant line is cut, its reason says so).
 */
export interface TradeFileReject {
  line: number;
  reason: string;
  payload: string;
}

/** What a reader yields: a batch of schema-valid trades, in file order, and the rows it could not use. */
export interface TradeFileBatch {
  trades: Trade[];
  rejects: TradeFileReject[];
}

export interface ReadOptions {
  /** `auto` (default) detects the format from the file's first bytes and name. */
  format?: TradeFileFormat | 'auto';
  /**
   * The pair of every trade, overriding what the file says (its Kraken result key, its name, or a
   * symbol/pair column), e.g. `BTC/USD`. Needed when the file does not say. Same meaning as `--pair` for
   * OHLCV inputs of `cryptocast candles`.
   */
  pair?: string;
  /** Exchange id of the trades. Default: the format's exchange (`kraken`, `binance`); `file` for `csv`. */
  exchange?: string;
  /** Trades per yielded batch at most (default 1000). */
  batchSize?: number;
}

/**
 * The file cannot be read as asked (unknown format, a CSV header without the needed columns, a pair that
 * cannot be told): a mistake in how it was called, printed without a stack trace like other usage errors.
 * Bad *rows* are never thrown: they are rejects.
 */
export class TradeFileError extends CryptocastError {
  override readonly name = 'TradeFileError';
  constructor(message: string) {
    super(ERR.INPUT.code, message, { exitCode: ERR.INPUT.exitCode });
  }
}

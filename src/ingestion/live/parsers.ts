/**
 * The pure frame parsers of the live connectors, one file per exchange: message text → `{trades, rejects,
 * controls}`. They never throw; field meanings are in docs/exchange-protocols.md.
 */
export { parseBinanceFrame } from './binance-parser.ts';
export {
  type CoinbaseSideMeaning,
  coinbaseTakerSide,
  DEFAULT_COINBASE_SIDE_MEANING,
  parseCoinbaseFrame,
} from './coinbase-parser.ts';
export { parseKrakenFrame } from './kraken-parser.ts';
export type { Control, Parsed, Reject } from './parse-common.ts';

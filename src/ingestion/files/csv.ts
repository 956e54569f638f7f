import { parse as parseCsv } from 'csv-parse/sync';
import { normalisePair } from '../symbols.ts';
import type { ParseContext } from './context.ts';
import {
  decimal,
  digitsId,
  Problems,
  type RowResult,
  reject,
  show,
  sideWord,
  type TradeFields,
  toTrade,
} from './row.ts';
import { epochToMs, parseTime } from './time.ts';
import { TradeFileError, type TradeFileFormat } from './types.ts';

/**
 * Trade CSVs, one record per physical line (trade files never quote a newline). Parsing line by line keeps
 * a broken line local: with a whole-file parser, one stray quote would swallow every following row into a
 * single field. Lines without a quote are plain comma lists; quoted lines go through csv-parse.
 *
 * Layouts:
 * - `kraken-csv`: `time_ms,timestamp_utc,side,price,amount` (header optional). The file has no trade ids:
 *   each trade gets `<time_ms>-<line number>`, deterministic for a given file (re-reading it gives the same
 *   ids, so the deduplicator drops a second replay of it) and pointing at its line. The two time columns
 *   must agree. Pair: option, else the name (`kraken_btcusd_…`), else BTC/USD (the recording in this layout).
 * - `binance-trades-csv`: Binance public data `id,price,qty,quoteQty,time,isBuyerMaker[,isBestMatch]`,
 *   headerless (spot) or with a header (futures: `quote_qty`, `is_buyer_maker`, 6 columns); `time` in ms, or
 *   µs (spot files from 2025). Buyer is maker ⇒ the taker sold. Pair: option, else the name
 *   (`BTCUSDT-trades-2024-08-08.csv`), else BTC/USDT.
 * - `csv`: any header with a time column (`timestamp|time|date|tradeTs|…`: epoch s/ms/µs/ns by magnitude, or
 *   ISO 8601 with a zone), `price`, a size column (`qty|amount|size|volume|quantity`), and optionally
 *   `side`, an id (`id|tradeId|trade_id`; else `<time>-<line>`), `pair|symbol` (else the option).
 */
export interface LineParser {
  /** A trade or reject; `undefined` for a header line. */
  parse(text: string, n: number): RowResult | undefined;
}

/** Splits one CSV line into trimmed cells, or returns why it cannot. */
export function splitCsvLine(text: string): string[] | { error: string } {
  if (!text.includes('"')) return text.split(',').map((c) => c.trim());
  try {
    const records: string[][] = parseCsv(text, {
      relax_quotes: true,
      relax_column_count: true,
      record_delimiter: '\n',
      trim: true,
    });
    const first = records[0];
    if (records.length !== 1 || first === undefined) return { error: 'not one CSV record' };
    return first;
  } catch (err) {
    return { error: `bad CSV: ${(err as Error).message}` };
  }
}

/** Header cell → lookup key: case, spaces, quotes and separators do not matter (`Trade ID` = `trade_id`). */
export function columnKey(cell: string): string {
  return cell.toLowerCase().replace(/[\s"'_-]/g, '');
}

export function csvLineParser(
  format: Exclude<TradeFileFormat, 'kraken-rest-json' | 'binance-ws-capture'>,
  ctx: ParseContext,
): LineParser {
  if (format === 'kraken-csv') return new KrakenCsv(ctx);
  if (format === 'binance-trades-csv') return new BinanceTradesCsv(ctx);
  return new GenericCsv(ctx);
}

abstract class CsvParser implements LineParser {
  protected readonly ctx: ParseContext;
  private first = true;
  constructor(ctx: ParseContext) {
    this.ctx = ctx;
  }
  parse(text: string, n: number): RowResult | undefined {
    const cells = splitCsvLine(text);
    if (!Array.isArray(cells)) return reject(n, cells.error, text);
    if (this.first) {
      this.first = false;
      if (this.header(cells)) return undefined;
    }
    return this.row(cells, n, text);
  }
  /** Takes the first line as a header when it is one (throws when it is an unusable one). */
  protected abstract header(cells: string[]): boolean;
  protected abstract row(cells: string[], n: number, text: string): RowResult;

  /** The recent rows by their text, for files without trade ids (bounded: duplicates sit close together). */
  private readonly recentRows = new Map<string, number>();

  /**
   * Without a trade id, a row repeated exactly (same time, price, size, side) cannot be told from a second copy of
   * one trade; counted twice it would double its minute's volume. The repeat is refused with the line it repeats
   * (the caller counts and reports rejects), so the trade counts once and the user is told.
   */
  protected exactRepeat(text: string, n: number): RowResult | undefined {
    const key = text.trim();
    const first = this.recentRows.get(key);
    if (first !== undefined)
      return reject(n, `exact repeat of line ${first} and the file has no trade ids: counted once`, text);
    this.recentRows.set(key, n);
    if (this.recentRows.size > 10_000) this.recentRows.delete(this.recentRows.keys().next().value!);
    return undefined;
  }
}

const KRAKEN_COLUMNS = 'timems,timestamputc,side,price,amount';

class KrakenCsv extends CsvParser {
  protected header(cells: string[]): boolean {
    if (columnKey(cells[0] ?? '') !== 'timems') return false;
    if (cells.map(columnKey).join(',') !== KRAKEN_COLUMNS)
      throw new TradeFileError(
        `${this.ctx.file}: not the Kraken CSV header time_ms,timestamp_utc,side,price,amount (use --format csv)`,
      );
    return true;
  }
  protected row(c: string[], n: number, text: string): RowResult {
    if (c.length !== 5)
      return reject(n, `expected 5 columns (time_ms,timestamp_utc,side,price,amount), got ${c.length}`, text);
    const repeat = this.exactRepeat(text, n);
    if (repeat !== undefined) return repeat;
    const [timeMs = '', iso = '', side = '', price, amount] = c;
    const p = new Problems();
    const tradeTs = /^\d{13}$/.test(timeMs)
      ? Number(timeMs)
      : p.add(`time_ms: not epoch milliseconds (${show(timeMs)})`);
    if (tradeTs !== undefined && iso !== '' && parseTime(iso) !== tradeTs)
      p.add(`timestamp_utc ${show(iso)} does not match time_ms ${timeMs}`);
    const trade: TradeFields = {
      exchange: this.ctx.exchange,
      pair: this.ctx.pair,
      price: decimal(p, 'price', price),
      qty: decimal(p, 'amount', amount),
      side: sideWord(p, side),
      tradeId: `${timeMs}-${n}`,
      tradeTs,
      receivedTs: tradeTs,
    };
    return toTrade(trade, p, n, text);
  }
}

class BinanceTradesCsv extends CsvParser {
  protected header(cells: string[]): boolean {
    if (columnKey(cells[0] ?? '') !== 'id') return false;
    const names = cells.map(columnKey);
    if (names[1] !== 'price' || names[2] !== 'qty' || names[4] !== 'time' || names[5] !== 'isbuyermaker')
      throw new TradeFileError(
        `${this.ctx.file}: not a Binance trades header id,price,qty,quoteQty,time,isBuyerMaker (use --format csv)`,
      );
    return true;
  }
  protected row(c: string[], n: number, text: string): RowResult {
    if (c.length !== 6 && c.length !== 7)
      return reject(
        n,
        `expected 6 or 7 columns (id,price,qty,quoteQty,time,isBuyerMaker[,isBestMatch]), got ${c.length}`,
        text,
      );
    const [id, price, qty, , time = '', maker = ''] = c;
    const p = new Problems();
    const tradeTs = epochToMs(time) ?? p.add(`time: not an epoch number (${show(time)})`);
    const m = maker.toLowerCase();
    const trade: TradeFields = {
      exchange: this.ctx.exchange,
      pair: this.ctx.pair,
      price: decimal(p, 'price', price),
      qty: decimal(p, 'qty', qty),
      side:
        m === 'true'
          ? 'sell'
          : m === 'false'
            ? 'buy'
            : p.add(`isBuyerMaker: not true or false (${show(maker)})`),
      tradeId: digitsId(p, 'id', id),
      tradeTs,
      receivedTs: tradeTs,
    };
    return toTrade(trade, p, n, text);
  }
}

export const TIME_COLUMNS = ['timestamp', 'time', 'date', 'tradets', 'datetime', 'tradetime'];
export const QTY_COLUMNS = ['qty', 'amount', 'size', 'volume', 'quantity'];
const ID_COLUMNS = ['id', 'tradeid'];
const PAIR_COLUMNS = ['pair', 'symbol'];

class GenericCsv extends CsvParser {
  private width = 0;
  private time = -1;
  private price = -1;
  private qty = -1;
  private side = -1;
  private id = -1;
  private pair = -1;

  protected header(cells: string[]): boolean {
    const names = cells.map(columnKey);
    const find = (options: string[]) => {
      for (const o of options) {
        const i = names.indexOf(o);
        if (i >= 0) return i;
      }
      return -1;
    };
    this.width = names.length;
    this.time = find(TIME_COLUMNS);
    this.price = find(['price']);
    this.qty = find(QTY_COLUMNS);
    this.side = find(['side']);
    this.id = find(ID_COLUMNS);
    this.pair = find(PAIR_COLUMNS);
    const missing = [
      this.time < 0 ? `a time column (${TIME_COLUMNS.join('|')})` : '',
      this.price < 0 ? 'price' : '',
      this.qty < 0 ? `a size column (${QTY_COLUMNS.join('|')})` : '',
    ].filter(Boolean);
    if (missing.length > 0)
      throw new TradeFileError(
        `${this.ctx.file}: the CSV header (${show(cells.join(','))}) lacks ${missing.join(', ')}`,
      );
    return true;
  }

  protected row(c: string[], n: number, text: string): RowResult {
    if (c.length !== this.width) return reject(n, `${c.length} cells, the header has ${this.width}`, text);
    const p = new Problems();
    const time = c[this.time]!;
    const tradeTs =
      parseTime(time) ?? p.add(`time: not an epoch number or ISO 8601 time with a zone (${show(time)})`);
    const pairCell = this.pair >= 0 ? c[this.pair]! : '';
    const named = pairCell === '' ? undefined : normalisePair(pairCell);
    // --pair names the pair of a file that does not say: a row naming another was relabelled into its series
    // (BTC/USDT trades mixed into BTC/USD candles).
    const pair =
      this.ctx.pair !== undefined
        ? named === undefined || named === this.ctx.pair
          ? this.ctx.pair
          : p.add(
              `pair: the row says ${named}, not --pair ${this.ctx.pair} (--pair is for files without a pair)`,
            )
        : pairCell !== ''
          ? (named ?? p.add(`pair: not a pair (${show(pairCell)})`))
          : p.add('no pair: add a pair or symbol column, or pass the pair (--pair)');
    const id = this.id >= 0 ? c[this.id]! : '';
    if (id === '') {
      const repeat = this.exactRepeat(text, n);
      if (repeat !== undefined) return repeat;
    }
    const trade: TradeFields = {
      exchange: this.ctx.exchange,
      pair,
      price: decimal(p, 'price', c[this.price]),
      qty: decimal(p, 'qty', c[this.qty]),
      side: this.side >= 0 ? sideWord(p, c[this.side]!) : 'unknown',
      // Without an id column, time and line identify a trade deterministically (as for the Kraken CSV).
      tradeId: id !== '' ? id : `${time}-${n}`,
      tradeTs,
      receivedTs: tradeTs,
    };
    return toTrade(trade, p, n, text);
  }
}

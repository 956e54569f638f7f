import { basename } from 'node:path';
import { compressionOf, fileHead } from './bytes.ts';
import { columnKey, QTY_COLUMNS, splitCsvLine, TIME_COLUMNS } from './csv.ts';
import { TRADE_FILE_FORMATS, TradeFileError, type TradeFileFormat } from './types.ts';

/**
 * Tells a trade file's format from its first (decompressed) bytes, and from its name only when the content
 * says nothing (empty, or unreadable: then the reader reports why). Content wins over names because files
 * get renamed. Files that are not trades (Kraken OHLC, kline or OHLCV CSVs) are refused with a hint rather
 * than read as trades.
 */
export async function detectTradeFileFormat(path: string): Promise<TradeFileFormat> {
  const name = basename(path);
  try {
    await compressionOf(path);
  } catch (err) {
    throw new TradeFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let head = '';
  let readable = true;
  try {
    head = (await fileHead(path)).toString('utf8');
  } catch {
    readable = false; // corrupt compression: decided by the name; the reader will say what is wrong
  }
  const format = readable && head.trim() !== '' ? formatOfContent(name, head) : formatOfName(name);
  if (format !== undefined) return format;
  const first = head.split('\n', 1)[0]?.slice(0, 120) ?? '';
  throw new TradeFileError(
    `cannot tell the trade file format of ${name} (first line: ${JSON.stringify(first)}); pass --format ${TRADE_FILE_FORMATS.join('|')}`,
  );
}

/** The format the content shows, or undefined. Throws for recognised files that are not trades. */
export function formatOfContent(name: string, head: string): TradeFileFormat | undefined {
  const text = head.replace(/^\uFEFF/, '');
  if (text.trimStart().startsWith('{')) {
    if (!/"error"\s*:/.test(text) || !/"result"\s*:/.test(text)) return undefined;
    // Trades rows start with a price string ("105433.6"); OHLC rows with an integer time.
    const firstCell = /"result"\s*:\s*\{\s*"[^"]*"\s*:\s*\[\s*\[\s*(\S)/.exec(text)?.[1];
    if (firstCell !== undefined && firstCell !== '"')
      throw new TradeFileError(`${name} is a Kraken OHLC (candles) response, not trades`);
    return 'kraken-rest-json';
  }
  const first = (text.split('\n', 1)[0] ?? '').replace(/\r$/, '');
  if (/^\d{10,19} \{/.test(first)) return 'binance-ws-capture';
  const cells = splitCsvLine(first);
  if (!Array.isArray(cells)) return undefined;
  const names = cells.map(columnKey);
  const line = names.join(',');
  if (line === 'timems,timestamputc,side,price,amount') return 'kraken-csv';
  if (/^\d{13},\d{4}-\d\d-\d\dT[^,]+,(buy|sell),[\d.]+,[\d.]+$/i.test(first)) return 'kraken-csv';
  if (/^id,price,qty,quoteqty,time,isbuyermaker(,isbestmatch)?$/.test(line)) return 'binance-trades-csv';
  if (/^\d+,[\d.]+,[\d.]+,[\d.]+,\d{12,17},(true|false)(,(true|false))?$/i.test(first))
    return 'binance-trades-csv';
  const has = (options: string[]) => options.some((o) => names.includes(o));
  if (has(['price']) && has(TIME_COLUMNS) && has(QTY_COLUMNS)) return 'csv';
  return undefined;
}

/** The format a file's name suggests, for files whose content cannot tell (empty, corrupt). */
export function formatOfName(name: string): TradeFileFormat | undefined {
  const n = name.toLowerCase();
  if (/ohlc|kline|-1m-/.test(n)) return undefined;
  if (/\.json(\.gz)?$/.test(n)) return 'kraken-rest-json';
  if (/^[a-z0-9]+-trades-.*\.(csv|zip)/.test(n)) return 'binance-trades-csv';
  if (/^kraken[_-].*\.csv/.test(n)) return 'kraken-csv';
  if (/ws.*\.txt(\.gz)?$/.test(n)) return 'binance-ws-capture';
  if (/\.csv(\.gz)?$/.test(n)) return 'csv';
  return undefined;
}

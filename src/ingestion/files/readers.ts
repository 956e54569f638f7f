import { parseBinanceCaptureLine } from './binance-capture.ts';
import { compressionOf, fileChunks, readWholeFile } from './bytes.ts';
import { type ParseContext, parseContext } from './context.ts';
import { csvLineParser, type LineParser } from './csv.ts';
import { detectTradeFileFormat } from './detect.ts';
import { parseKrakenRestTrades } from './kraken-rest.ts';
import { isBadLine, splitLines } from './lines.ts';
import { isReject, type RowResult } from './row.ts';
import {
  isTradeFileFormat,
  type ReadOptions,
  type TradeFileBatch,
  TradeFileError,
  type TradeFileFormat,
} from './types.ts';

export { detectTradeFileFormat } from './detect.ts';
export {
  isTradeFileFormat,
  type ReadOptions,
  TRADE_FILE_FORMATS,
  type TradeFileBatch,
  TradeFileError,
  type TradeFileFormat,
  type TradeFileReject,
} from './types.ts';

/**
 * Readers of recorded trade files → schema-valid `Trade`s, streamed in batches, in file order.
 *
 * Formats (layouts in `kraken-rest.ts`, `binance-capture.ts`, `csv.ts`): `kraken-rest-json`,
 * `binance-ws-capture`, `kraken-csv`, `binance-trades-csv`, `csv`; any of them gzip- or zip-compressed.
 * Line formats are streamed in bounded memory (a giant file or a giant line is fine); the Kraken REST JSON
 * is one JSON document and is read whole.
 *
 * A row that cannot be used becomes a reject (line, reason, original text): bad rows never throw and are
 * never dropped silently. What does throw is a `TradeFileError` for a file that cannot be read as asked:
 * missing file, unknown format, a CSV header without the needed columns, a bad `pair` option.
 */
export async function* readTradeFile(
  path: string,
  options: ReadOptions = {},
): AsyncGenerator<TradeFileBatch> {
  const format = await resolveFormat(path, options.format);
  const ctx = parseContext(path, format, options);
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new TradeFileError(`batch size must be a positive integer, got ${batchSize}`);
  const rows =
    format === 'kraken-rest-json' ? krakenRestRows(path, ctx) : lineRows(path, lineParser(format, ctx));
  let batch: TradeFileBatch = { trades: [], rejects: [] };
  for await (const chunk of rows) {
    for (const r of chunk) {
      if (isReject(r)) batch.rejects.push(r);
      else batch.trades.push(r);
      // Rejects count too: a file of nothing but bad lines must not pile up in memory either.
      if (batch.trades.length + batch.rejects.length >= batchSize) {
        yield batch;
        batch = { trades: [], rejects: [] };
      }
    }
  }
  if (batch.trades.length + batch.rejects.length > 0) yield batch;
}

async function resolveFormat(path: string, format: ReadOptions['format']): Promise<TradeFileFormat> {
  if (format === undefined || format === 'auto') return detectTradeFileFormat(path);
  if (!isTradeFileFormat(format)) throw new TradeFileError(`unknown trade file format "${String(format)}"`);
  try {
    await compressionOf(path); // a missing or unreadable file is a usage error, not a reject
  } catch (err) {
    throw new TradeFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return format;
}

/** The row parser of a line format (the Kraken REST JSON is a document, not lines). */
export function lineParser(format: TradeFileFormat, ctx: ParseContext): LineParser {
  if (format === 'binance-ws-capture') return { parse: (text, n) => parseBinanceCaptureLine(text, n, ctx) };
  if (format === 'kraken-rest-json') throw new TradeFileError('kraken-rest-json is not a line format');
  return csvLineParser(format, ctx);
}

async function* lineRows(path: string, parser: LineParser): AsyncGenerator<RowResult[]> {
  for await (const lines of splitLines(fileChunks(path))) {
    const out: RowResult[] = [];
    for (const l of lines) {
      if (isBadLine(l)) out.push({ line: l.n, reason: l.error, payload: l.payload });
      else if (l.text.trim() !== '') {
        const r = parser.parse(l.text, l.n);
        if (r !== undefined) out.push(r);
      }
    }
    yield out;
  }
}

async function* krakenRestRows(path: string, ctx: ParseContext): AsyncGenerator<RowResult[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readWholeFile(path);
  } catch (err) {
    yield [{ line: 1, reason: `unreadable: ${(err as Error).message}`, payload: '' }];
    return;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const payload = Buffer.from(bytes.subarray(0, 2000)).toString('utf8');
    yield [{ line: 1, reason: 'not valid UTF-8', payload }];
    return;
  }
  yield parseKrakenRestTrades(text, ctx);
}

import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse';
import { CryptocastError, ERR } from '../core/errors.ts';
import type { CandleInput } from '../features/technical.ts';
import { detectTradeFileFormat } from '../ingestion/files/detect.ts';
import { parseTime } from '../ingestion/files/time.ts';
import { normalisePair, requirePair, splitSymbol } from '../ingestion/symbols.ts';
import { fitsKlineBytes, type KlineLine, parseKlineLines } from './kline-bytes.ts';
import { zipEntries } from './zip-entries.ts';

/**
 * OHLCV candle files → candles, in time order, streamed in batches (architecture doc §6, the CSV rule):
 * - any CSV with a header that has a time column (`timestamp`, `time`, `date`, `open_time` or `windowStart`; epoch
 *   s, ms or µs, or ISO 8601 with an offset) and `open,high,low,close,volume` (any case); the pair comes from a
 *   `pair`/`symbol` column or the `pair` option; `trades`/`number_of_trades`, `vwap` and `filled` are used if present
 *   (so the output of `cryptocast candles` is read as it is);
 * - Binance public-data kline files as they come: headerless CSV, daily or monthly zips, or a folder of them
 *   (the pair from the file name, e.g. `BTCUSDT-1m-2022-01-01.zip`);
 * - gzip-compressed versions of all of these.
 * A row that cannot be used becomes a reject with its line and reason.
 */
export interface OhlcvBatch {
  candles: CandleInput[];
  rejects: OhlcvReject[];
}

/** A row that cannot be used (`line` from 1), or a whole file (`line` 0). */
export interface OhlcvReject {
  file: string;
  line: number;
  reason: string;
  /** A whole file left out because its name says another pair than `--pair` (that pair): no candle was refused. */
  otherPair?: string;
}

export class OhlcvFileError extends CryptocastError {
  override readonly name = 'OhlcvFileError';
  constructor(message: string) {
    super(ERR.INPUT.code, message, { exitCode: ERR.INPUT.exitCode });
  }
}

/** Longest record a candle file may have (characters); real rows are under 200. */
const MAX_RECORD_CHARS = 4_096;

/**
 * Why a file cannot be read as candles, as one clear line: a trades file is named as such (with the command that
 * makes candles of it), anything else says what the reader met (a broken gzip stream, a binary file, a line too
 * long to be a candle).
 */
async function unreadable(file: string, err: Error): Promise<OhlcvFileError> {
  if (err instanceof OhlcvFileError) return err;
  const name = basename(file);
  try {
    const format = await detectTradeFileFormat(file);
    return new OhlcvFileError(
      `${name} is a trades file (${format}), not candles: make candles of it first (cryptocast candles --input ${file} --output candles.csv)`,
    );
  } catch {
    // not a trades file either
  }
  const code = (err as { code?: string }).code ?? '';
  const what =
    code === 'CSV_MAX_RECORD_SIZE'
      ? `a record longer than ${MAX_RECORD_CHARS} characters (a candle row is under 200)`
      : code.startsWith('Z_') ||
          /header check|invalid (block|distance|code)|unexpected end of file/i.test(err.message)
        ? `not valid gzip data (${err.message})`
        : err.message.split('\n')[0]!.slice(0, 200);
  return new OhlcvFileError(`${name}: not a candle file: ${what}`);
}

const TIME = ['windowstart', 'timestamp', 'time', 'date', 'open_time', 'opentime'];
const TRADES = ['trades', 'number_of_trades', 'count'];

/** A Binance kline file's symbol and period (`BTCUSDT-1m-2022-05.zip`, `BTCUSDT-1m-2022-05-01.csv.gz`) as a sort key. */
const klineFileKey = (file: string): string => {
  const m = /^([A-Z0-9]+)-\d+[smhdwM]-(\d{4}-\d{2}(?:-\d{2})?)\./.exec(basename(file));
  return m ? `${m[1]}\u0000${m[2]}` : '';
};

/**
 * Every candle file of a path (a folder: its csv/zip/gz files, in path order; Binance kline files by symbol, then by
 * the month or day in their names). By path alone, a `data fetch` folder (past months in spot/monthly/…, the current
 * month in spot/daily/…) gave the latest days first, and every earlier candle was rejected as not after them.
 */
export function candleFiles(path: string): string[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new OhlcvFileError(`candles file or folder not found: ${path}`);
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (/\.(csv|zip|gz)$/i.test(e.name) && !/checksum|sha256/i.test(e.name)) out.push(full);
    }
  };
  walk(path);
  if (out.length === 0) throw new OhlcvFileError(`no candle files (csv, zip, gz) in ${path}`);
  // A stable sort: other files first, in path order; a month's file before the days of the same month.
  const keys = new Map(out.map((f) => [f, klineFileKey(f)]));
  return out.sort((a, b) => (keys.get(a)! < keys.get(b)! ? -1 : keys.get(a)! > keys.get(b)! ? 1 : 0));
}

export async function* readOhlcv(
  path: string,
  opts: { pair?: string; intervalMs?: number } = {},
): AsyncGenerator<OhlcvBatch> {
  const pair = opts.pair === undefined ? undefined : requirePair(opts.pair, '--pair');
  for (const file of candleFiles(path)) yield* readOne(file, pair, opts.intervalMs ?? 60_000);
}

async function* readOne(
  file: string,
  pairOption: string | undefined,
  intervalMs: number,
): AsyncGenerator<OhlcvBatch> {
  const name = basename(file);
  const filePair = /^([A-Z0-9]+)-\d+[smhdwM]/.exec(name)?.[1];
  // --pair names the pair of a file that does not say; a file whose name says another (a folder of BTCUSDT and ETHUSDT
  // days with --pair BTC/USDT) was relabelled into that series, as a row naming another pair is not.
  const namedPair = filePair ? splitSymbol(filePair) : undefined;
  if (pairOption !== undefined && namedPair !== undefined && namedPair !== pairOption) {
    yield {
      candles: [],
      rejects: [
        {
          file: name,
          line: 0,
          reason: `the file name says ${namedPair}, not --pair ${pairOption}: left out (--pair is for files without a pair; leave it out to read each file as its name says)`,
          otherPair: namedPair,
        },
      ],
    };
    return;
  }
  let input: AsyncIterable<Buffer | string> | Iterable<Buffer>;
  if (/\.zip$/i.test(name)) {
    let entries: Record<string, Uint8Array>;
    try {
      entries = zipEntries(readFileSync(file));
    } catch (err) {
      throw new OhlcvFileError(`${name}: not a readable zip archive (${(err as Error).message})`);
    }
    const csv = Object.entries(entries).find(([n]) => /\.csv$/i.test(n));
    if (!csv) {
      yield { candles: [], rejects: [{ file: name, line: 0, reason: 'zip without a CSV inside' }] };
      return;
    }
    // Headerless numeric lines (Binance klines): the byte parser, same results as the general path below.
    if (fitsKlineBytes(csv[1])) {
      yield* klineBatches(
        csv[1],
        name,
        pairOption ?? (filePair ? splitSymbol(filePair) : undefined),
        intervalMs,
      );
      return;
    }
    input = [Buffer.from(csv[1])];
  } else {
    const raw = createReadStream(file);
    input = /\.gz$/i.test(name) ? raw.pipe(createGunzip()) : raw;
  }
  const parser = parseCsv({
    relax_column_count: true,
    skip_empty_lines: true,
    trim: true,
    bom: true,
    info: true,
    // A candle row is under 200 characters: a longer record is not a candle file (a 200 MB single line would
    // otherwise be buffered and parsed for minutes).
    max_record_size: MAX_RECORD_CHARS,
  });
  let stopped = false;
  const feed = (async () => {
    try {
      for await (const chunk of input) {
        if (stopped || parser.destroyed) break;
        if (!parser.write(chunk))
          await new Promise((r) => {
            // A parser that failed is already closed: its 'close' will not come again.
            if (parser.destroyed) r(undefined);
            else parser.once('drain', r).once('close', r);
          });
      }
      parser.end();
    } catch (err) {
      parser.destroy(err as Error);
    }
  })();
  let cols: Map<string, number> | undefined;
  let headerless = false;
  let out: OhlcvBatch = { candles: [], rejects: [] };
  try {
    let records: AsyncIterator<{ record: string[]; info: { lines: number } }>;
    const next = async () => {
      try {
        return await records.next();
      } catch (err) {
        throw await unreadable(file, err as Error);
      }
    };
    records = (parser as AsyncIterable<{ record: string[]; info: { lines: number } }>)[
      Symbol.asyncIterator
    ]();
    for (let r = await next(); !r.done; r = await next()) {
      const rec = r.value;
      const c = rec.record;
      const line = rec.info.lines;
      if (cols === undefined && !headerless) {
        if (/^\d/.test(c[0] ?? ''))
          headerless = true; // Binance klines: no header row
        else {
          cols = new Map(c.map((h, i) => [h.trim().toLowerCase(), i]));
          const missing = ['open', 'high', 'low', 'close', 'volume'].filter((k) => !cols!.has(k));
          if (!TIME.some((t) => cols!.has(t))) missing.unshift(`a time column (${TIME.join('|')})`);
          if (missing.length > 0) throw new OhlcvFileError(`${name}: header lacks ${missing.join(', ')}`);
          continue;
        }
      }
      const row = headerless ? binanceKline(c, intervalMs) : byHeader(c, cols!, intervalMs);
      if (typeof row === 'string') {
        out.rejects.push({ file: name, line, reason: row });
        continue;
      }
      // --pair names the pair of a file that does not say: a row naming another was relabelled into its series.
      if (pairOption !== undefined && row.pair !== undefined && row.pair !== pairOption) {
        out.rejects.push({
          file: name,
          line,
          reason: `the row says ${row.pair}, not --pair ${pairOption} (--pair is for files without a pair)`,
        });
        continue;
      }
      const pair = pairOption ?? row.pair ?? (filePair ? splitSymbol(filePair) : undefined);
      if (pair === undefined) {
        out.rejects.push({ file: name, line, reason: 'no pair: add a pair/symbol column or pass --pair' });
        continue;
      }
      out.candles.push({ ...row, pair });
      if (out.candles.length >= 5_000) {
        yield out;
        out = { candles: [], rejects: [] };
      }
    }
  } finally {
    // The consumer may stop early (a limit): unblock the feeding loop so nothing is left pending.
    stopped = true;
    parser.destroy();
    await feed;
  }
  if (out.candles.length + out.rejects.length > 0) yield out;
}

/** Binance kline lines by the byte parser, in batches of 5,000 like the general path (same rows, same rejects). */
function* klineBatches(
  bytes: Uint8Array,
  name: string,
  pair: string | undefined,
  intervalMs: number,
): Generator<OhlcvBatch> {
  const batches: OhlcvBatch[] = [];
  let out: OhlcvBatch = { candles: [], rejects: [] };
  parseKlineLines(bytes, (l) => {
    // As the general path's max_record_size: a record this long is not a candle file.
    if (l.length > MAX_RECORD_CHARS)
      throw new OhlcvFileError(
        `${name}: not a candle file: a record longer than ${MAX_RECORD_CHARS} characters (a candle row is under 200)`,
      );
    const row = klineFromBytes(l, intervalMs);
    if (typeof row === 'string') out.rejects.push({ file: name, line: l.line, reason: row });
    else if (pair === undefined)
      out.rejects.push({
        file: name,
        line: l.line,
        reason: 'no pair: add a pair/symbol column or pass --pair',
      });
    else {
      row.pair = pair;
      out.candles.push(row as CandleInput);
      if (out.candles.length >= 5_000) {
        batches.push(out);
        out = { candles: [], rejects: [] };
      }
    }
  });
  if (out.candles.length + out.rejects.length > 0) batches.push(out);
  yield* batches;
}

/** `binanceKline` on a parsed line: the same candle (or reason), without a string per field. */
function klineFromBytes(
  l: KlineLine,
  intervalMs: number,
): (Omit<CandleInput, 'pair'> & { pair?: string }) | string {
  let start: number | undefined;
  const b = l.bytes;
  const s0 = l.start[0]!;
  const e0 = l.end[0]!;
  if (l.count > 0 && e0 - s0 >= 11 && e0 - s0 <= 13) {
    // Epoch milliseconds (11 to 13 digits), what Binance files hold before 2025; anything else goes to parseTime.
    let ms = 0;
    for (let i = s0; i < e0 && ms >= 0; i++) {
      const c = b[i]!;
      ms = c >= 48 && c <= 57 ? ms * 10 + (c - 48) : -1;
    }
    if (ms >= 0) start = ms;
  }
  if (start === undefined) {
    const t = l.text(0) ?? '';
    start = parseTime(t);
    if (start === undefined) return `bad open_time "${l.text(0)}"`;
  }
  const volume = l.number(5);
  const quote = l.number(7);
  return {
    pair: undefined,
    windowStart: start,
    windowEnd: start + intervalMs,
    open: l.number(1),
    high: l.number(2),
    low: l.number(3),
    close: l.number(4),
    volume,
    trades: l.count > 8 ? l.number(8) : undefined,
    vwap: volume > 0 && Number.isFinite(quote) ? quote / volume : undefined,
  };
}

function num(s: string | undefined): number {
  return s === undefined || s.trim() === '' ? Number.NaN : Number(s);
}

/** `open_time, open, high, low, close, volume, close_time, quote_volume, trades, taker_base, taker_quote, ignore` */
function binanceKline(
  c: string[],
  intervalMs: number,
): (Omit<CandleInput, 'pair'> & { pair?: string }) | string {
  const start = parseTime(c[0] ?? '');
  if (start === undefined) return `bad open_time "${c[0]}"`;
  const volume = num(c[5]);
  const quote = num(c[7]);
  return {
    windowStart: start,
    windowEnd: start + intervalMs,
    open: num(c[1]),
    high: num(c[2]),
    low: num(c[3]),
    close: num(c[4]),
    volume,
    trades: c[8] !== undefined ? num(c[8]) : undefined,
    vwap: volume > 0 && Number.isFinite(quote) ? quote / volume : undefined,
  };
}

function byHeader(
  c: string[],
  cols: Map<string, number>,
  intervalMs: number,
): (Omit<CandleInput, 'pair'> & { pair?: string }) | string {
  const at = (k: string) => {
    const i = cols.get(k);
    return i === undefined ? undefined : c[i];
  };
  const timeCol = TIME.find((t) => cols.has(t))!;
  const start = parseTime(at(timeCol) ?? '');
  if (start === undefined) return `bad ${timeCol} "${at(timeCol)}"`;
  const endText = at('windowend');
  const tradesCol = TRADES.find((t) => cols.has(t));
  const pairText = at('pair') ?? at('symbol');
  const filled = at('filled');
  return {
    pair: pairText ? normalisePair(pairText) : undefined,
    windowStart: start,
    windowEnd: endText ? num(endText) : start + intervalMs,
    open: num(at('open')),
    high: num(at('high')),
    low: num(at('low')),
    close: num(at('close')),
    volume: num(at('volume')),
    trades: tradesCol ? num(at(tradesCol)) : undefined,
    vwap: cols.has('vwap') ? num(at('vwap')) : undefined,
    filled: filled === undefined ? undefined : filled === 'true',
  };
}

import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip, gunzipSync } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse';
import { summarise } from '../../runtime/in-process-bus.ts';
import { validate } from '../../runtime/validated.ts';
import { type Trade, TradeSchema } from '../../schemas/trade.ts';
import { krakenPair, normalisePair, splitSymbol } from './symbols.ts';
import { parseTime, secondsTextToMs } from './time.ts';

/**
 * Readers of recorded trade files → `Trade`s, streamed in batches. A row that cannot be used becomes a
 * reject (line number, reason, original text): never a crash, never a silent drop.
 *
 * Formats:
 * - `kraken-rest-json`   a Kraken REST `Trades` response (`{"error":[],"result":{"XBTUSDT":[[p,v,t,side,type,misc,id]…],"last":…}}`)
 * - `binance-ws-capture` one line per message: `<receive ns> <combined-stream JSON>` (`@trade` events)
 * - `kraken-csv`         `time_ms,timestamp_utc,side,price,amount` (no trade ids: `<time_ms>-<row>` is used)
 * - `binance-trades-csv` Binance public-data trades: `id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch`
 * - `csv`                any CSV with a header: a time column (`timestamp|time|date|tradeTs|trade_time`,
 *                        epoch s/ms/µs/ns or ISO 8601 with offset), `price`, a size column
 *                        (`qty|amount|size|volume|quantity`), optional `side`, `id|tradeId|trade_id`, `pair|symbol`.
 * All may be gzip-compressed (detected by magic bytes).
 */
export const TRADE_FILE_FORMATS = [
  'kraken-rest-json',
  'binance-ws-capture',
  'kraken-csv',
  'binance-trades-csv',
  'csv',
] as const;
export type TradeFileFormat = (typeof TRADE_FILE_FORMATS)[number];

export interface TradeFileReject {
  line: number;
  reason: string;
  payload: string;
}

export interface TradeFileBatch {
  trades: Trade[];
  rejects: TradeFileReject[];
}

export interface ReadOptions {
  format?: TradeFileFormat | 'auto';
  /** Pair for files that do not name one (or to override the file's). */
  pair?: string;
  /** Exchange id for the trades (default: from the format, else `file`). */
  exchange?: string;
  batchSize?: number;
}

const MAX_LINE = 64 * 1024;

export class TradeFileError extends Error {
  override readonly name = 'UsageError';
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    await fh.read(buf, 0, 2, 0);
    return buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

async function head(path: string, bytes = 4096): Promise<string> {
  if (await isGzip(path)) {
    const stream = createReadStream(path).pipe(createGunzip());
    let text = '';
    for await (const chunk of stream) {
      text += chunk.toString('utf8');
      if (text.length >= bytes) break;
    }
    stream.destroy();
    return text.slice(0, bytes);
  }
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Picks the format from the file's first bytes (and name). */
export async function detectTradeFileFormat(path: string): Promise<TradeFileFormat> {
  let text: string;
  try {
    text = await head(path);
  } catch (err) {
    throw new TradeFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const first = text.split(/\r?\n/, 1)[0] ?? '';
  if (/^\s*\{\s*"error"\s*:/.test(text) && text.includes('"result"')) return 'kraken-rest-json';
  if (/^\d{16,20} \{/.test(first)) return 'binance-ws-capture';
  const header = first.toLowerCase().replace(/\s/g, '');
  if (header.startsWith('time_ms,timestamp_utc,side,price,amount')) return 'kraken-csv';
  if (/^\d+,\d+(\.\d+)?,\d+(\.\d+)?,\d+(\.\d+)?,\d{12,16},(true|false),(true|false)$/i.test(first.trim()))
    return 'binance-trades-csv';
  if (header.startsWith('id,price,qty,quoteqty,time,isbuyermaker')) return 'binance-trades-csv';
  if (/[a-z]/i.test(first) && first.includes(',') && /price/i.test(first)) return 'csv';
  throw new TradeFileError(
    `cannot tell the format of ${basename(path)} (first line: ${JSON.stringify(first.slice(0, 120))}); pass --format ${TRADE_FILE_FORMATS.join('|')}`,
  );
}

/** Streams the trades of one file in batches. */
export async function* readTradeFile(
  path: string,
  options: ReadOptions = {},
): AsyncGenerator<TradeFileBatch> {
  const format =
    !options.format || options.format === 'auto' ? await detectTradeFileFormat(path) : options.format;
  if (!TRADE_FILE_FORMATS.includes(format)) throw new TradeFileError(`unknown format "${format}"`);
  const pair = options.pair === undefined ? undefined : normalisePair(options.pair);
  if (options.pair !== undefined && pair === undefined)
    throw new TradeFileError(`not a pair: "${options.pair}" (use e.g. BTC/USD)`);
  const ctx: Ctx = {
    pair,
    exchange: options.exchange,
    batch: options.batchSize ?? 1000,
    file: basename(path),
  };
  switch (format) {
    case 'kraken-rest-json':
      yield* krakenRestJson(path, ctx);
      return;
    case 'binance-ws-capture':
      yield* byLine(path, ctx, binanceCaptureLine);
      return;
    default:
      yield* csvRows(path, ctx, format);
  }
}

interface Ctx {
  pair: string | undefined;
  exchange: string | undefined;
  batch: number;
  file: string;
}

function accept(raw: unknown, line: number, payload: string, out: TradeFileBatch): void {
  const r = validate(TradeSchema, raw);
  if (r.success) out.trades.push(r.data);
  else out.rejects.push({ line, reason: summarise(r.error), payload: payload.slice(0, MAX_LINE) });
}

async function* krakenRestJson(path: string, ctx: Ctx): AsyncGenerator<TradeFileBatch> {
  let buf = await readFile(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (err) {
      yield {
        trades: [],
        rejects: [{ line: 1, reason: `corrupt gzip: ${(err as Error).message}`, payload: '' }],
      };
      return;
    }
  }
  let doc: unknown;
  try {
    // The reviver keeps each number's source text: trade times are converted from their decimals, exactly.
    doc = JSON.parse(buf.toString('utf8'), (_k, v, context?: { source?: string }) =>
      typeof v === 'number' && context?.source !== undefined ? { num: v, src: context.source } : v,
    );
  } catch (err) {
    yield {
      trades: [],
      rejects: [
        {
          line: 1,
          reason: `not JSON: ${(err as Error).message}`,
          payload: buf.subarray(0, 2000).toString('utf8'),
        },
      ],
    };
    return;
  }
  const d = doc as { error?: unknown; result?: Record<string, unknown> };
  if (Array.isArray(d?.error) && d.error.length > 0) {
    yield {
      trades: [],
      rejects: [{ line: 1, reason: `Kraken error: ${d.error.join('; ')}`, payload: JSON.stringify(d.error) }],
    };
    return;
  }
  const result = d?.result;
  const keys = result && typeof result === 'object' ? Object.keys(result).filter((k) => k !== 'last') : [];
  if (keys.length !== 1 || !Array.isArray(result![keys[0]!])) {
    yield {
      trades: [],
      rejects: [
        {
          line: 1,
          reason: 'not a Kraken Trades response: need result.<PAIR> = [[…]] and result.last',
          payload: buf.subarray(0, 2000).toString('utf8'),
        },
      ],
    };
    return;
  }
  const key = keys[0]!;
  const pair = ctx.pair ?? krakenPair(key);
  const rows = result![key] as unknown[];
  let out: TradeFileBatch = { trades: [], rejects: [] };
  rows.forEach((row, i) => {
    const plain = JSON.stringify(row, (_k, v) =>
      v && typeof v === 'object' && 'src' in v ? Number(v.src) : v,
    );
    if (pair === undefined) {
      out.rejects.push({ line: i + 1, reason: `unknown Kraken pair "${key}": pass --pair`, payload: plain });
      return;
    }
    if (!Array.isArray(row) || row.length < 7) {
      out.rejects.push({
        line: i + 1,
        reason: 'trade row must be [price, volume, time, side, type, misc, trade_id]',
        payload: plain,
      });
      return;
    }
    const [price, volume, time, side, , , id] = row as unknown[];
    const t = time as { src?: string } | undefined;
    const tradeTs = typeof t === 'object' && t?.src ? secondsTextToMs(t.src) : undefined;
    const idv = id as { src?: string } | undefined;
    accept(
      {
        v: 1,
        type: 'trade',
        exchange: ctx.exchange ?? 'kraken',
        pair,
        price: typeof price === 'string' ? Number(price) : Number.NaN,
        qty: typeof volume === 'string' ? Number(volume) : Number.NaN,
        side: side === 'b' ? 'buy' : side === 's' ? 'sell' : 'invalid',
        tradeId: typeof idv === 'object' && idv?.src && /^\d+$/.test(idv.src) ? idv.src : undefined,
        tradeTs,
        receivedTs: tradeTs,
      },
      i + 1,
      plain,
      out,
    );
    if (out.trades.length + out.rejects.length >= ctx.batch) {
      // Generators cannot yield inside forEach: collected below.
    }
  });
  // The whole document is in memory already (one JSON value): yield it in batches.
  for (let i = 0; i < Math.max(out.trades.length, 1); i += ctx.batch) {
    yield { trades: out.trades.slice(i, i + ctx.batch), rejects: i === 0 ? out.rejects : [] };
  }
  out = { trades: [], rejects: [] };
}

type LineParser = (line: string, lineNo: number, ctx: Ctx, out: TradeFileBatch) => void;

async function* byLine(path: string, ctx: Ctx, parseLine: LineParser): AsyncGenerator<TradeFileBatch> {
  const raw = createReadStream(path);
  const input = (await isGzip(path)) ? raw.pipe(createGunzip()) : raw;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let out: TradeFileBatch = { trades: [], rejects: [] };
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      if (line.length > MAX_LINE) {
        out.rejects.push({
          line: n,
          reason: `line longer than ${MAX_LINE} characters`,
          payload: line.slice(0, 2000),
        });
      } else parseLine(line, n, ctx, out);
      if (out.trades.length + out.rejects.length >= ctx.batch) {
        yield out;
        out = { trades: [], rejects: [] };
      }
    }
  } catch (err) {
    out.rejects.push({ line: n + 1, reason: `unreadable file: ${(err as Error).message}`, payload: '' });
  }
  if (out.trades.length + out.rejects.length > 0) yield out;
}

/** `<receive ns> {"stream":"btcusdt@trade","data":{"e":"trade",...}}` */
const binanceCaptureLine: LineParser = (line, n, ctx, out) => {
  const sp = line.indexOf(' ');
  const recvNs = sp > 0 ? line.slice(0, sp) : '';
  let msg: unknown;
  try {
    msg = JSON.parse(line.slice(sp + 1));
  } catch (err) {
    out.rejects.push({ line: n, reason: `not JSON: ${(err as Error).message}`, payload: line });
    return;
  }
  const data = (msg as { data?: unknown })?.data ?? msg;
  const ev = data as Record<string, unknown>;
  if (ev?.e !== 'trade') {
    out.rejects.push({ line: n, reason: `not a trade event (e=${JSON.stringify(ev?.e)})`, payload: line });
    return;
  }
  const pair = ctx.pair ?? (typeof ev.s === 'string' ? splitSymbol(ev.s) : undefined);
  const recvMs = /^\d{19}$/.test(recvNs) ? Number(BigInt(recvNs) / 1_000_000n) : undefined;
  const tradeTs = typeof ev.T === 'number' ? ev.T : undefined;
  accept(
    {
      v: 1,
      type: 'trade',
      exchange: ctx.exchange ?? 'binance',
      pair: pair ?? String(ev.s),
      price: typeof ev.p === 'string' ? Number(ev.p) : Number.NaN,
      qty: typeof ev.q === 'string' ? Number(ev.q) : Number.NaN,
      side: ev.m === true ? 'sell' : ev.m === false ? 'buy' : 'invalid',
      tradeId: typeof ev.t === 'number' && Number.isSafeInteger(ev.t) ? String(ev.t) : undefined,
      tradeTs,
      receivedTs: recvMs ?? tradeTs,
    },
    n,
    line,
    out,
  );
};

async function* csvRows(path: string, ctx: Ctx, format: TradeFileFormat): AsyncGenerator<TradeFileBatch> {
  const raw = createReadStream(path);
  const input = (await isGzip(path)) ? raw.pipe(createGunzip()) : raw;
  const parser = input.pipe(
    parseCsv({
      relax_column_count: true,
      skip_empty_lines: true,
      trim: true,
      max_record_size: MAX_LINE,
      info: true,
      bom: true,
    }),
  );
  let out: TradeFileBatch = { trades: [], rejects: [] };
  let columns: Map<string, number> | undefined;
  let row = 0;
  try {
    for await (const rec of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const cells = rec.record;
      const line = rec.info.lines;
      row++;
      if (
        row === 1 &&
        format !== 'binance-trades-csv' &&
        cells.some((c) => /[a-z]/i.test(c) && !/^(true|false)$/i.test(c))
      ) {
        columns = new Map(cells.map((c, i) => [c.toLowerCase().replace(/[\s"]/g, ''), i]));
        if (format === 'csv') checkHeader(columns, path);
        continue;
      }
      if (row === 1 && format === 'binance-trades-csv' && /^id$/i.test(cells[0] ?? '')) continue;
      const payload = cells.join(',');
      if (format === 'kraken-csv') krakenCsv(cells, line, row, ctx, out, payload);
      else if (format === 'binance-trades-csv') binanceTradesCsv(cells, line, ctx, out, payload);
      else genericCsv(cells, columns!, line, row, ctx, out, payload);
      if (out.trades.length + out.rejects.length >= ctx.batch) {
        yield out;
        out = { trades: [], rejects: [] };
      }
    }
  } catch (err) {
    if (err instanceof TradeFileError) throw err;
    out.rejects.push({
      line: row + 1,
      reason: `unreadable CSV from here on: ${(err as Error).message}`,
      payload: '',
    });
  }
  if (out.trades.length + out.rejects.length > 0) yield out;
}

const TIME_COLS = ['timestamp', 'time', 'date', 'tradets', 'trade_time', 'datetime', 'time_ms'];
const QTY_COLS = ['qty', 'amount', 'size', 'volume', 'quantity'];
const ID_COLS = ['id', 'tradeid', 'trade_id'];
const PAIR_COLS = ['pair', 'symbol'];

function col(columns: Map<string, number>, names: string[]): number | undefined {
  for (const n of names) {
    const i = columns.get(n);
    if (i !== undefined) return i;
  }
  return undefined;
}

function checkHeader(columns: Map<string, number>, path: string): void {
  const missing = [
    col(columns, TIME_COLS) === undefined ? `a time column (${TIME_COLS.join('|')})` : '',
    columns.has('price') ? '' : 'price',
    col(columns, QTY_COLS) === undefined ? `a size column (${QTY_COLS.join('|')})` : '',
  ].filter(Boolean);
  if (missing.length > 0) throw new TradeFileError(`${basename(path)}: header lacks ${missing.join(', ')}`);
}

function sideOf(text: string | undefined): string {
  const s = (text ?? '').toLowerCase();
  if (s === 'buy' || s === 'b') return 'buy';
  if (s === 'sell' || s === 's') return 'sell';
  return s === '' ? 'unknown' : 'invalid';
}

function krakenCsv(
  c: string[],
  line: number,
  row: number,
  ctx: Ctx,
  out: TradeFileBatch,
  payload: string,
): void {
  const tradeTs = parseTime(c[0] ?? '');
  accept(
    {
      v: 1,
      type: 'trade',
      exchange: ctx.exchange ?? 'kraken',
      pair: ctx.pair ?? 'BTC/USD',
      price: Number(c[3]),
      qty: Number(c[4]),
      side: sideOf(c[2]),
      // The file has no trade ids: time and row number identify a trade deterministically.
      tradeId: `${c[0]}-${row}`,
      tradeTs,
      receivedTs: tradeTs,
    },
    line,
    payload,
    out,
  );
}

function binanceTradesCsv(c: string[], line: number, ctx: Ctx, out: TradeFileBatch, payload: string): void {
  const tradeTs = parseTime(c[4] ?? '');
  const maker = (c[5] ?? '').toLowerCase();
  accept(
    {
      v: 1,
      type: 'trade',
      exchange: ctx.exchange ?? 'binance',
      pair: ctx.pair ?? 'BTC/USDT',
      price: Number(c[1]),
      qty: Number(c[2]),
      side: maker === 'true' ? 'sell' : maker === 'false' ? 'buy' : 'invalid',
      tradeId: /^\d+$/.test(c[0] ?? '') ? c[0] : undefined,
      tradeTs,
      receivedTs: tradeTs,
    },
    line,
    payload,
    out,
  );
}

function genericCsv(
  c: string[],
  columns: Map<string, number>,
  line: number,
  row: number,
  ctx: Ctx,
  out: TradeFileBatch,
  payload: string,
): void {
  const at = (names: string[]) => {
    const i = col(columns, names);
    return i === undefined ? undefined : c[i];
  };
  const tradeTs = parseTime(at(TIME_COLS) ?? '');
  const pairText = at(PAIR_COLS);
  const pair = ctx.pair ?? (pairText ? normalisePair(pairText) : undefined);
  if (pair === undefined) {
    out.rejects.push({ line, reason: 'no pair: add a pair/symbol column or pass --pair', payload });
    return;
  }
  const id = at(ID_COLS);
  accept(
    {
      v: 1,
      type: 'trade',
      exchange: ctx.exchange ?? 'file',
      pair,
      price: Number(at(['price'])),
      qty: Number(at(QTY_COLS)),
      side: sideOf(at(['side', 'taker_side'])),
      tradeId: id && id.length <= 64 ? id : `${at(TIME_COLS)}-${row}`,
      tradeTs,
      receivedTs: tradeTs,
    },
    line,
    payload,
    out,
  );
}

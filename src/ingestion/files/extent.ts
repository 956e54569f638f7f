import { open } from 'node:fs/promises';
import { compressionOf, fileChunks, fileHead } from './bytes.ts';
import { parseContext } from './context.ts';
import { detectTradeFileFormat } from './detect.ts';
import { lineParser, readTradeFile } from './readers.ts';
import { isReject } from './row.ts';
import type { ReadOptions } from './types.ts';

/** Enough of a file's end to hold its last rows. */
const TAIL_BYTES = 64 * 1024;

/**
 * The time of a file's last trades (the largest `tradeTs` among its final rows), for progress display,
 * without reading the file through. Plain files are read from their end; compressed ones cannot be seeked,
 * so they are decompressed once keeping only the last bytes (bounded memory). Undefined when it cannot be
 * told (no valid trade at the end, unreadable file, or `signal` aborted): progress is then shown without it.
 */
export async function lastTradeTs(
  path: string,
  options: ReadOptions,
  signal?: AbortSignal,
): Promise<number | undefined> {
  try {
    const format =
      !options.format || options.format === 'auto' ? await detectTradeFileFormat(path) : options.format;
    let last: number | undefined;
    if (format === 'kraken-rest-json') {
      for await (const b of readTradeFile(path, { ...options, format }))
        for (const t of b.trades) last = Math.max(last ?? t.tradeTs, t.tradeTs);
      return last;
    }
    const parser = lineParser(format, parseContext(path, format, options));
    const head = (await fileHead(path, TAIL_BYTES)).toString('utf8');
    const firstLine =
      head
        .split('\n', 1)[0]
        ?.replace(/\r$/, '')
        .replace(/^\uFEFF/, '') ?? '';
    parser.parse(firstLine, 1); // a CSV parser learns its header from it
    const tail = await tailBytes(path, signal);
    if (tail === undefined) return undefined;
    // The first piece is a partial line unless the tail starts the file (then it is the empty piece
    // before the newline put in front).
    for (const l of tail.toString('utf8').split('\n').slice(1)) {
      const r = l.trim() === '' ? undefined : parser.parse(l.replace(/\r$/, ''), 0);
      if (r !== undefined && !isReject(r)) last = Math.max(last ?? r.tradeTs, r.tradeTs);
    }
    return last;
  } catch {
    return undefined;
  }
}

async function tailBytes(path: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  if ((await compressionOf(path)) === 'none') {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - TAIL_BYTES);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return start === 0 ? Buffer.concat([Buffer.from('\n'), buf]) : buf;
    } finally {
      await fh.close();
    }
  }
  let tail = Buffer.from('\n');
  for await (const chunk of fileChunks(path)) {
    if (signal?.aborted) return undefined;
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > 2 * TAIL_BYTES) tail = tail.subarray(tail.length - TAIL_BYTES);
  }
  return tail;
}

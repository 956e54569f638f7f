import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { CANDLE_CSV_COLUMNS, type Candle } from '../schemas/candle.ts';

/** One candle as a CSV row in the contract's column order (numbers in JavaScript's shortest exact form). */
export function candleCsvRow(c: Candle): string {
  return `${c.pair},${c.windowStart},${c.windowEnd},${c.open},${c.high},${c.low},${c.close},${c.volume},${c.trades ?? ''},${c.vwap ?? ''},${c.filled}`;
}

export const CANDLE_CSV_HEADER = CANDLE_CSV_COLUMNS.join(',');

/** Streams candles to a CSV file, with back-pressure. */
export class CandleCsvWriter {
  private readonly out: WriteStream;
  rows = 0;

  constructor(path: string) {
    this.out = createWriteStream(path, { encoding: 'utf8' });
    this.out.write(CANDLE_CSV_HEADER + '\n');
  }

  async write(candles: readonly Candle[]): Promise<void> {
    if (candles.length === 0) return;
    this.rows += candles.length;
    if (!this.out.write(candles.map(candleCsvRow).join('\n') + '\n')) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'finish');
  }
}

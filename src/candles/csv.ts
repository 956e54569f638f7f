import { AtomicFile } from '../core/files.ts';
import { CANDLE_CSV_COLUMNS, type Candle } from '../schemas/candle.ts';

/** One candle as a CSV row in the contract's column order (numbers in JavaScript's shortest exact form). */
export function candleCsvRow(c: Candle): string {
  return `${c.pair},${c.windowStart},${c.windowEnd},${c.open},${c.high},${c.low},${c.close},${c.volume},${c.trades ?? ''},${c.vwap ?? ''},${c.filled}`;
}

export const CANDLE_CSV_HEADER = CANDLE_CSV_COLUMNS.join(',');

/**
 * Streams candles to a CSV file, with back-pressure. The file appears whole on `close` (written beside it, then
 * renamed); `abort` leaves the previous file untouched.
 */
export class CandleCsvWriter {
  private readonly out: AtomicFile;
  rows = 0;

  constructor(path: string) {
    this.out = new AtomicFile(path);
    this.out.stream.write(CANDLE_CSV_HEADER + '\n');
  }

  async write(candles: readonly Candle[]): Promise<void> {
    if (candles.length === 0) return;
    this.rows += candles.length;
    await this.out.write(candles.map(candleCsvRow).join('\n') + '\n');
  }

  async close(): Promise<void> {
    await this.out.commit();
  }

  async abort(): Promise<void> {
    await this.out.abort();
  }
}

import { Worker } from 'node:worker_threads';
import type { KlineColumns } from './ohlcv-files.ts';

/**
 * Binance kline zips read on a thread of their own, ahead of the caller: a backfill (src/features/backfill.ts) asks
 * for its files in order and computes one while the next ones are being read, inflated and parsed. Reading a year of
 * daily zips (inflate and byte parser, an object per candle and its garbage) was about a third of the main thread's
 * time in `cryptocast features`, which now only computes and hands batches to the store.
 *
 * What comes back is exactly `readOhlcv`'s candles and rejects, in columns (`klineColumnsOfZip`); undefined for a
 * file that is not the plain case (another format, a broken archive, an unreadable file, a thread that failed): the
 * caller reads that one with `readOhlcv`, which gives the candles or the error it always gave.
 */
export class KlineReadAhead {
  private readonly worker: Worker | undefined;
  private readonly waiting = new Map<number, (columns: KlineColumns | undefined) => void>();
  private nextId = 0;
  private failed = false;

  constructor() {
    let worker: Worker | undefined;
    try {
      worker = new Worker(new URL('./kline-read-ahead-worker.ts', import.meta.url));
    } catch {
      worker = undefined;
    }
    this.worker = worker;
    worker?.on('message', (m: { id: number; columns: KlineColumns | undefined }) => {
      const resolve = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      resolve?.(m.columns);
    });
    // A thread that fails answers nothing more: every file asked for is read by the caller instead.
    const fail = () => {
      this.failed = true;
      for (const resolve of this.waiting.values()) resolve(undefined);
      this.waiting.clear();
    };
    worker?.on('error', fail);
    worker?.on('exit', fail);
  }

  /** Starts reading `file` (candles of `pair`, or the pair its name says); resolves with its columns, never rejects. */
  read(file: string, pair: string | undefined, intervalMs: number): Promise<KlineColumns | undefined> {
    if (this.worker === undefined || this.failed || !/\.zip$/i.test(file)) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker!.postMessage({ id, file, pair, intervalMs });
    });
  }

  async close(): Promise<void> {
    if (this.worker === undefined) return;
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
    for (const resolve of this.waiting.values()) resolve(undefined);
    this.waiting.clear();
  }
}

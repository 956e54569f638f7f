import { parentPort } from 'node:worker_threads';
import { klineColumnsOfZip } from './ohlcv-files.ts';

/** The thread of `KlineReadAhead`: reads the kline zips it is asked for into columns, in the order asked. */
parentPort?.on('message', (m: { id: number; file: string; pair: string | undefined; intervalMs: number }) => {
  let columns: ReturnType<typeof klineColumnsOfZip>;
  try {
    columns = klineColumnsOfZip(m.file, m.pair, m.intervalMs);
  } catch {
    columns = undefined; // read on the main thread instead, which says what is wrong
  }
  parentPort!.postMessage(
    { id: m.id, columns },
    columns ? [columns.fields.buffer as ArrayBuffer, columns.has.buffer as ArrayBuffer] : [],
  );
});

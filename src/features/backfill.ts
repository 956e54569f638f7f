import { statSync } from 'node:fs';
import { readOhlcv } from '../candles/ohlcv-files.ts';
import { TECHNICAL_SET } from './feature-writer.ts';
import { BULK_WRITE_DEFAULT, type FeatureStore, newFeatureColumns, RowsStoredError } from './store/store.ts';
import { FEATURE_COLUMNS, TechnicalFeatures } from './technical.ts';

/**
 * Candle files → technical features → the feature store, as `cryptocast features --store` runs it: the live
 * service's `TechnicalFeatures` (one code path), fed candle by candle, writing each vector straight into column
 * buffers (`updateInto`) that the store takes whole (`writeColumns`: DuckDB scans them, PostgreSQL gets a binary
 * COPY).
 *
 * Batches are as the store asks (`FeatureStore.bulk`). PostgreSQL (the default): one large batch at a time, every
 * further INSERT into the keyed table cost more than it saved. DuckDB: batches of one row group, written while the
 * next ones are computed (in a file two at a time, src/features/store/duckdb-overlapping.ts). DuckDB pulls each
 * chunk of a batch from this thread, so while a write is running the loop lets the event loop turn every millisecond
 * or so (a chunk request waits at most that long), and DuckDB's compression of a batch at its COMMIT runs beside the
 * computation. The last batch takes the rest when the rest would make a batch of less than a row group (estimated
 * from file sizes): committed on its own, a part row group went through DuckDB's log and cost about 0.3 s more at the
 * checkpoint on close (measured: 0.2–0.45 s less for the whole command in 4 alternating rounds). Measured for a year of minutes, whole command, 5 alternating rounds on a shared 2-core machine:
 * median 2.85 s (2.63–4.17) against 3.84 s (3.35–5.23) with one large batch written after the computation; one
 * batch in flight on one connection: 3.34 s (3.10–4.66).
 */
export interface BackfillStats {
  rows: number;
  ready: number;
  resets: number;
  rejects: number;
  /** Whole files left out because their name says another pair than `--pair` (not counted in `rejects`). */
  otherPairFiles: number;
  /** Vectors with a non-finite value, left not ready (`TechnicalFeatures.nonFinite`). */
  nonFinite: number;
}

/** While a write is in flight, the longest stretch of computing without letting the event loop turn (ms). */
const YIELD_MS = 1;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function backfillFeatures(opts: {
  files: readonly string[];
  store: FeatureStore;
  exchange: string;
  pair?: string;
  /** A candle file could not be used in part (a bad line, an impossible candle). */
  onReject?: (where: string, reason: string) => void;
  /** A whole file left out: its name says another pair than `pair` (not a reject of candles). */
  onOtherPairFile?: (file: string, reason: string) => void;
  /** After each file (index of the file, stats so far). */
  onFile?: (index: number, stats: BackfillStats) => void;
  /** After each batch the store has taken (committed): the rows stored so far, a prefix of the stream. */
  onStored?: (rows: number) => void;
}): Promise<BackfillStats> {
  const { store } = opts;
  const engine = new TechnicalFeatures();
  const k = FEATURE_COLUMNS.length;
  const stats: BackfillStats = { rows: 0, ready: 0, resets: 0, rejects: 0, otherPairFiles: 0, nonFinite: 0 };
  const reject = (where: string, reason: string) => {
    stats.rejects++;
    opts.onReject?.(where, reason);
  };
  const bulk = store.bulk ?? BULK_WRITE_DEFAULT;
  const buffers = Array.from({ length: bulk.inFlight + 1 }, () =>
    newFeatureColumns(opts.exchange, k, bulk.mergeTail ? 2 * bulk.rows : bulk.rows),
  );
  const rest = bulk.mergeTail ? new RestEstimate(opts.files) : undefined;
  let next = 0;
  let rows = buffers[0]!;
  /** The writes not yet awaited, oldest first: write i has buffer i mod buffers.length. */
  const writes: Promise<void>[] = [];
  /** Writes still running. */
  let running = 0;
  /** Rows of the writes that have succeeded. */
  let stored = 0;
  let turned = performance.now();
  const flush = async () => {
    if (rows.length === 0) return;
    // The oldest write's buffer is the next one to fill: its write must be over (and its error is thrown here).
    if (writes.length === bulk.inFlight) await writes.shift();
    const write = store.writeColumns(TECHNICAL_SET, rows);
    writes.push(write);
    running++;
    const batch = rows.length;
    // Only to count it and report it: its outcome is awaited (and its error thrown) at a later flush or at the end.
    // Writes settle in the order they were handed over (a store's batches commit in order).
    write.then(
      () => {
        running--;
        stored += batch;
        opts.onStored?.(stored);
      },
      (err) => {
        running--;
        // Committed, then the online vectors failed: the rows are in the store, reported as they are.
        if (err instanceof RowsStoredError) {
          stored += batch;
          opts.onStored?.(stored);
        }
      },
    );
    if (bulk.inFlight === 0) await writes.shift();
    next = (next + 1) % buffers.length;
    rows = buffers[next]!;
    rows.length = 0;
  };
  try {
    await compute();
    await flush();
  } catch (err) {
    // Settle the writes in flight before handing back (their errors, if any, come second to this one).
    for (const w of writes) await w.catch(() => {});
    throw err;
  }
  for (const w of writes.splice(0)) await w;
  stats.resets = engine.resets;
  stats.nonFinite = engine.nonFinite;
  return stats;

  async function compute(): Promise<void> {
    for (const [index, file] of opts.files.entries()) {
      rest?.fileStarts(index, stats.rows);
      for await (const batch of readOhlcv(file, { pair: opts.pair })) {
        for (const r of batch.rejects)
          if (r.otherPair === undefined) reject(`${r.file} line ${r.line}`, r.reason);
          else {
            stats.otherPairFiles++;
            opts.onOtherPairFile?.(r.file, r.reason);
          }
        for (const c of batch.candles) {
          const bad = engine.problem(c);
          if (bad !== undefined) {
            reject(`${c.pair} ${new Date(c.windowStart).toISOString()}`, bad);
            continue;
          }
          const i = rows.length;
          let ready: boolean;
          try {
            ready = engine.updateInto(c, rows.values, i, rows.capacity);
          } catch (err) {
            reject(`${c.pair} ${new Date(c.windowStart).toISOString()}`, (err as Error).message);
            continue;
          }
          rows.pair[i] = c.pair;
          rows.windowStart[i] = c.windowStart;
          rows.windowEnd[i] = c.windowEnd;
          rows.close[i] = c.close;
          rows.ready[i] = ready ? 1 : 0;
          rows.length++;
          stats.rows++;
          if (ready) stats.ready++;
          if (
            rows.length === rows.capacity ||
            (rows.length === bulk.rows && !rest?.lessThan(bulk.rows, stats.rows))
          )
            await flush();
          else if (running > 0 && (rows.length & 255) === 0 && performance.now() - turned >= YIELD_MS) {
            await nextTurn();
            turned = performance.now();
          }
        }
      }
      stats.resets = engine.resets;
      stats.nonFinite = engine.nonFinite;
      opts.onFile?.(index, stats);
      if (running > 0) {
        await nextTurn();
        turned = performance.now();
      }
    }
  }
}

/**
 * Whether the rows still to come would make a batch smaller than a given size, estimated from the files' sizes and
 * the rows per byte of the files read whole so far (`BulkWrite.mergeTail`). A wrong guess costs only time: a batch of
 * up to twice the size, or a small last batch of its own.
 */
class RestEstimate {
  private readonly sizes: number[];
  /** prefix[i]: the bytes of the files before file i. */
  private readonly prefix: number[];
  private readonly total: number;
  /** Bytes of the files before the one being read, and the rows they gave. */
  private before = 0;
  private rowsBefore = 0;

  constructor(files: readonly string[]) {
    // A file that cannot be read counts as empty here: reading it says what is wrong.
    this.sizes = files.map((f) => {
      try {
        return statSync(f).size;
      } catch {
        return 0;
      }
    });
    this.prefix = [0];
    for (const size of this.sizes) this.prefix.push(this.prefix.at(-1)! + size);
    this.total = this.prefix.at(-1)!;
  }

  /** File `index` is about to be read; `rows` have been read so far. */
  fileStarts(index: number, rows: number): void {
    this.before = this.prefix[index]!;
    this.rowsBefore = rows;
  }

  lessThan(batch: number, rows: number): boolean {
    if (this.before === 0) return false;
    return (this.rowsBefore / this.before) * this.total - rows < batch;
  }
}

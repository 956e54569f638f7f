import type { Trade } from '../../schemas/trade.ts';
import type { TradeFileBatch, TradeFileReject } from './types.ts';

/**
 * Merges the trade streams of several files into one, by `tradeTs`, stably: on equal times the file listed
 * first goes first, and each file keeps its own order (a file that is not sorted by trade time is not
 * re-sorted: its order is what was recorded). Deterministic: the same inputs give the same event sequence.
 *
 * Events, in the order a consumer must handle them:
 * - `trades`: a run of consecutive trades of one file that all come before every other file's next trade
 *   (whole batches when files do not overlap in time, so a single file costs one event per batch);
 * - `reject`: a row a file could not use, as soon as its batch is read;
 * - `end`: a file has no more trades (right after its last run).
 */
export type MergeEvent =
  | { kind: 'trades'; file: number; trades: Trade[] }
  | { kind: 'reject'; file: number; reject: TradeFileReject }
  | { kind: 'end'; file: number };

class Cursor {
  readonly file: number;
  private readonly it: AsyncIterator<TradeFileBatch>;
  buf: Trade[] = [];
  i = 0;
  done = false;

  constructor(file: number, it: AsyncIterator<TradeFileBatch>) {
    this.file = file;
    this.it = it;
  }

  get head(): Trade | undefined {
    return this.buf[this.i];
  }

  /** Reads batches until one has trades or the file ends; returns the rejects met on the way. */
  async refill(): Promise<TradeFileReject[]> {
    const rejects: TradeFileReject[] = [];
    while (this.i >= this.buf.length && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        rejects.push(...r.value.rejects);
        this.buf = r.value.trades;
        this.i = 0;
      }
    }
    return rejects;
  }

  close(): Promise<unknown> | undefined {
    return this.it.return?.();
  }
}

/** True when `a` (of file `fa`) goes before `b` (of file `fb`). */
function before(a: Trade, fa: number, b: Trade, fb: number): boolean {
  return a.tradeTs < b.tradeTs || (a.tradeTs === b.tradeTs && fa < fb);
}

export async function* mergeByTradeTs(
  sources: readonly AsyncIterable<TradeFileBatch>[],
): AsyncGenerator<MergeEvent> {
  const cursors = sources.map((s, i) => new Cursor(i, s[Symbol.asyncIterator]()));
  let live: Cursor[] = [];
  try {
    for (const c of cursors) {
      for (const reject of await c.refill()) yield { kind: 'reject', file: c.file, reject };
      if (c.head === undefined) yield { kind: 'end', file: c.file };
      else live.push(c);
    }
    while (live.length > 0) {
      // The cursor with the earliest head, and the earliest head among the others (the run's bound).
      let min = live[0]!;
      for (const c of live) if (before(c.head!, c.file, min.head!, min.file)) min = c;
      let bound: Cursor | undefined;
      for (const c of live)
        if (c !== min && (bound === undefined || before(c.head!, c.file, bound.head!, bound.file))) bound = c;
      const start = min.i;
      let end = start + 1;
      if (bound === undefined) end = min.buf.length;
      else while (end < min.buf.length && before(min.buf[end]!, min.file, bound.head!, bound.file)) end++;
      min.i = end;
      yield { kind: 'trades', file: min.file, trades: min.buf.slice(start, end) };
      if (min.head === undefined) {
        for (const reject of await min.refill()) yield { kind: 'reject', file: min.file, reject };
        if (min.head === undefined) {
          live = live.filter((c) => c !== min);
          yield { kind: 'end', file: min.file };
        }
      }
    }
  } finally {
    // Stopped early (a limit, an abort, an error): release the files still open.
    await Promise.allSettled(cursors.filter((c) => !c.done).map((c) => c.close()));
  }
}

import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deadLetter } from '../schemas/dlq.ts';
import type { Trade, Watermark } from '../schemas/trade.ts';
import { type ReadOptions, readTradeFile, type TradeFileBatch } from './files/readers.ts';
import type { SourceSink, TradeSource } from './source.ts';

/**
 * Replays recorded trade files as a trade source: merged across files by trade time (stable), at recorded
 * speed, N× faster, or as fast as possible (`max`).
 *
 * Event time is the replay clock. Whenever it crosses a minute, every pair of every file still playing gets
 * a watermark at that time, so a pair that is idle in the recording still closes its minutes downstream (as
 * live sources do from the wall clock); when a file ends, its pairs get a `final` watermark (a recording
 * that ended says nothing about the minutes after it, so they are not filled). Paced replays also emit those
 * watermarks while waiting through a quiet stretch. Same files ⇒ same sequence of trades and watermarks,
 * which makes candles reproducible on any transport.
 */
export interface ReplayProgress {
  trades: number;
  rejects: number;
  /** Current replay (event) time. */
  replayTs: number;
  firstTs: number;
}

export interface ReplayOptions extends Omit<ReadOptions, 'batchSize'> {
  files: readonly string[];
  /** `max`, or a factor (1 = recorded speed). */
  speed?: 'max' | number;
  /** Trades per sink call at most. */
  batchSize?: number;
  onProgress?(p: ReplayProgress): void;
}

const MINUTE = 60_000;

export class ReplaySource implements TradeSource {
  readonly name = 'replay';
  private readonly opts: ReplayOptions;

  constructor(options: ReplayOptions) {
    if (options.files.length === 0) throw new Error('replay: no file given');
    const s = options.speed ?? 'max';
    if (s !== 'max' && !(typeof s === 'number' && s > 0 && Number.isFinite(s))) {
      throw new Error(`replay speed must be "max" or a positive number, got ${String(s)}`);
    }
    this.opts = options;
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    const speed = this.opts.speed ?? 'max';
    const batchSize = this.opts.batchSize ?? 1000;
    const readers = this.opts.files.map((f) => new FileCursor(f, this.opts, sink));
    for (const r of readers) await r.fill();
    // Pairs of the files still playing (a pair may appear in several files: counted per file).
    const pairs = new Map<string, { exchange: string; pair: string; files: Set<FileCursor> }>();
    const progress: ReplayProgress = { trades: 0, rejects: 0, replayTs: 0, firstTs: 0 };
    let batch: Trade[] = [];
    let minute = Number.NEGATIVE_INFINITY;
    let wallStart = 0;
    let firstTs: number | undefined;

    const flush = async () => {
      if (batch.length === 0) return;
      const b = batch;
      batch = [];
      await sink.trades(b);
      progress.trades += b.length;
      progress.rejects = readers.reduce((s, r) => s + r.rejects, 0);
      this.opts.onProgress?.(progress);
    };
    const watermarks = async (ts: number) => {
      for (const { exchange, pair } of pairs.values())
        await sink.watermark({ v: 1, type: 'watermark', exchange, pair, ts });
    };
    /** A file ended: its pairs that no other playing file has get their final watermark. */
    const ended = async (file: FileCursor) => {
      await flush();
      for (const [key, p] of pairs) {
        if (!p.files.delete(file) || p.files.size > 0) continue;
        pairs.delete(key);
        const wm: Watermark = {
          v: 1,
          type: 'watermark',
          exchange: p.exchange,
          pair: p.pair,
          ts: file.lastTs,
          final: true,
        };
        await sink.watermark(wm);
      }
    };

    for (;;) {
      if (signal.aborted) break;
      // The head with the smallest trade time (first file wins ties: stable merge).
      let next: FileCursor | undefined;
      for (const r of readers)
        if (r.head !== undefined && (next === undefined || r.head.tradeTs < next.head!.tradeTs)) next = r;
      if (next === undefined) break;
      const t = next.head!;
      firstTs ??= t.tradeTs;
      progress.firstTs = firstTs;
      if (speed !== 'max') {
        if (wallStart === 0) wallStart = performance.now();
        // Wait until this trade's time on the replay clock, closing idle minutes on the way.
        for (;;) {
          const due = wallStart + (t.tradeTs - firstTs) / speed;
          const wait = due - performance.now();
          if (wait <= 0 || signal.aborted) break;
          await flush();
          const now = firstTs + (performance.now() - wallStart) * speed;
          const nextMinute = (Math.floor(now / MINUTE) + 1) * MINUTE;
          const untilMinute = (nextMinute - now) / speed;
          if (untilMinute < wait) {
            await sleep(Math.max(0, untilMinute), undefined, { signal }).catch(() => {});
            if (nextMinute > minute && nextMinute <= t.tradeTs) {
              minute = nextMinute;
              await watermarks(nextMinute);
            }
          } else await sleep(wait, undefined, { signal }).catch(() => {});
        }
      }
      const m = Math.floor(t.tradeTs / MINUTE) * MINUTE;
      if (m > minute) {
        await flush();
        if (minute !== Number.NEGATIVE_INFINITY) await watermarks(t.tradeTs);
        minute = m;
      }
      const key = t.exchange + '|' + t.pair;
      let p = pairs.get(key);
      if (p === undefined) {
        p = { exchange: t.exchange, pair: t.pair, files: new Set() };
        pairs.set(key, p);
      }
      p.files.add(next);
      batch.push(t);
      progress.replayTs = t.tradeTs;
      next.lastTs = Math.max(next.lastTs, t.tradeTs);
      await next.advance();
      if (next.head === undefined && !signal.aborted) await ended(next);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    this.opts.onProgress?.(progress);
  }
}

/** A buffered, look-ahead cursor over one file's trades; rejects go to the sink's dead-letter path. */
class FileCursor {
  head: Trade | undefined;
  lastTs = 0;
  rejects = 0;
  private readonly it: AsyncGenerator<TradeFileBatch>;
  private buf: Trade[] = [];
  private i = 0;
  private done = false;
  private readonly origin: string;
  private readonly sink: SourceSink;

  constructor(path: string, opts: ReadOptions, sink: SourceSink) {
    this.it = readTradeFile(path, { format: opts.format, pair: opts.pair, exchange: opts.exchange });
    this.origin = `replay:${basename(path)}`;
    this.sink = sink;
  }

  async fill(): Promise<void> {
    while (this.i >= this.buf.length && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      for (const rej of r.value.rejects) {
        this.rejects++;
        await this.sink.reject(
          deadLetter({
            service: 'trades',
            origin: this.origin,
            kind: 'parse',
            reason: `line ${rej.line}: ${rej.reason}`,
            payload: rej.payload,
          }),
        );
      }
      this.buf = r.value.trades;
      this.i = 0;
    }
    this.head = this.i < this.buf.length ? this.buf[this.i] : undefined;
  }

  async advance(): Promise<void> {
    this.i++;
    if (this.i < this.buf.length) this.head = this.buf[this.i];
    else await this.fill();
  }
}

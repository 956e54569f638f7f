import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deadLetter } from '../schemas/dlq.ts';
import type { Trade, Watermark } from '../schemas/trade.ts';
import { lastTradeTs } from './files/extent.ts';
import { type MergeEvent, mergeByTradeTs } from './files/merge.ts';
import { type ReadOptions, readTradeFile, TradeFileError } from './files/readers.ts';
import type { SourceSink, TradeSource } from './source.ts';
import { requirePair } from './symbols.ts';

/**
 * Replays recorded trade files as a trade source: merged across files by trade time (stably), as fast as
 * possible (`max`), at recorded speed (`1`) or N× faster.
 *
 * Event time is the replay clock: the largest trade time replayed so far (it never goes back, even where a
 * file is slightly out of order). Whenever it crosses a minute boundary, every pair seen so far gets a
 * watermark at the clock's time, so a pair that is idle in the recording still closes its minutes
 * downstream while other pairs trade (live sources do it from the wall clock).
 *
 * A pair ends with a `final` watermark when the last file that has traded it ends (for a single file: at
 * the very end), and gets no more minute watermarks: two recordings years apart, merged, must not make the
 * earlier one's pairs fill years of idle minutes. Paced, a recording that starts after every earlier one ended is
 * paced from its own first trade: the years between them are not waited out. The end of a `limit` is an end too; an abort is not (the
 * replay was stopped, not finished: downstream must not close windows early because of it).
 *
 * Determinism: the sequence of sink calls (batches, watermarks, rejects) is a function of the files and
 * the options only, never of timing, so that candles are byte-identical on every transport. Any speed gives
 * the same trades and watermarks in the same order; a paced replay also cuts batches at fixed event-time
 * ticks (so that it delivers on time), which `max` does not need.
 */
export interface ReplayProgress {
  trades: number;
  rejects: number;
  /** Current replay (event) time. */
  replayTs: number;
  /** The first trade's time. */
  firstTs: number;
  /** The recordings' last trade time, once known (read from the files' ends aside; exact at the end). */
  lastTs: number | undefined;
  /** With `pairs`: the trades left out, per pair (what the files hold besides the pairs asked for). */
  leftOut?: Record<string, number>;
}

export interface ReplayOptions extends Omit<ReadOptions, 'batchSize'> {
  files: readonly string[];
  /** `max` (default), or a factor of the recorded speed (1 = as recorded, 60 = an hour a minute). */
  speed?: 'max' | number;
  /** Stop after this many trades (then the pairs get their final watermarks). */
  limit?: number;
  /** Trades per sink call at most (default 1000). */
  batchSize?: number;
  /**
   * Replay only the trades of these pairs (`run --pairs`); the others are left out at the source, as if the files
   * did not hold them: no candles, no watermarks, counted in `progress.leftOut`.
   */
  pairs?: readonly string[];
  onProgress?(p: ReplayProgress): void;
}

const MINUTE = 60_000;
/** A paced replay delivers the trades of each tick of wall time together (event-time width: tick × speed). */
const TICK_MS = 50;

export class ReplaySource implements TradeSource {
  readonly name = 'replay';
  private readonly opts: ReplayOptions;

  constructor(options: ReplayOptions) {
    if (options.files.length === 0) throw new TradeFileError('replay: no file given');
    const s = options.speed ?? 'max';
    if (s !== 'max' && !(typeof s === 'number' && s > 0 && Number.isFinite(s)))
      throw new TradeFileError(`replay speed must be "max" or a positive number, got ${String(s)}`);
    for (const [name, v] of [
      ['limit', options.limit],
      ['batch size', options.batchSize],
    ] as const)
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0))
        throw new TradeFileError(`replay ${name} must be a positive integer, got ${String(v)}`);
    if (options.pair !== undefined) requirePair(options.pair, '--pair');
    this.opts = options;
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    const { files, format, pair, exchange } = this.opts;
    const readers = files.map((f) => readTradeFile(f, { format, pair, exchange }));
    const replay = new Replay(sink, this.opts, signal);
    // The end time is only for progress display: probed aside, abandoned when the replay ends first.
    const probing = new AbortController();
    const probe = this.opts.onProgress
      ? Promise.all(files.map((f) => lastTradeTs(f, { format, pair, exchange }, probing.signal))).then(
          (ends) => {
            const known = ends.filter((e) => e !== undefined);
            if (known.length > 0) replay.progress.lastTs ??= Math.max(...known);
          },
        )
      : Promise.resolve();
    try {
      await replay.play(mergeByTradeTs(readers));
    } finally {
      probing.abort();
      await probe;
    }
  }
}

interface PairState {
  exchange: string;
  pair: string;
  /** The files (by index) that have traded this pair and not ended yet. */
  files: Set<number>;
}

/** The state of one run. */
class Replay {
  readonly progress: ReplayProgress = { trades: 0, rejects: 0, replayTs: 0, firstTs: 0, lastTs: undefined };
  private readonly sink: SourceSink;
  private readonly opts: ReplayOptions;
  private readonly signal: AbortSignal;
  private readonly pacer: Pacer | undefined;
  private readonly batchSize: number;
  private readonly limit: number;
  private readonly pairs = new Map<string, PairState>();
  private readonly only: ReadonlySet<string> | undefined;
  private batch: Trade[] = [];
  /** Files that have delivered a trade, and those of them that have ended: a recording that starts after every
   * earlier one ended is paced from its own first trade. */
  private readonly startedFiles = new Set<number>();
  private readonly endedFiles = new Set<number>();
  private clock: number | undefined;
  private slice = Number.NaN;
  private emitted = 0;

  constructor(sink: SourceSink, opts: ReplayOptions, signal: AbortSignal) {
    this.sink = sink;
    this.opts = opts;
    this.signal = signal;
    const speed = opts.speed ?? 'max';
    this.pacer = speed === 'max' ? undefined : new Pacer(speed, signal);
    this.batchSize = opts.batchSize ?? 1000;
    this.limit = opts.limit ?? Number.POSITIVE_INFINITY;
    if (opts.pairs !== undefined) {
      this.only = new Set(opts.pairs);
      this.progress.leftOut = {};
    }
  }

  async play(events: AsyncGenerator<MergeEvent>): Promise<void> {
    for await (const ev of events) {
      if (this.signal.aborted) return;
      if (ev.kind === 'reject')
        await this.reject(ev.file, ev.reject.line, ev.reject.reason, ev.reject.payload);
      else if (ev.kind === 'end') await this.endFile(ev.file);
      else
        for (const t of ev.trades) {
          if (this.only !== undefined && !this.only.has(t.pair)) {
            const leftOut = this.progress.leftOut!;
            leftOut[t.pair] = (leftOut[t.pair] ?? 0) + 1;
            continue;
          }
          await this.trade(t, ev.file);
          if (this.signal.aborted) return;
          if (this.emitted >= this.limit) {
            await this.finish(false);
            return; // leaving the loop closes the files
          }
        }
    }
    if (!this.signal.aborted) await this.finish(true);
  }

  private async trade(t: Trade, file: number): Promise<void> {
    const now = this.clock === undefined ? t.tradeTs : Math.max(this.clock, t.tradeTs);
    if (!this.startedFiles.has(file)) {
      // Recordings of different days played one after the other (the default replay: 2024 and 2025): the time
      // between them is no market time to wait for — at --speed 60 the run sat silent for days after the first.
      const betweenRecordings =
        this.startedFiles.size > 0 && [...this.startedFiles].every((f) => this.endedFiles.has(f));
      if (betweenRecordings) this.pacer?.restart();
      this.startedFiles.add(file);
    }
    if (this.pacer !== undefined) {
      const slice = this.pacer.sliceOf(now);
      if (slice !== this.slice) {
        await this.flush();
        this.slice = slice;
        await this.pacer.until(now);
        if (this.signal.aborted) return;
      }
    }
    if (this.clock !== undefined && Math.floor(now / MINUTE) !== Math.floor(this.clock / MINUTE)) {
      await this.flush();
      for (const p of this.pairs.values())
        await this.sink.watermark({ v: 1, type: 'watermark', exchange: p.exchange, pair: p.pair, ts: now });
    }
    this.clock = now;
    this.see(t, file);
    if (this.emitted === 0) this.progress.firstTs = t.tradeTs;
    this.batch.push(t);
    this.emitted++;
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  private see(t: Trade, file: number): void {
    const key = t.exchange + '|' + t.pair;
    let p = this.pairs.get(key);
    if (p === undefined) {
      this.refuseTwoVenues(t, file);
      p = { exchange: t.exchange, pair: t.pair, files: new Set() };
      this.pairs.set(key, p);
    }
    p.files.add(file);
  }

  /**
   * Two exchanges' recordings of one pair at the same times (Kraken's and Coinbase's BTC/USD) collide downstream as
   * the live configuration does (refused there before it starts): every store and stage keeps one series per pair,
   * so the features stage dead-lettered the second venue's minutes ("not after the previous one") and the candle
   * store kept whichever came last. A replay's time ranges are only known while reading, so it is refused at the
   * first trade of the second venue while the first one's recording of the pair is still playing; recordings one
   * after the other in time are one series with a gap, as from one venue.
   */
  private refuseTwoVenues(t: Trade, file: number): void {
    for (const other of this.pairs.values())
      if (other.pair === t.pair && other.exchange !== t.exchange) {
        const otherFile = basename(this.opts.files[[...other.files][0]!]!);
        throw new TradeFileError(
          `${basename(this.opts.files[file]!)}: ${t.pair} of ${t.exchange} overlaps in time ${t.pair} of ${other.exchange} (${otherFile}), from ${new Date(t.tradeTs).toISOString()}: cryptocast keeps one series per pair, keyed by pair, so two venues' minutes of it would overwrite each other — replay one exchange's recording of each pair (recordings one after the other in time are fine), or leave the pair out (--pairs)`,
        );
      }
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const b = this.batch;
    this.batch = [];
    await this.sink.trades(b);
    this.progress.trades += b.length;
    this.progress.replayTs = this.clock ?? 0;
    this.opts.onProgress?.(this.snapshot());
  }

  private snapshot(): ReplayProgress {
    const p = { ...this.progress };
    if (p.leftOut !== undefined) p.leftOut = { ...p.leftOut };
    return p;
  }

  /** A file ended: the pairs no other playing file has traded are finished. */
  private async endFile(file: number): Promise<void> {
    this.endedFiles.add(file);
    await this.flush();
    for (const [key, p] of this.pairs)
      if (p.files.delete(file) && p.files.size === 0) {
        this.pairs.delete(key);
        await this.final(p);
      }
  }

  /** The end of the replay: of the recordings (`complete`), or of the `limit`. */
  private async finish(complete: boolean): Promise<void> {
    await this.flush();
    // Played through, the last trade time is known exactly, whatever the probe of the files' ends found.
    if (complete && this.clock !== undefined) this.progress.lastTs = this.clock;
    for (const p of this.pairs.values()) await this.final(p);
    this.pairs.clear();
    this.opts.onProgress?.(this.snapshot());
  }

  private async final(p: PairState): Promise<void> {
    const wm: Watermark = {
      v: 1,
      type: 'watermark',
      exchange: p.exchange,
      pair: p.pair,
      ts: this.clock!,
      final: true,
    };
    await this.sink.watermark(wm);
  }

  private async reject(file: number, line: number, reason: string, payload: string): Promise<void> {
    this.progress.rejects++;
    await this.sink.reject(
      deadLetter({
        service: 'trades',
        origin: `replay:${basename(this.opts.files[file]!)}`,
        kind: 'parse',
        reason: `line ${line}: ${reason}`,
        payload,
        offset: line,
      }),
    );
  }
}

/** Maps replay time to wall time: `speed` ms of recording per ms, from the first trade on. */
class Pacer {
  private readonly speed: number;
  private readonly signal: AbortSignal;
  private origin: { wall: number; ts: number } | undefined;

  constructor(speed: number, signal: AbortSignal) {
    this.speed = speed;
    this.signal = signal;
  }

  /** Paces from the next trade on, as from the first: a recording that starts after the others ended. */
  restart(): void {
    this.origin = undefined;
  }

  /** The delivery tick a replay time falls in: a function of the data and the speed only. */
  sliceOf(ts: number): number {
    this.origin ??= { wall: performance.now(), ts };
    return Math.floor((ts - this.origin.ts) / (TICK_MS * this.speed));
  }

  /** Waits until replay time `ts` is due on the wall clock (returns early on abort). */
  async until(ts: number): Promise<void> {
    this.origin ??= { wall: performance.now(), ts };
    const wait = this.origin.wall + (ts - this.origin.ts) / this.speed - performance.now();
    if (wait <= 0) return;
    await sleep(wait, undefined, { signal: this.signal }).catch(() => {});
  }
}

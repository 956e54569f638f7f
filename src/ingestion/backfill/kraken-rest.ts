import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { log as rootLog } from '../../core/log.ts';
import { deadLetter } from '../../schemas/dlq.ts';
import { krakenRestPair, krakenTradesPage } from '../live/rest.ts';
import type { SourceSink, TradeSource } from '../source.ts';

/**
 * Historical trades from Kraken's REST `Trades` endpoint, as a finite trade source: pages follow the `last`
 * cursor (ns) from `since` until `until`; rate-limit errors and HTTP 429/5xx back off and retry; the cursor is
 * saved to a state file after every page so that an interrupted backfill resumes where it stopped.
 * Kraken asks for about one public request per second: `minIntervalMs` paces the pages.
 */
export interface BackfillProgress {
  pair: string;
  fetched: number;
  pages: number;
  sinceMs: number;
  untilMs: number;
  /** Event time reached so far. */
  cursorMs: number;
  retries: number;
}

export interface KrakenBackfillOptions {
  pair: string;
  sinceMs: number;
  untilMs?: number;
  baseUrl?: string;
  /** Resume file; omitted: no resume. */
  stateFile?: string;
  minIntervalMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  onProgress?(p: BackfillProgress): void;
}

interface State {
  pair: string;
  sinceMs: number;
  untilMs: number;
  cursor: string;
  /** Highest trade id delivered (Kraken ids grow with time): re-sent trades are dropped by it. */
  maxId?: number;
  fetched: number;
  done: boolean;
}

export class KrakenRestBackfill implements TradeSource {
  readonly name = 'kraken-rest';
  private readonly o: KrakenBackfillOptions;
  private readonly log = rootLog.child({ source: 'kraken-rest' });

  constructor(options: KrakenBackfillOptions) {
    krakenRestPair(options.pair); // unknown pairs fail here, clearly
    if (!Number.isFinite(options.sinceMs)) throw new Error('backfill: --since is not a valid time');
    const until = options.untilMs ?? Date.now();
    if (until <= options.sinceMs)
      throw new Error(
        `backfill: --until (${new Date(until).toISOString()}) must be after --since (${new Date(options.sinceMs).toISOString()})`,
      );
    this.o = { ...options, untilMs: until };
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    const { pair, sinceMs } = this.o;
    const untilMs = this.o.untilMs!;
    const state = this.load() ?? {
      pair,
      sinceMs,
      untilMs,
      cursor: String(BigInt(sinceMs) * 1_000_000n),
      fetched: 0,
      done: false,
    };
    if (state.done) {
      this.log.info({ pair, fetched: state.fetched }, 'backfill already complete (state file)');
      return;
    }
    const progress: BackfillProgress = {
      pair,
      fetched: state.fetched,
      pages: 0,
      sinceMs,
      untilMs,
      cursorMs: Number(BigInt(state.cursor) / 1_000_000n),
      retries: 0,
    };
    let lastTs = 0;
    while (!signal.aborted) {
      const started = Date.now();
      // Ask from 1 ns before the cursor: if `since` is exclusive, trades sharing the cursor's timestamp would
      // otherwise be skipped at a page boundary. Ids increase with time, so re-sent ones are dropped by id.
      const since = state.cursor === '0' ? state.cursor : String(BigInt(state.cursor) - 1n);
      const page = await krakenTradesPage(this.o.baseUrl ?? 'https://api.kraken.com', pair, since, {
        signal,
        log: this.log,
        backoff: this.o.backoff,
        onRetry: () => {
          progress.retries++;
          this.o.onProgress?.(progress);
        },
      });
      for (const r of page.rejects) {
        await sink.reject(
          deadLetter({ service: 'backfill', origin: 'kraken-rest', kind: 'invalid', reason: r, payload: r }),
        );
      }
      const fresh = page.trades.filter((t) => Number(t.tradeId) > (state.maxId ?? -1));
      const inRange = fresh.filter((t) => t.tradeTs >= sinceMs && t.tradeTs < untilMs);
      if (inRange.length > 0) await sink.trades(inRange);
      for (const t of inRange) lastTs = Math.max(lastTs, t.tradeTs);
      for (const t of fresh) state.maxId = Math.max(state.maxId ?? -1, Number(t.tradeId));
      const reachedEnd = fresh.length === 0 || page.trades.some((t) => t.tradeTs >= untilMs);
      state.fetched += inRange.length;
      state.cursor = page.last;
      state.done = reachedEnd;
      this.save(state);
      progress.fetched = state.fetched;
      progress.pages++;
      progress.cursorMs = Math.min(untilMs, Number(BigInt(page.last || '0') / 1_000_000n));
      this.o.onProgress?.(progress);
      if (reachedEnd) break;
      const wait = (this.o.minIntervalMs ?? 1_000) - (Date.now() - started);
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {});
    }
    if (state.done && lastTs > 0)
      await sink.watermark({ v: 1, type: 'watermark', exchange: 'kraken', pair, ts: lastTs, final: true });
  }

  private load(): State | undefined {
    if (!this.o.stateFile) return undefined;
    let s: State;
    try {
      s = JSON.parse(readFileSync(this.o.stateFile, 'utf8'));
    } catch {
      return undefined;
    }
    if (s.pair !== this.o.pair || s.sinceMs !== this.o.sinceMs) {
      throw new Error(
        `state file ${this.o.stateFile} belongs to another backfill (${s.pair} since ${new Date(s.sinceMs).toISOString()}); remove it or pass --state`,
      );
    }
    this.log.info({ pair: s.pair, fetched: s.fetched, cursor: s.cursor }, 'resuming backfill');
    return { ...s, untilMs: this.o.untilMs!, done: s.done && s.untilMs >= this.o.untilMs! };
  }

  private save(s: State): void {
    if (!this.o.stateFile) return;
    mkdirSync(dirname(this.o.stateFile), { recursive: true });
    const tmp = `${this.o.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(s, null, 2));
    renameSync(tmp, this.o.stateFile); // atomic: a crash never leaves half a state file
  }
}

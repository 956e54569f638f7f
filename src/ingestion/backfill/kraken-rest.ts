import { setTimeout as sleep } from 'node:timers/promises';
import { ERR, fail } from '../../core/errors.ts';
import { type Logger, log as rootLog } from '../../core/log.ts';
import type { Backoff } from '../../core/retry.ts';
import { deadLetter } from '../../schemas/dlq.ts';
import { REJECTED_ROWS_KEPT, RecentSet } from '../dedup.ts';
import {
  KrakenTimeCursor,
  STEPPED_PAST_FULL_INSTANT,
  steppedPastInstant,
} from '../live/kraken-time-cursor.ts';
import { fetchKrakenTrades, KRAKEN_REST_URL, msToNs, nsToMs } from '../live/kraken-trades-api.ts';
import { assertUrl } from '../live/live-source.ts';
import type { SourceSink, TradeSource } from '../source.ts';
import { krakenRestPair } from '../symbols.ts';
import { type BackfillState, loadState, saveState } from './state-file.ts';

/**
 * Historical trades from Kraken's REST `Trades` endpoint as a finite `TradeSource`: for one pair and a
 * [since, until) range (epoch ms), pages follow the `last` cursor (ns) until `until` is passed or Kraken has
 * nothing newer. Transient `error[]` entries (`EAPI:Rate limit exceeded`, …), HTTP 429/5xx and network
 * errors back off exponentially and retry; any other Kraken error stops the run with that error. The
 * cursor is saved to a state file after every page, so a rerun after an interruption resumes where it
 * stopped. Ends with a final watermark for the pair. Kraken asks for about one public request a second:
 * `minIntervalMs` paces the pages.
 */
export interface KrakenBackfillProgress {
  pair: string;
  /** Trades delivered so far (including earlier runs resumed from the state file). */
  fetchedTrades: number;
  /** Event time the cursor has reached (epoch ms, ≤ until). */
  cursorTs: number;
  since: number;
  until: number;
  pages: number;
  retries: number;
}

export interface KrakenBackfillOptions {
  /** Canonical pair; must be in `KRAKEN_REST_PAIRS`. */
  pair: string;
  /** Start of the range, epoch ms (inclusive). */
  since: number;
  /** End of the range, epoch ms (exclusive); default: now. */
  until?: number;
  /** Default `https://api.kraken.com`. */
  baseUrl?: string;
  /** Where the cursor is kept between runs; omitted: no resume. */
  stateFile?: string;
  /** Least time between two page requests (default 1 000 ms). */
  minIntervalMs?: number;
  /** Retry back-off (default 1 s doubling to 60 s) and how many retries per page (default 8). */
  backoff?: Backoff;
  retries?: number;
  onProgress?(p: KrakenBackfillProgress): void;
  log?: Logger;
}

/** Network retries of the first page of a run (1 + 2 + 4 s of back-off): after that, the server was reached. */
const FIRST_CONTACT_RETRIES = 3;

export class KrakenRestBackfill implements TradeSource {
  readonly name = 'kraken-rest';
  readonly pair: string;
  readonly since: number;
  readonly until: number;
  private readonly o: KrakenBackfillOptions;
  private readonly baseUrl: string;
  private readonly log: Logger;

  constructor(options: KrakenBackfillOptions) {
    krakenRestPair(options.pair); // unknown pairs fail here, clearly
    const { since } = options;
    const until = options.until ?? Date.now();
    if (!Number.isFinite(since)) throw fail(ERR.USAGE, 'backfill: since is not a valid time');
    if (!Number.isFinite(until)) throw fail(ERR.USAGE, 'backfill: until is not a valid time');
    if (until <= since)
      throw fail(
        ERR.USAGE,
        `backfill: until (${new Date(until).toISOString()}) must be after since (${new Date(since).toISOString()})`,
      );
    this.baseUrl = options.baseUrl ?? KRAKEN_REST_URL;
    assertUrl(this.baseUrl, ['http:', 'https:']);
    this.o = options;
    this.pair = options.pair;
    this.since = since;
    this.until = until;
    this.log = (options.log ?? rootLog).child({ source: this.name, pair: options.pair });
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    const { pair, since, until } = this;
    const state = this.resumeOrStart();
    const progress = this.progress(state, 0);
    if (!state.done) {
      try {
        await this.pages(sink, signal, state, progress);
      } catch (err) {
        if (signal.aborted) return; // stopped on request: the state file has the last complete page
        throw err;
      }
    }
    if (state.done) {
      this.log.info({ fetchedTrades: state.fetchedTrades }, 'backfill complete');
      const ts = Math.min(state.completeTs, until);
      await sink.watermark({ v: 1, type: 'watermark', exchange: 'kraken', pair, ts, final: true });
    } else
      this.log.info(
        { fetchedTrades: state.fetchedTrades, cursorTs: progress.cursorTs, since, until },
        'stopped',
      );
  }

  private async pages(
    sink: SourceSink,
    signal: AbortSignal,
    state: BackfillState,
    progress: KrakenBackfillProgress,
  ): Promise<void> {
    const { pair, since, until } = this;
    let reached = false;
    // 1 ns before the cursor, an instant that fills a page asked past once (KrakenTimeCursor); ids grow with time,
    // so re-sent trades are dropped by id.
    const paging = new KrakenTimeCursor();
    const rejected = new RecentSet(REJECTED_ROWS_KEPT);
    while (!signal.aborted) {
      const requestedAt = Date.now();
      const from = paging.since(state.cursor);
      const page = await fetchKrakenTrades(this.baseUrl, pair, from, {
        signal,
        log: this.log,
        backoff: this.o.backoff,
        retries: this.o.retries,
        // Until the server has answered once in this run, a few network failures end it (a wrong --base-url).
        unansweredRetries: reached ? undefined : FIRST_CONTACT_RETRIES,
        onRetry: () => {
          progress.retries++;
          this.o.onProgress?.(progress);
        },
      });
      reached = true;
      // A row at the instant a page ends comes again at the start of the next (asked from 1 ns before it): once.
      for (const r of page.rejects)
        await rejected.once(r, () =>
          sink.reject(
            deadLetter({ service: 'backfill', origin: this.name, kind: 'invalid', reason: r, payload: r }),
          ),
        );
      const fresh = page.trades.filter((t) => Number(t.tradeId) > state.maxId);
      const passedUntil = page.trades.some((t) => t.tradeTs >= until);
      if (paging.after(page.trades.length, fresh.length) === 'again' && !passedUntil) {
        await this.pace(requestedAt, signal);
        continue; // the same cursor, asked past its instant: the end (nothing) or the trades after the ties
      }
      if (paging.steppedPastFullInstant)
        this.log.warn(
          { cursor: state.cursor, ...steppedPastInstant(state.cursor, state.maxId, fresh) },
          STEPPED_PAST_FULL_INSTANT,
        );
      const inRange = fresh.filter((t) => t.tradeTs >= since && t.tradeTs < until);
      if (inRange.length > 0) await sink.trades(inRange);
      for (const t of inRange) {
        state.maxId = Math.max(state.maxId, Number(t.tradeId));
        state.lastTradeTs = Math.max(state.lastTradeTs ?? 0, t.tradeTs);
      }
      state.fetchedTrades += inRange.length;
      // Past `until`, the cursor stops at `until`, so extending the range later resumes exactly there.
      state.cursor = passedUntil ? msToNs(until) : page.last;
      state.done = passedUntil || fresh.length === 0;
      if (state.done)
        state.completeTs = passedUntil
          ? until
          : Math.max(state.lastTradeTs ?? since, Math.min(until, requestedAt - 2_000));
      saveState(this.o.stateFile, state);
      progress.pages++;
      Object.assign(progress, this.progress(state, progress.pages, progress.retries));
      this.o.onProgress?.(progress);
      if (state.done) return;
      await this.pace(requestedAt, signal);
    }
  }

  /** Kraken's public rate limit: at most one request per `minIntervalMs` (default 1 s). */
  private async pace(requestedAt: number, signal: AbortSignal): Promise<void> {
    const wait = (this.o.minIntervalMs ?? 1_000) - (Date.now() - requestedAt);
    if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {});
  }

  private resumeOrStart(): BackfillState {
    const { pair, since, until } = this;
    const saved = loadState(this.o.stateFile);
    if (saved !== undefined) {
      if (saved.pair !== pair || saved.since !== since)
        throw fail(
          ERR.STATE_FILE,
          `state file ${this.o.stateFile} belongs to another backfill (${saved.pair} since ${new Date(saved.since).toISOString()}); remove it or choose another`,
        );
      this.log.info({ fetchedTrades: saved.fetchedTrades, cursor: saved.cursor }, 'resuming backfill');
      // A finished range extended to a later `until` carries on from where it stopped.
      const extended = until > saved.until;
      return { ...saved, until, done: saved.done && !extended };
    }
    return {
      version: 1,
      pair,
      since,
      until,
      cursor: msToNs(since),
      maxId: -1,
      fetchedTrades: 0,
      done: false,
      completeTs: since,
    };
  }

  private progress(s: BackfillState, pages: number, retries = 0): KrakenBackfillProgress {
    const cursorTs = Math.max(this.since, Math.min(this.until, nsToMs(s.cursor)));
    return {
      pair: this.pair,
      fetchedTrades: s.fetchedTrades,
      cursorTs,
      since: this.since,
      until: this.until,
      pages,
      retries,
    };
  }
}

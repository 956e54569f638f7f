import { ERR, fail } from '../../core/errors.ts';
import { log as rootLog } from '../../core/log.ts';
import { backoffDelay } from '../../core/retry.ts';
import { deadLetter } from '../../schemas/dlq.ts';
import { type Trade, tradeAheadOfReceipt } from '../../schemas/trade.ts';
import { REJECTED_ROWS_KEPT, RecentSet, TradeDeduplicator } from '../dedup.ts';
import { REFILL_OVERLAP_MS, type ResumePoints } from '../resume-points.ts';
import type { SourceSink, TradeSource } from '../source.ts';
import { assertPairs } from '../symbols.ts';
import {
  DEFAULT_MAX_REFILL_PAGES,
  type ExchangeAdapter,
  type LiveSourceOptions,
  type RefillPage,
  type RefillResult,
} from './adapter.ts';
import type { Control } from './parse-common.ts';
import { DEFAULT_BACKOFF, ReconnectingSocket } from './ws-connection.ts';

export type {
  ExchangeAdapter,
  LiveSourceOptions,
  RefillPage,
  RefillRequest,
  RefillResult,
} from './adapter.ts';

/**
 * The common life of a live exchange connector; an `ExchangeAdapter` supplies the protocol.
 *
 * - (Re)subscribes on every connection; reconnects with back-off; drops a silent connection.
 * - Gap detection: per pair, trade ids must follow each other where the exchange numbers them contiguously;
 *   a Coinbase `sequence_num` or `heartbeat_counter` jump means lost messages; a reconnect means an outage.
 * - Refill: on an id gap, the missing ids; after a reconnect or a sequence gap, everything since the last
 *   trade (or the last watermark) — over REST, through the same sink. On the first connection, the same for each
 *   pair with a resume point (`resumeFrom`: where the previous process left the `trades` log), so a restart leaves
 *   no hole. A refill longer than a few pages is read a few at a time, the frames handled in between
 *   (`REFILL_PAGES_PER_TURN`), its pages delivered oldest first as they come (Coinbase's, and Binance's for a pair with
 *   no trade yet, after a walk back to their start: their REST APIs page backwards). Trades are deduplicated locally (REST
 *   and stream overlap by design), so the sink gets each (pair, tradeId) once; a delivery the sink refuses (throws)
 *   is taken back (not seen, the pair where it stood), to come again with what asks for it (`deliver`).
 * - Watermarks: about once a second per subscribed pair, event time = wall clock − `watermarkDelayMs`, so an
 *   idle minute still closes downstream — but never later than the received time − `watermarkDelayMs` of the
 *   oldest frame still queued or being handled: frames wait behind a slow sink or a refill of any pair, and the
 *   trades they hold must not be behind the watermark once delivered. A pair's watermark holds while it is
 *   disconnected, unacknowledged or being refilled, so refilled trades are never behind its watermark. A gap
 *   found only when the next trade arrives (a lost frame on a live connection) can still be behind it:
 *   downstream's grace period covers that.
 * - Never throws for bad frames or network trouble (they are dead-lettered or retried); throws at
 *   construction for unusable configuration (no pairs, malformed pair, bad URL).
 */
/** The longest wait before a refused pair is subscribed again. */
const RESUBSCRIBE_MAX_MS = 5 * 60_000;

/**
 * Most REST pages a refill reads in one go, the connection's frames (every pair's trades and watermarks) waiting behind
 * it: a longer one (an adapter that hands its pages over: all three) is continued a few pages at a time, in
 * order with the frames (`PairState.catchingUp`). At Kraken's page a second, frames wait ~3 s, not the ~8.5 min of 500 pages.
 */
export const REFILL_PAGES_PER_TURN = 3;
/** Most streamed trades held for a pair being caught up (`PairState.held`): ~30 MB. */
const MAX_HELD_TRADES = 100_000;

/** `LiveSourceOptions.holeRetry` by default: about half an hour of attempts, while Coinbase still lists the trades. */
const DEFAULT_HOLE_RETRY = { backoff: { initialMs: 30_000, maxMs: 5 * 60_000 }, attempts: 8 };

/**
 * What a refill could not fetch (the REST API down, or its history not yet up to the stream's) and the stream has gone
 * past: a time window (Coinbase) or an id range (Kraken, Binance: `afterId`, `untilId`), asked for again at `retryAt`.
 * One per pair: a second one widens it.
 */
interface Hole {
  sinceTs: number;
  /** When the failed refill began (the stream's queued frames hold what came after), or its oldest fetched trade. */
  untilTs: number;
  /** An id range: the ids after `afterId` and before `untilId` (exclusive); `sinceTs` is the time to page from. */
  afterId?: number;
  untilId?: number;
  /** Attempts made since it was opened or widened. */
  attempts: number;
  retryAt: number;
  /**
   * An attempt read a few pages at a time (`REFILL_PAGES_PER_TURN`, an adapter that hands its pages over), the frames
   * handled in between: where its next turn goes on from (the adapter's `RefillResult.more`), the ids and trades its
   * turns so far got, and the pages it may still read.
   */
  goingOn?: { from: unknown; got: IdTally | undefined; recovered: number; pagesLeft: number };
}

interface PairState {
  /** Highest numeric trade id delivered (contiguous-id exchanges). */
  lastId?: number;
  /** Latest trade time delivered. */
  lastTs?: number;
  /** When the latest trade delivered was received (paces the id-jump check: trade times may be garbled). */
  lastReceivedTs?: number;
  /** The id of a trade just refused as an implausible jump: if the next trade follows it, the jump was real. */
  suspectId?: number;
  /** Last watermark sent. */
  watermarkTs?: number;
  /**
   * The watermark of the restart's resume point (`resumeFrom`): every trade before it was taken by the earlier
   * process, so a subscription snapshot's trade before it is one already taken (see `onTrades`).
   */
  resumedAt?: number;
  /** Subscription acknowledged on the current connection. */
  acked: boolean;
  /** The exchange refused the subscription (watermarks stop: we are not following this pair). */
  refused: boolean;
  /** Refusals in a row on this connection, and when the pair is subscribed again (a refusal may pass: a rate limit). */
  refusals?: number;
  /** Askings in a row on this connection neither acknowledged nor refused within `ackTimeoutMs` (asked again too). */
  unanswered?: number;
  resubscribeAt?: number;
  /** When its subscription was asked and not yet answered (acknowledged or refused) on this connection. */
  askedAt?: number;
  /** Watermarks held: disconnected, or a refill is pending or running. */
  holding: boolean;
  /**
   * A refill longer than `REFILL_PAGES_PER_TURN` pages, continued that many at a time in order with the frames (`tick`):
   * the pages it may still read (of `maxRefillPages`), why it began, the ids its turns so far did not get (counted
   * `unrecoverable` once it is done). Meanwhile the pair's watermarks hold and its streamed trades are held (`held`).
   */
  catchingUp?: {
    pagesLeft: number;
    why: string;
    missing: number;
    from: unknown;
    /** When its first turn began: a time-window refill's hole, if it fails, ends there (the stream holds the rest). */
    requestedAt: number;
    /**
     * Asked for again meanwhile (Coinbase: messages lost while it went on, after its window's end): once done, a
     * refill from its newest trade up to the present follows, the pair still held. The lost trades' frames were never
     * held, and the refill under way ends where its window began.
     */
    again?: string;
  };
  /**
   * The pair's streamed trades while its refill is caught up: delivered after it, in order, through the stream's
   * checks (most are duplicates of what REST brought; not all: a trade REST cannot page to, or does not list yet).
   * At most `MAX_HELD_TRADES`: past it they are dropped, the refill going on up to the present brings them.
   */
  held?: Trade[];
}

/** What `LiveTradeSource.pageDelivery` gives a refill or a hole attempt. */
interface PageDelivery {
  take(page: RefillPage): Promise<void>;
  recovered: number;
  refusal: { err: unknown } | undefined;
}

export interface LiveStats {
  /** Trades delivered to the sink (after local deduplication), stream and REST: those it took. */
  trades: number;
  /** Of which from REST refills. */
  recovered: number;
  /**
   * Deliveries the sink refused (threw: the bus away, a store giving up): their trades are taken back — not seen, their
   * pair where it stood — and come again with what asks for them (the pair's next trade's id gap, the hole retry: on Coinbase a refused streamed delivery's window).
   */
  sinkRefusals: number;
  /** Trades dropped as already delivered (stream/REST overlap, snapshots). */
  duplicates: number;
  /** Id, sequence and heartbeat-counter gaps seen. */
  gaps: number;
  /** REST refills run. */
  refills: number;
  /** Trades known to be missing after a refill, plus refills that failed or stopped short. */
  unrecoverable: number;
  /**
   * Holes left by a refill — a failed time window (Coinbase), ids missing after an id refill (Kraken, Binance) —
   * fetched whole by a later attempt, and those given up.
   */
  holesRefilled: number;
  holesAbandoned: number;
  reconnects: number;
  /**
   * Subscriptions of a pair neither acknowledged nor refused within `ackTimeoutMs`: each one asked again alone, on the
   * same connection, after a back-off.
   */
  unacknowledged: number;
  /**
   * Connections cut because the frames waiting to be handled (behind a refill, a slow sink) passed `maxQueuedBytes`:
   * what they would have brought is refilled on reconnecting.
   */
  queueOverflows: number;
  /** Dead letters sent (bad frames, bad REST rows, exchange errors). */
  rejects: number;
}

export class LiveTradeSource implements TradeSource {
  readonly name: string;
  readonly stats: LiveStats = {
    trades: 0,
    recovered: 0,
    sinkRefusals: 0,
    duplicates: 0,
    gaps: 0,
    refills: 0,
    unrecoverable: 0,
    holesRefilled: 0,
    holesAbandoned: 0,
    reconnects: 0,
    unacknowledged: 0,
    queueOverflows: 0,
    rejects: 0,
  };
  readonly socket: ReconnectingSocket;
  private readonly a: ExchangeAdapter;
  private readonly o: LiveSourceOptions;
  private readonly state = new Map<string, PairState>();
  private readonly dedup = new TradeDeduplicator();
  /** REST rows already dead-lettered: one in two overlapping pages, or fetched again by a hole attempt, is sent once. */
  private readonly rejectedRows = new RecentSet(REJECTED_ROWS_KEPT);
  private readonly log;
  private sink: SourceSink | undefined;
  private signal: AbortSignal | undefined;
  private connectedAt: number | undefined;
  private startedAt: number | undefined;
  private lastSequence: number | undefined;
  private lastHeartbeat: number | undefined;
  private refilledSinceHeartbeat = false;
  private ticking = false;
  /** Pairs acknowledged after a refusal on this connection, to refill before their watermarks go on. */
  private readonly acceptedAfterRefusal: string[] = [];
  private resumePoints: ResumePoints | undefined;
  private readonly holes = new Map<string, Hole>();
  /** A hole retry is queued behind the connection's frames (`tick`), not yet run. */
  private holeRetryQueued = false;
  /** The next turn of a refill being caught up (`PairState.catchingUp`) is queued behind the frames, not yet run. */
  private catchUpQueued = false;
  /** The connector's clock (`LiveSourceOptions.now`). */
  private readonly now: () => number;

  constructor(adapter: ExchangeAdapter, options: LiveSourceOptions) {
    assertPairs(adapter.exchange, options.pairs);
    assertUrl(adapter.url, ['ws:', 'wss:']);
    this.a = adapter;
    this.o = options;
    this.name = `${adapter.exchange}-ws`;
    this.log = (options.log ?? rootLog).child({ source: this.name });
    this.now = options.now ?? Date.now;
    for (const p of new Set(options.pairs))
      this.state.set(p, { acked: false, refused: false, holding: true });
    this.socket = new ReconnectingSocket({
      url: adapter.url,
      name: this.name,
      log: this.log,
      idleTimeoutMs: options.idleTimeoutMs ?? adapter.idleTimeoutMs,
      backoff: options.backoff,
      appPing: adapter.appPing,
      random: options.random,
      maxQueuedBytes: options.maxQueuedBytes,
      onQueueOverflow: () => void this.stats.queueOverflows++,
      onOpen: (send, connection) => this.onOpen(send, connection),
      onMessage: (text, ts) => this.onFrame(text, ts),
      onDisconnect: (reason) => this.onDisconnect(reason),
      // Said in the dead-letter topic, not only the log; what the cut connection missed is refilled on reconnecting.
      onFrameRefused: (reason) => this.reject('parse', reason, '(not kept: the frame was refused unread)'),
    });
  }

  /** Pairs whose subscription the exchange has acknowledged on the current connection. */
  get subscribed(): string[] {
    return [...this.state].filter(([, s]) => s.acked).map(([p]) => p);
  }

  resumeFrom(points: ResumePoints): void {
    this.resumePoints = points;
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    this.signal = signal;
    // A watermark the sink could not take (the bus away) is sent again at the next tick, never an unhandled rejection
    // (which ends the process).
    const timer = setInterval(
      () =>
        void this.tick().catch((err) =>
          this.log.warn({ err: (err as Error).message }, 'watermark not sent: retried at the next tick'),
        ),
      this.o.watermarkIntervalMs ?? 1_000,
    );
    try {
      await this.socket.run(signal);
    } finally {
      clearInterval(timer);
    }
  }

  private async onOpen(send: (text: string) => void, connection: number): Promise<void> {
    this.connectedAt = this.now();
    this.startedAt ??= Date.now(); // a refill's lower bound, compared with trade times: the wall clock
    for (const f of this.a.subscribeFrames([...this.state.keys()])) send(f);
    try {
      await this.catchUp(connection);
    } finally {
      // The acks are frames, read only once these refills are done: the wait for them is counted from then.
      if (this.connectedAt !== undefined) for (const s of this.state.values()) s.askedAt = this.now();
    }
  }

  /** After (re)subscribing: the refills a new connection starts with (a restart's resume points, an outage). */
  private async catchUp(connection: number): Promise<void> {
    if (connection === 1) {
      // A pair the previous process followed catches up from where it left the log, as after a reconnect; for the
      // others this connection is where their history starts.
      const resuming: string[] = [];
      for (const [pair, s] of this.state) {
        const p = this.resumePoints?.get(this.a.exchange, pair);
        if (p === undefined) s.holding = false;
        else {
          s.lastId = p.lastId;
          s.lastTs = p.lastTs;
          s.watermarkTs = p.watermarkTs;
          s.resumedAt = p.watermarkTs;
          resuming.push(pair);
          // Ids the earlier process had not got (a gap waiting for its retry at its stop): asked for again at once,
          // after the restart refill (their minutes are closed downstream: late there, as they would have been).
          const pending = p.pendingIds;
          if (pending !== undefined && this.a.contiguousIds && this.a.refill !== undefined)
            this.holes.set(pair, {
              sinceTs: pending.sinceTs,
              untilTs: pending.sinceTs,
              afterId: pending.afterId,
              untilId: pending.untilId,
              attempts: 0,
              retryAt: this.now(),
            });
        }
      }
      for (const pair of resuming) await this.refill(pair, undefined, 'restart');
      return;
    }
    this.stats.reconnects++;
    // What traded while we were away: refilled before this connection's frames (queued behind us) are read.
    for (const pair of this.state.keys()) await this.refill(pair, undefined, 'reconnect');
  }

  private onDisconnect(reason: string): void {
    this.connectedAt = undefined;
    this.lastSequence = undefined;
    this.lastHeartbeat = undefined;
    this.acceptedAfterRefusal.length = 0; // the next connection refills every pair
    for (const s of this.state.values()) {
      s.acked = false;
      s.refused = false; // the next connection subscribes again
      s.refusals = 0;
      s.unanswered = 0;
      s.resubscribeAt = undefined;
      s.askedAt = undefined;
      s.holding = true; // until the outage is refilled after reconnecting
      s.catchingUp = undefined; // the next connection's refill takes it over
      s.held = undefined;
    }
    this.log.warn({ reason }, 'disconnected');
  }

  private async onFrame(text: string, receivedTs: number): Promise<void> {
    const parsed = this.a.parse(text, receivedTs);
    for (const r of parsed.rejects) await this.reject(r.kind, r.reason, text);
    let lost = false;
    for (const c of parsed.controls) lost = (await this.onControl(c, text)) || lost;
    if (lost) {
      this.acceptedAfterRefusal.length = 0; // refilled with the rest
      for (const pair of this.state.keys()) await this.refill(pair, undefined, 'lost messages');
    }
    // Not streamed while refused: what traded meanwhile is refilled, as after an outage, before its watermarks go
    // on (found only at the pair's next trade, as an id gap or not at all, it came behind them: late downstream).
    for (const pair of this.acceptedAfterRefusal.splice(0))
      await this.refill(pair, undefined, 'accepted after a refusal');
    if (parsed.trades.length > 0) await this.onTrades(parsed.trades, text, parsed.snapshot === true);
  }

  /** Acts on a control message; true if it revealed lost messages. */
  private async onControl(c: Control, text: string): Promise<boolean> {
    switch (c.type) {
      case 'subscribed': {
        const pairs = this.a.acksNamePairs ? c.symbols : [...this.state.keys()];
        for (const p of pairs) {
          const s = this.state.get(p);
          if (s === undefined) continue;
          // Refused or unanswered until now: not streamed meanwhile (a server that lost the asking never subscribed it).
          if (s.refused || (s.unanswered ?? 0) > 0) {
            s.holding = true; // until refilled (below, in onFrame)
            if (!this.acceptedAfterRefusal.includes(p)) this.acceptedAfterRefusal.push(p);
          }
          s.acked = true;
          s.askedAt = undefined;
          s.refused = false; // refused once (a rate limit), accepted since: followed again
          s.refusals = 0;
          s.unanswered = 0;
          s.resubscribeAt = undefined;
        }
        this.log.info({ pairs }, 'subscribed');
        return false;
      }
      case 'error': {
        this.log.error({ message: c.message, symbol: c.symbol }, 'exchange error');
        const s = c.symbol === undefined ? undefined : this.state.get(c.symbol);
        if (s !== undefined) {
          s.refused = true;
          // Asked again on this connection after a back-off (a connection can last days): a rate limit passes, and
          // a pair the exchange does not list is asked about, and dead-lettered, at most every 5 minutes.
          s.refusals = (s.refusals ?? 0) + 1;
          s.resubscribeAt = this.now() + backoffDelay(s.refusals, this.resubscribeBackoff(), this.o.random);
          s.askedAt = undefined; // answered
        }
        await this.reject('exchange-error', c.message, text);
        return false;
      }
      case 'status':
        if (c.status === 'shutdown') this.socket.drop('the exchange announced a shutdown');
        else if (c.status !== 'online') this.log.warn({ status: c.status }, 'exchange not fully online');
        return false;
      case 'sequence': {
        const prev = this.lastSequence;
        this.lastSequence = c.sequence;
        if (prev === undefined || c.sequence === prev + 1) return false;
        if (c.sequence <= prev) {
          // Not a loss; would mean the numbering is not per connection as assumed — say so, do not refill.
          this.log.warn(
            { after: prev, got: c.sequence, channel: c.channel },
            'sequence number went backwards',
          );
          return false;
        }
        this.stats.gaps++;
        this.log.warn({ after: prev, got: c.sequence, channel: c.channel }, 'sequence gap: messages lost');
        this.refilledSinceHeartbeat = true;
        return true;
      }
      case 'heartbeat': {
        const covered = this.refilledSinceHeartbeat;
        this.refilledSinceHeartbeat = false;
        if (c.counter === undefined) return false;
        const prev = this.lastHeartbeat;
        this.lastHeartbeat = c.counter;
        if (prev === undefined || c.counter <= prev + 1) return false;
        this.stats.gaps++;
        this.log.warn({ after: prev, got: c.counter }, 'heartbeat counter gap: messages lost');
        // The lost heartbeat usually also showed as a sequence jump, already refilled.
        return !covered;
      }
      default:
        return false;
    }
  }

  private async onTrades(trades: readonly Trade[], text: string, snapshot = false): Promise<void> {
    let fresh = new Delivery();
    for (const t of trades) {
      const s = this.state.get(t.pair);
      if (s === undefined) {
        await this.reject('invalid', `trade for ${t.pair}, which is not subscribed`, text);
        continue;
      }
      // A restart's subscription snapshot lists past trades; those before the resume point the earlier process took
      // (its minutes are closed and stored). Their ids are unknown here when it resumes from a stored candle
      // (`cryptocast run`: no `trades` log), and downstream they were late for a stored minute: a revision counting
      // them twice under `revise`, dead letters under `dlq`. What traded since is the restart refill's.
      if (snapshot && s.resumedAt !== undefined && t.tradeTs < s.resumedAt) {
        this.stats.duplicates++;
        continue;
      }
      // A time far after its receipt (garbled) would become the pair's last trade time, which paces the id check
      // below and starts its refills: refused here, before it is taken (the trade service refuses it too).
      const ahead = tradeAheadOfReceipt(t);
      if (ahead !== undefined) {
        await this.reject('implausible', ahead, text);
        continue;
      }
      const id = Number(t.tradeId);
      const jump = this.a.contiguousIds ? implausibleIdJump(s, t, id) : undefined;
      if (jump !== undefined) {
        // Neither a gap to refill (hundreds of REST pages for nothing) nor the pair's newest id: taken as such, it
        // would hide every real gap after it and open the deduplication window past the real ids. Unless the next
        // trade follows it (`suspectId`): then the ids really moved on (a gap too large to refill), and it stands.
        s.suspectId = id;
        await this.reject('invalid', jump, text);
        continue;
      }
      s.suspectId = undefined;
      // Its refill is being caught up a few pages at a time: this trade comes after it (`held`).
      if (s.catchingUp !== undefined) {
        hold(s, t);
        continue;
      }
      if (this.a.contiguousIds && s.lastId !== undefined && id > s.lastId + 1) {
        this.stats.gaps++;
        this.log.warn({ pair: t.pair, missing: `${s.lastId + 1}..${id - 1}` }, 'trade id gap');
        await this.deliver(fresh);
        fresh = new Delivery();
        await this.refill(t.pair, id, 'id gap');
        if (s.catchingUp !== undefined) {
          hold(s, t); // the gap's refill goes on up to the present: this trade after it
          continue;
        }
      }
      if (this.dedup.accept(t)) fresh.add(s, t);
      else this.stats.duplicates++;
    }
    try {
      await this.deliver(fresh);
    } catch (err) {
      if (!this.a.contiguousIds) this.openRefusedWindows(fresh.trades);
      throw err;
    }
  }

  /**
   * Streamed trades the sink refused (taken back: `deliver`), where trades are refilled by time window (Coinbase): their
   * window, per pair, is asked for again as a hole (`retryHoles`). Ids there are not checked for gaps and the frame's
   * sequence number was already accepted, so nothing else would ask for them until the pair's next refill (a
   * reconnect or a sequence gap: hours on a steady connection). Kraken's and Binance's show as the next trade's id gap.
   */
  private openRefusedWindows(refused: readonly Trade[]): void {
    const windows = new Map<string, { sinceTs: number; untilTs: number }>();
    for (const t of refused) {
      const w = windows.get(t.pair);
      if (w === undefined) windows.set(t.pair, { sinceTs: t.tradeTs, untilTs: t.tradeTs + 1 });
      else {
        w.sinceTs = Math.min(w.sinceTs, t.tradeTs);
        w.untilTs = Math.max(w.untilTs, t.tradeTs + 1);
      }
    }
    for (const [pair, w] of windows)
      this.openHole(
        pair,
        w.sinceTs,
        [],
        w.untilTs,
        'streamed trades the sink refused: their window is asked for again later',
      );
  }

  /**
   * Hands a delivery's trades to the sink. Refused (the sink throws), they are taken back — not seen, their pairs where
   * they stood — and the error is thrown on: they used to stay marked seen, their pair past them, so the stream's next
   * trade showed no gap and a refill's retry dropped them as duplicates (lost). Taken back, the pair's next trade shows
   * them as an id gap (Kraken, Binance), streamed ones on Coinbase open a hole for their window
   * (`openRefusedWindows`), and a refill's retry delivers them. The sink deduplicates too: a batch it took
   * part of before throwing may come again.
   */
  private async deliver(d: Delivery): Promise<void> {
    if (d.trades.length === 0) return;
    try {
      await this.sink!.trades(d.trades);
    } catch (err) {
      d.takeBack(this.dedup);
      this.stats.sinkRefusals++;
      this.log.error(
        { err, trades: d.trades.length, pairs: d.pairs },
        'the sink refused trades: taken back, to be delivered when fetched again',
      );
      throw err;
    }
    this.stats.trades += d.trades.length;
  }

  /** Refills a pair over REST: the ids of a gap (up to `untilId`, exclusive), or everything since its last trade. */
  private async refill(
    pair: string,
    untilId: number | undefined,
    why: string,
    continued = false,
  ): Promise<void> {
    const s = this.state.get(pair)!;
    const signal = this.signal!;
    if (this.a.refill === undefined || signal.aborted) {
      s.holding = false;
      return;
    }
    if (s.catchingUp !== undefined && !continued) {
      // Its refill goes on at the next turns (`tick`); what this asks for is refilled after it, before its held trades.
      s.catchingUp.again ??= why;
      return;
    }
    s.holding = true;
    // A refill read a few pages at a time (an adapter that hands its pages over), its frames handled in between.
    const budget = s.catchingUp?.pagesLeft ?? this.o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES;
    const maxPages = Math.min(budget, REFILL_PAGES_PER_TURN);
    const missingBefore = s.catchingUp?.missing ?? 0; // by its earlier turns
    const goOnFrom = s.catchingUp?.from;
    const again = s.catchingUp?.again;
    const requestedAt = s.catchingUp?.requestedAt ?? Date.now();
    s.catchingUp = undefined; // set again below if it is to go on
    const afterId = this.a.contiguousIds ? s.lastId : undefined;
    // A refill's window is compared with the exchange's trade times: the wall clock, not the connector's.
    const sinceTs = s.lastTs ?? s.watermarkTs ?? this.startedAt ?? Date.now();
    this.stats.refills++;
    // Contiguous ids: every id between the last one delivered and the end of the range must come, whether the range
    // ends at the gap's far side or at the newest trade the refill found (holes inside an outage's refill went
    // unreported). Counted as the pages are delivered, not kept: the pages are not kept either.
    const got = afterId === undefined ? undefined : new IdTally(afterId);
    const pages = this.pageDelivery(pair, got, (t) =>
      afterId !== undefined
        ? Number(t.tradeId) > afterId && (untilId === undefined || Number(t.tradeId) < untilId)
        : t.tradeTs >= sinceTs - REFILL_OVERLAP_MS,
    );
    try {
      // Pages the adapter hands over as they come are delivered before it asks for the next; the rest (the newest page
      // of a walk back that failed), at the end.
      const r = await this.a.refill({
        pair,
        afterId,
        sinceTs,
        untilId,
        signal,
        log: this.log,
        onPage: pages.take,
        maxPages,
        goOnFrom,
      });
      await pages.take(r);
      // Stopped after its few pages, more to read: the rest up to the present (past a gap's far side too: the
      // pair's streamed trades are held meanwhile) is asked for at the next turn, the frames handled first.
      const goesOn = r.more !== undefined && r.error === undefined && budget > maxPages;
      let missing = 0;
      if (got !== undefined) {
        const end = goesOn ? got.top + 1 : (untilId ?? got.top + 1);
        missing = got.missingBefore(end);
        // Asked for again later (REST down, or not yet listing the newest trades). Past the newest id fetched (an
        // outage's refill that failed), the range is unknown: the stream's next trade shows it as an id gap.
        if (missing > 0)
          this.openIdHole(pair, sinceTs, got.firstMissing - 1, got.lastMissingBefore(end) + 1, new Set());
      }
      missing += r.lost ?? 0; // known lost by the adapter (not asked for again: no REST page lists them)
      this.log.info(
        { pair, why, recovered: pages.recovered, afterId, untilId, sinceTs, goesOn },
        goesOn ? 'refilled over REST, a few pages: the rest after the frames' : 'refilled over REST',
      );
      if (r.error !== undefined) {
        const refused = pages.refusal !== undefined && r.error === pages.refusal.err;
        this.log.error(
          { err: r.error, pair, why, recovered: pages.recovered },
          refused
            ? 'refill stopped: the sink refused a page (taken back), the rest of the gap stays open'
            : 'REST refill failed partway: what was fetched is delivered, the rest of the gap stays open',
        );
        // A refused page was taken back: the window is open from its start, or from the newest trade of the pages
        // handed over before it (oldest first: Coinbase's refill, walked back then read forward).
        this.openHole(pair, Math.max(sinceTs, r.handedUpTo ?? sinceTs), refused ? [] : r.trades, requestedAt);
      }
      if (goesOn)
        s.catchingUp = {
          pagesLeft: budget - maxPages,
          why,
          missing: missingBefore + missing,
          from: r.more,
          requestedAt,
          ...(again === undefined ? {} : { again }),
        };
      else {
        if (missingBefore + missing > 0 || !r.complete) {
          missing += missingBefore;
          this.stats.unrecoverable += Math.max(1, missing);
          this.log.error({ pair, why, missing, complete: r.complete }, 'gap only partly refilled');
        }
        // Asked for again while it went on: from its newest trade up to the present, at the next turn.
        if (again !== undefined && r.error === undefined)
          s.catchingUp = {
            pagesLeft: this.o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES,
            why: again,
            missing: 0,
            from: undefined,
            requestedAt: Date.now(),
          };
      }
    } catch (err) {
      if (signal.aborted) return;
      this.stats.unrecoverable++;
      this.log.error(
        { err, pair, why },
        pages.refusal !== undefined && err === pages.refusal.err
          ? 'refill not delivered: the sink refused it (taken back); the gap stays open'
          : 'REST refill failed: the gap stays open',
      );
      if (afterId !== undefined && untilId !== undefined)
        this.openIdHole(pair, sinceTs, afterId, untilId, new Set());
      this.openHole(pair, sinceTs, [], requestedAt);
    } finally {
      // Released even on failure (holding forever would stall every candle of the pair downstream); held while the
      // refill goes on, and until what the stream brought meanwhile is delivered (below).
      s.holding = s.catchingUp !== undefined || s.held !== undefined;
    }
    if (s.catchingUp === undefined && s.held !== undefined) {
      // Caught up: the trades streamed meanwhile, after the refilled ones, as they came (dropped if already delivered;
      // an id gap after the refill's newest refilled as any).
      const held = s.held;
      s.held = undefined;
      try {
        await this.onTrades(held, HELD_TRADES_FRAME);
      } finally {
        s.holding = s.catchingUp !== undefined;
      }
    }
  }

  /**
   * A refill's or a hole attempt's pages, delivered as they come (`takeRefilled`, those of `pair` that `inRange` keeps):
   * their ids counted in `got`, what was new in `recovered` (from `recovered` of an attempt's earlier turns), and the
   * sink's refusal of a page kept in `refusal`, so that the failure it ends the attempt with is not said to be REST's.
   */
  private pageDelivery(
    pair: string,
    got: IdTally | undefined,
    inRange: (t: Trade) => boolean,
    recovered = 0,
  ): PageDelivery {
    const d: PageDelivery = {
      recovered,
      refusal: undefined,
      take: async (page) => {
        let taken: { inRange: Trade[]; fresh: Trade[] };
        try {
          taken = await this.takeRefilled(pair, page, inRange);
        } catch (err) {
          d.refusal = { err };
          throw err;
        }
        got?.add(taken.inRange);
        d.recovered += taken.fresh.length;
      },
    };
    return d;
  }

  /**
   * Delivers what a refill fetched (a page handed over as it came, or the whole result): its bad rows dead-lettered,
   * the trades in range in (time, trade id) order, each once. Pages come oldest first (Coinbase, and Binance without an
   * id to start from, walk back to their start before reading forward): delivered newest page first, the candle
   * stage's clock would jump ahead and dead-letter the older pages as late.
   */
  private async takeRefilled(
    pair: string,
    r: RefillPage,
    wanted: (t: Trade) => boolean,
  ): Promise<{ inRange: Trade[]; fresh: Trade[] }> {
    // Once: a row may be in the page before too (the overlap), or in an earlier attempt's.
    for (const reason of r.rejects)
      await this.rejectedRows.once(reason, () =>
        this.reject('invalid', reason, reason, `${this.a.exchange}-rest`),
      );
    const plausible: Trade[] = [];
    for (const t of r.trades) {
      const ahead = tradeAheadOfReceipt(t);
      if (ahead === undefined) plausible.push(t);
      else await this.reject('implausible', ahead, JSON.stringify(t), `${this.a.exchange}-rest`);
    }
    const inRange = plausible.filter(wanted).sort(byTimeThenId);
    const s = this.state.get(pair)!;
    const fresh = new Delivery();
    for (const t of inRange)
      if (this.dedup.accept(t)) fresh.add(s, t);
      else this.stats.duplicates++;
    await this.deliver(fresh);
    this.stats.recovered += fresh.trades.length;
    return { inRange, fresh: fresh.trades };
  }

  /**
   * A time-window refill failed (the REST API down), or streamed trades were refused by the sink
   * (`openRefusedWindows`): the stream goes on, and the window it could not fetch or deliver is asked for again later
   * (`retryHoles`). Only where trades are refilled by time alone (Coinbase): Kraken's and Binance's
   * refills are by id, and what they leave is an id range (`openIdHole`).
   */
  private openHole(
    pair: string,
    sinceTs: number,
    fetched: readonly Trade[],
    requestedAt: number,
    said = 'REST refill failed: its window is asked for again later',
  ): void {
    if (this.a.contiguousIds) return;
    // What was fetched and not handed over as it came is the newest page of a walk back that failed: the hole is
    // before it. (Pages handed over oldest first narrow `sinceTs`: the caller's.)
    let untilTs = requestedAt;
    for (const t of fetched) if (t.tradeTs < untilTs) untilTs = t.tradeTs;
    const open = this.holes.get(pair);
    const { backoff } = this.o.holeRetry ?? DEFAULT_HOLE_RETRY;
    this.holes.set(pair, {
      sinceTs: Math.min(sinceTs, open?.sinceTs ?? sinceTs),
      untilTs: Math.max(untilTs, open?.untilTs ?? untilTs),
      attempts: 0,
      retryAt: this.now() + backoffDelay(0, backoff, this.o.random),
    });
    this.log.warn({ pair, sinceTs, untilTs }, said);
  }

  /**
   * Ids an id refill (Kraken, Binance) did not get, from the first missing (after `afterId`) to the last (before
   * `untilId`), whether the REST API failed or did not list them yet (its history lagging the stream's): asked for
   * again later (`retryHoles`). One range per pair: a second one widens it (ids delivered inside it are dropped as
   * duplicates when fetched again).
   */
  private openIdHole(
    pair: string,
    sinceTs: number,
    afterId: number,
    untilId: number,
    got: Set<number>,
  ): void {
    let first = afterId + 1;
    while (first < untilId && got.has(first)) first++;
    let last = untilId - 1;
    while (last > first && got.has(last)) last--;
    if (first >= untilId) return;
    const open = this.holes.get(pair);
    const { backoff } = this.o.holeRetry ?? DEFAULT_HOLE_RETRY;
    const hole: Hole = {
      sinceTs: Math.min(sinceTs, open?.sinceTs ?? sinceTs),
      untilTs: sinceTs,
      afterId: Math.min(first - 1, open?.afterId ?? first - 1),
      untilId: Math.max(last + 1, open?.untilId ?? last + 1),
      attempts: 0,
      retryAt: this.now() + backoffDelay(0, backoff, this.o.random),
    };
    this.holes.set(pair, hole);
    this.log.warn(
      { pair, afterId: hole.afterId, untilId: hole.untilId },
      'ids a refill did not get: asked for again later',
    );
  }

  /**
   * Asks for the holes whose time has come, one REST attempt each (not `restRetries`: the stream's frames wait behind
   * it). Their minutes' candles are already out downstream: the trades fetched are late there, and the candle stage's
   * late policy decides (dead-lettered by default, a revised candle with `revise`).
   */
  private async retryHoles(): Promise<void> {
    if (this.holes.size === 0 || this.a.refill === undefined) return;
    const signal = this.signal!;
    const { backoff, attempts } = this.o.holeRetry ?? DEFAULT_HOLE_RETRY;
    for (const [pair, hole] of [...this.holes]) {
      if (signal.aborted) return;
      if (this.now() < hole.retryAt) continue;
      // An attempt read a few pages a turn, as a refill is: a hole's range can be hours of trades (a long gap found
      // while REST was down), and the connection's frames — every pair's trades and watermarks — wait behind it.
      const turn = hole.goingOn;
      hole.goingOn = undefined;
      if (turn === undefined) hole.attempts++; // a turn going on is the same attempt
      this.stats.refills++;
      const { afterId, untilId = 0 } = hole;
      const budget = turn?.pagesLeft ?? this.o.maxRefillPages ?? DEFAULT_MAX_REFILL_PAGES;
      const maxPages = Math.min(budget, REFILL_PAGES_PER_TURN);
      // As a refill's: pages the adapter hands over as they come are delivered, and their ids counted, one by one.
      const got = turn?.got ?? (afterId === undefined ? undefined : new IdTally(afterId));
      const pages = this.pageDelivery(
        pair,
        got,
        (t) =>
          afterId !== undefined
            ? Number(t.tradeId) > afterId && Number(t.tradeId) < untilId
            : t.tradeTs >= hole.sinceTs - REFILL_OVERLAP_MS,
        turn?.recovered,
      );
      let r: RefillResult;
      try {
        r = await this.a.refill({
          pair,
          sinceTs: hole.sinceTs,
          ...(hole.afterId === undefined
            ? { untilTs: hole.untilTs }
            : { afterId: hole.afterId, untilId: hole.untilId }),
          retries: 0,
          signal,
          log: this.log,
          onPage: pages.take,
          maxPages,
          goOnFrom: turn?.from,
        });
      } catch (err) {
        if (signal.aborted) return;
        r = { trades: [], rejects: [], complete: false, error: err };
      }
      if (pages.refusal === undefined)
        try {
          await pages.take(r);
        } catch (err) {
          // Refused by the sink: a failed attempt (retried with back-off), not an error that would end the hole retries.
          r = { ...r, error: err };
        }
      if (r.more !== undefined && r.error === undefined && budget > maxPages) {
        // Stopped after its few pages, more to read: the rest at the next turn (the next tick), the frames first.
        hole.goingOn = { from: r.more, got, recovered: pages.recovered, pagesLeft: budget - maxPages };
        hole.retryAt = this.now();
        continue;
      }
      const said = {
        pair,
        attempt: hole.attempts,
        recovered: pages.recovered,
        ...(afterId === undefined ? { sinceTs: hole.sinceTs, untilTs: hole.untilTs } : { afterId, untilId }),
      };
      if (got !== undefined) {
        // An id range: whole once every id in it has come (now or before: those are fetched again as duplicates).
        if (got.missingBefore(untilId) === 0) {
          this.holes.delete(pair);
          this.stats.holesRefilled++;
          this.log.info(said, 'ids a refill did not get: fetched');
          continue;
        }
        hole.afterId = got.firstMissing - 1; // narrowed to what is still missing
        hole.untilId = got.lastMissingBefore(untilId) + 1;
      } else if (r.error === undefined) {
        this.holes.delete(pair);
        if (r.complete) this.stats.holesRefilled++;
        this.log.info({ ...said, complete: r.complete }, 'hole left by a failed refill: fetched');
        continue;
      }
      // What was fetched narrows a time window: the pages handed over oldest first to what came after them, the newest
      // page (delivered when the walk back failed) to what came before it, unless the sink refused it (taken back).
      if (afterId === undefined && r.handedUpTo !== undefined)
        hole.sinceTs = Math.max(hole.sinceTs, r.handedUpTo);
      if (afterId === undefined && pages.refusal === undefined)
        for (const t of r.trades) if (t.tradeTs < hole.untilTs) hole.untilTs = t.tradeTs;
      if (hole.attempts >= attempts) {
        this.holes.delete(pair);
        this.stats.holesAbandoned++;
        this.log.error(
          { ...said, err: r.error },
          'hole left by a failed refill: given up, those trades are missing',
        );
        continue;
      }
      hole.retryAt = this.now() + backoffDelay(hole.attempts, backoff, this.o.random);
      this.log.warn(
        { ...said, err: r.error },
        pages.refusal !== undefined
          ? 'hole left by a failed refill: the sink refused what was fetched (taken back), asked again later'
          : 'hole left by a failed refill: still failing, asked again later',
      );
    }
  }

  /** The back-off of a pair subscribed again (refused, or left unanswered): the reconnect's, up to 5 minutes. */
  private resubscribeBackoff(): { initialMs: number; maxMs: number } {
    const b = this.o.backoff ?? DEFAULT_BACKOFF;
    return { initialMs: b.initialMs, maxMs: Math.max(b.maxMs, RESUBSCRIBE_MAX_MS) };
  }

  private async reject(kind: string, reason: string, payload: string, origin = this.name): Promise<void> {
    this.stats.rejects++;
    await this.sink!.reject(deadLetter({ service: 'trades', origin, kind, reason, payload }));
  }

  /** Once per interval: a watermark per followed pair (wall clock − delay, capped by the queue, never backwards). */
  private async tick(): Promise<void> {
    if (this.ticking || this.connectedAt === undefined || this.sink === undefined) return;
    this.ticking = true;
    try {
      const now = this.now();
      // Not past the frames still waiting to be handled (they hold trades of any pair, received up to now).
      const upTo = Math.min(now, this.socket.oldestUnhandledTs ?? now);
      const ts = upTo - (this.o.watermarkDelayMs ?? 2_000);
      for (const [pair, s] of this.state) {
        if (s.holding || !s.acked || s.refused) continue;
        s.watermarkTs = Math.max(s.watermarkTs ?? 0, ts);
        // Ids it has not got (an id gap asked for again later) are said with it: every trade up to it but these was
        // delivered. Kept with the minutes it closes (`Candle.refillFrom`), so a restart asks for them again.
        const hole = this.holes.get(pair);
        await this.sink.watermark({
          v: 1,
          type: 'watermark',
          exchange: this.a.exchange,
          pair,
          ts: s.watermarkTs,
          ...(hole?.afterId === undefined || hole.untilId === undefined
            ? {}
            : { pendingIds: { afterId: hole.afterId, untilId: hole.untilId, sinceTs: hole.sinceTs } }),
        });
      }
      // Holes are asked for on this timer, not only when a frame comes: Binance sends no heartbeats, and a quiet
      // stream's gap would wait for the next trade of any pair. Queued behind the frames, as a frame's handling would
      // be: what the sink gets stays in one sequence.
      if (!this.holeRetryQueued && [...this.holes.values()].some((h) => this.now() >= h.retryAt)) {
        this.holeRetryQueued = this.socket.inOrder('hole retry', async () => {
          try {
            await this.retryHoles();
          } finally {
            this.holeRetryQueued = false;
          }
        });
      }
      // A refill read a few pages at a time: its next turn, queued behind the frames received meanwhile (handled
      // first: every pair's trades and watermarks go on between its turns). One pair a turn.
      if (!this.catchUpQueued && [...this.state.values()].some((s) => s.catchingUp !== undefined)) {
        this.catchUpQueued = this.socket.inOrder('refill continued', async () => {
          try {
            const next = [...this.state].find(([, s]) => s.catchingUp !== undefined);
            if (next !== undefined && this.connectedAt !== undefined)
              await this.refill(next[0], undefined, next[1].catchingUp!.why, true);
          } finally {
            this.catchUpQueued = false;
          }
        });
      }
      for (const [pair, s] of this.state)
        if (!s.acked && s.resubscribeAt !== undefined && now >= s.resubscribeAt) {
          s.resubscribeAt = undefined; // until it is refused or left unanswered again
          s.askedAt = now; // and not left unanswered either (below)
          this.log.info({ pair, refusals: s.refusals, unanswered: s.unanswered }, 'subscribing again');
          for (const f of this.a.subscribeFrames([pair])) this.socket.send(f);
        }
      // A subscription — the connection's first, or one asked again — neither acknowledged nor refused once every
      // frame received has been read (an ack may wait in the queue behind a refill): the server lost it or never
      // answers (a symbol it does not list, on a server that does not say so). Waiting would leave the pair without
      // watermarks (its candles never closing) for the connection's life, which can be days. It is asked again alone,
      // on this connection, after a back-off (growing, up to every 5 minutes), as after a refusal: the connection
      // used to be dropped, every ackTimeoutMs, cutting the pairs that were streaming on it — one bad symbol, an
      // outage of all. A connection with nothing acknowledged on it is dead to Kraken's liveness (no heartbeats) and
      // reconnected there.
      const ackTimeoutMs = this.o.ackTimeoutMs ?? 10_000;
      if (this.socket.oldestUnhandledTs === undefined)
        for (const [pair, s] of this.state) {
          if (s.acked || s.askedAt === undefined || now - s.askedAt <= ackTimeoutMs) continue;
          s.askedAt = undefined;
          s.unanswered = (s.unanswered ?? 0) + 1;
          this.stats.unacknowledged++;
          const retryInMs = backoffDelay(s.unanswered, this.resubscribeBackoff(), this.o.random);
          s.resubscribeAt = now + retryInMs;
          this.log.warn(
            { pair, ackTimeoutMs, unanswered: s.unanswered, retryInMs },
            'subscription not acknowledged: asked again alone, on this connection, after a back-off',
          );
        }
    } finally {
      this.ticking = false;
    }
  }
}

/** Holds a trade streamed while its pair's refill is caught up, up to `MAX_HELD_TRADES`. */
function hold(s: PairState, t: Trade): void {
  s.held ??= [];
  if (s.held.length < MAX_HELD_TRADES) s.held.push(t);
}

/** The frame text dead-lettered with a held trade refused when delivered (its frame is not kept). */
const HELD_TRADES_FRAME = '(a trade streamed while its pair was refilled; its frame is not kept)';

/** Where a pair stood: put back if the sink refuses a delivery that moved it. */
type Position = Pick<PairState, 'lastId' | 'lastTs' | 'lastReceivedTs'>;

/**
 * Trades on their way to the sink in one call, each accepted by the deduplicator: its pair is advanced as each is added
 * (a frame's next trade is checked against it), and both are taken back if the sink refuses the call.
 */
class Delivery {
  readonly trades: Trade[] = [];
  /** Where each pair moved by this delivery stood before it. */
  private readonly before = new Map<PairState, Position>();
  private readonly pairNames = new Set<string>();

  add(s: PairState, t: Trade): void {
    if (!this.before.has(s))
      this.before.set(s, { lastId: s.lastId, lastTs: s.lastTs, lastReceivedTs: s.lastReceivedTs });
    const id = Number(t.tradeId);
    if (Number.isSafeInteger(id) && id > (s.lastId ?? -1)) s.lastId = id;
    if (t.tradeTs > (s.lastTs ?? 0)) s.lastTs = t.tradeTs;
    if (t.receivedTs > (s.lastReceivedTs ?? 0)) s.lastReceivedTs = t.receivedTs;
    this.trades.push(t);
    this.pairNames.add(t.pair);
  }

  get pairs(): string[] {
    return [...this.pairNames];
  }

  /** The sink refused it: its trades not seen by `dedup`, its pairs where they stood. */
  takeBack(dedup: TradeDeduplicator): void {
    for (const t of this.trades) dedup.forget(t);
    for (const [s, p] of this.before) Object.assign(s, p);
  }
}

/**
 * Contiguous ids (Kraken, Binance) go up by the trades made: a jump from the pair's last id far beyond what could have
 * traded since its last trade's time (a million, plus 100 a millisecond — a hundred times the busiest pair's rate) is a
 * garbled id, not lost frames. Why, or undefined when the jump is plausible.
 */
function implausibleIdJump(s: PairState, t: Trade, id: number): string | undefined {
  if (s.lastId === undefined || !Number.isSafeInteger(id)) return undefined;
  if (s.suspectId !== undefined && id === s.suspectId + 1) return undefined; // confirmed by the trade after it
  // By receipt, not trade time: a trade time cannot be trusted here, that is the point.
  const elapsed = Math.max(0, t.receivedTs - (s.lastReceivedTs ?? t.receivedTs));
  const limit = 1_000_000 + 100 * elapsed;
  if (id - s.lastId <= limit) return undefined;
  return `trade id ${id} is ${id - s.lastId} past the pair's last (${s.lastId}), more than could have traded in ${elapsed} ms: a garbled id`;
}

/**
 * The ids after `afterId` an id refill got, counted page by page rather than kept (a long outage's refill is hundreds
 * of pages): how many, the newest, and where the first and last missing ones are. Pages come in ascending ids (each
 * page's above the last's: Kraken's forward paging, or one page of the whole result); an id at or below the newest
 * already counted is not counted again.
 */
class IdTally {
  /** Distinct ids counted. */
  private count = 0;
  /** The id after the newest counted. */
  private next: number;
  private firstGap: number | undefined;
  private lastGap: number | undefined;
  private readonly afterId: number;

  constructor(afterId: number) {
    this.afterId = afterId;
    this.next = afterId + 1;
  }

  add(trades: readonly Trade[]): void {
    const ids = [...new Set(trades.map((t) => Number(t.tradeId)))].sort((a, b) => a - b);
    for (const id of ids) {
      if (id < this.next) continue;
      if (id > this.next) {
        this.firstGap ??= this.next;
        this.lastGap = id - 1;
      }
      this.count++;
      this.next = id + 1;
    }
  }

  /** The newest id counted (`afterId` if none). */
  get top(): number {
    return this.next - 1;
  }

  /** How many ids between `afterId` and `end` (exclusive) did not come. */
  missingBefore(end: number): number {
    return end - this.afterId - 1 - this.count;
  }

  /** The first id missing (one between two that came, else the one after the newest). */
  get firstMissing(): number {
    return this.firstGap ?? this.next;
  }

  /** The last id missing before `end` (exclusive). */
  lastMissingBefore(end: number): number {
    return end > this.next ? end - 1 : (this.lastGap ?? this.next);
  }
}

/** Trade time, then trade id (numerically where both are integers, as exchanges number them). */
function byTimeThenId(a: Trade, b: Trade): number {
  if (a.tradeTs !== b.tradeTs) return a.tradeTs - b.tradeTs;
  const x = Number(a.tradeId);
  const y = Number(b.tradeId);
  if (Number.isSafeInteger(x) && Number.isSafeInteger(y)) return x - y;
  return a.tradeId < b.tradeId ? -1 : a.tradeId > b.tradeId ? 1 : 0;
}

/** Throws a clear error unless `url` parses with one of `protocols`. */
export function assertUrl(url: string, protocols: string[]): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw fail(ERR.CONFIG, `not a URL: "${url}"`);
  }
  if (!protocols.includes(u.protocol))
    throw fail(ERR.CONFIG, `URL ${url} must use ${protocols.join(' or ')}`);
}

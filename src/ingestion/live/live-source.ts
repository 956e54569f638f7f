import { log as rootLog } from '../../core/log.ts';
import { deadLetter } from '../../schemas/dlq.ts';
import type { Trade } from '../../schemas/trade.ts';
import type { SourceSink, TradeSource } from '../source.ts';
import type { Parsed } from './parsers.ts';
import { ReconnectingSocket } from './ws-connection.ts';

/**
 * The common life of a live exchange connector; an `ExchangeAdapter` supplies the protocol.
 *
 * - subscribes on every (re)connect; reconnects with back-off; drops a silent connection;
 * - detects gaps: per pair, trade ids must follow each other (Kraken v2 and Binance number trades
 *   contiguously per symbol); the adapter may also report sequence gaps (Coinbase `sequence_num`);
 * - refills over REST: after every reconnect, each pair's history since its last trade; on an id gap, the
 *   missing range. Recovered trades go through the same sink (deduplicated by trade id downstream);
 * - watermarks: once a second per pair, event time = wall clock − `watermarkDelayMs` (absorbs clock skew and
 *   latency), so idle minutes close downstream. While a pair is disconnected or being refilled, its watermark
 *   holds at the last moment known complete, so refilled trades are never late.
 */
export interface ExchangeAdapter {
  readonly exchange: string;
  readonly url: string;
  subscribeFrames(pairs: readonly string[]): string[];
  parse(text: string, receivedTs: number): Parsed;
  /** Trades of `pair` after (`afterId`, `afterTs`], up to `untilId` (exclusive) or now. */
  recover?(
    pair: string,
    after: { id: number; ts: number },
    untilId: number | undefined,
    signal: AbortSignal,
  ): Promise<Trade[]>;
  /** Whether ids are contiguous per pair (gap = id jump). */
  readonly contiguousIds: boolean;
  readonly appPing?: { intervalMs: number; frame(): string };
  readonly idleTimeoutMs: number;
}

export interface LiveSourceOptions {
  pairs: readonly string[];
  watermarkIntervalMs?: number;
  watermarkDelayMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

interface PairState {
  lastId?: number;
  lastTs?: number;
  /** Event time up to which this pair's trades are known complete (watermarks never pass it). */
  completeUntil: number;
  recovering: boolean;
}

export interface LiveStats {
  trades: number;
  recovered: number;
  gaps: number;
  reconnects: number;
  rejects: number;
  unrecoverable: number;
}

export class LiveTradeSource implements TradeSource {
  readonly name: string;
  readonly stats: LiveStats = {
    trades: 0,
    recovered: 0,
    gaps: 0,
    reconnects: 0,
    rejects: 0,
    unrecoverable: 0,
  };
  readonly socket: ReconnectingSocket;
  private readonly a: ExchangeAdapter;
  private readonly o: LiveSourceOptions;
  private readonly state = new Map<string, PairState>();
  private sink: SourceSink | undefined;
  private signal: AbortSignal | undefined;
  private connected = false;
  private lastSequence: number | undefined;
  private readonly log;

  constructor(adapter: ExchangeAdapter, options: LiveSourceOptions) {
    if (options.pairs.length === 0) throw new Error(`${adapter.exchange}: no pair to follow`);
    this.a = adapter;
    this.o = options;
    this.name = `${adapter.exchange}-ws`;
    this.log = rootLog.child({ source: this.name });
    for (const p of options.pairs) this.state.set(p, { completeUntil: 0, recovering: false });
    this.socket = new ReconnectingSocket({
      url: adapter.url,
      name: this.name,
      log: this.log,
      idleTimeoutMs: adapter.idleTimeoutMs,
      backoff: options.backoff,
      appPing: adapter.appPing,
      onOpen: (send, attempt) => this.onOpen(send, attempt),
      onMessage: (text, ts) => this.onFrame(text, ts),
      onDisconnect: (reason) => {
        this.connected = false;
        this.lastSequence = undefined;
        this.log.warn({ reason }, 'disconnected');
      },
    });
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    this.signal = signal;
    const every = this.o.watermarkIntervalMs ?? 1_000;
    const timer = setInterval(() => void this.watermarks(), every);
    try {
      await this.socket.run(signal);
    } finally {
      clearInterval(timer);
    }
  }

  private async onOpen(send: (text: string) => void, attempt: number): Promise<void> {
    for (const f of this.a.subscribeFrames(this.o.pairs)) send(f);
    if (attempt > 1) {
      this.stats.reconnects++;
      // Hold every pair's watermark until what traded while we were away has been refilled.
      for (const s of this.state.values()) if (s.lastId !== undefined) s.recovering = true;
      this.connected = true;
      for (const [pair, s] of this.state)
        if (s.lastId !== undefined) await this.recover(pair, undefined, 'reconnect');
    } else this.connected = true;
  }

  private async onFrame(text: string, receivedTs: number): Promise<void> {
    const sink = this.sink!;
    const parsed = this.a.parse(text, receivedTs);
    for (const r of parsed.rejects) {
      this.stats.rejects++;
      await sink.reject(
        deadLetter({ service: 'trades', origin: this.name, kind: r.kind, reason: r.reason, payload: text }),
      );
    }
    for (const c of parsed.controls) {
      if (c.type === 'error') {
        this.log.error({ message: c.message }, 'exchange error');
        await sink.reject(
          deadLetter({
            service: 'trades',
            origin: this.name,
            kind: 'exchange-error',
            reason: c.message,
            payload: text,
          }),
        );
      } else if (c.type === 'status' && c.status === 'shutdown')
        this.socket.drop('server announced shutdown');
      else if (c.type === 'sequence') {
        // Coinbase numbers every message of a connection: a jump means lost messages, of any pair.
        if (this.lastSequence !== undefined && c.sequence > this.lastSequence + 1) {
          this.stats.gaps++;
          this.log.warn({ missing: `${this.lastSequence + 1}..${c.sequence - 1}` }, 'sequence gap');
          this.lastSequence = c.sequence;
          for (const s of this.state.values()) if (s.lastId !== undefined) s.recovering = true;
          for (const pair of this.state.keys()) await this.recover(pair, undefined, 'sequence gap');
        }
        this.lastSequence = c.sequence;
      }
    }
    if (parsed.trades.length === 0) return;
    const fresh: Trade[] = [];
    for (const t of parsed.trades) {
      const s = this.state.get(t.pair);
      if (s === undefined) continue; // not subscribed (the exchange sent an extra symbol)
      const id = Number(t.tradeId);
      if (this.a.contiguousIds && s.lastId !== undefined && id > s.lastId + 1 && !s.recovering) {
        this.stats.gaps++;
        this.log.warn({ pair: t.pair, missing: `${s.lastId + 1}..${id - 1}` }, 'trade id gap');
        await sink.trades(fresh.splice(0));
        await this.recover(t.pair, id, 'gap');
      }
      if (s.lastId === undefined || id > s.lastId) {
        s.lastId = id;
        s.lastTs = Math.max(s.lastTs ?? 0, t.tradeTs);
      }
      fresh.push(t);
    }
    this.stats.trades += fresh.length;
    await sink.trades(fresh);
  }

  /** Refills a pair over REST after its last known trade (up to `untilId`, or now). */
  private async recover(pair: string, untilId: number | undefined, why: string): Promise<void> {
    const s = this.state.get(pair)!;
    if (this.a.recover === undefined || s.lastId === undefined || s.lastTs === undefined) {
      s.recovering = false;
      return;
    }
    s.recovering = true;
    try {
      const trades = await this.a.recover(pair, { id: s.lastId, ts: s.lastTs }, untilId, this.signal!);
      const wanted = trades.filter(
        (t) => Number(t.tradeId) > s.lastId! && (untilId === undefined || Number(t.tradeId) < untilId),
      );
      this.stats.recovered += wanted.length;
      this.log.info(
        { pair, why, recovered: wanted.length, afterId: s.lastId, untilId },
        'refilled over REST',
      );
      if (this.a.contiguousIds && untilId !== undefined && wanted.length < untilId - s.lastId - 1) {
        this.stats.unrecoverable += untilId - s.lastId - 1 - wanted.length;
        this.log.error(
          { pair, expected: untilId - s.lastId - 1, got: wanted.length },
          'gap only partly refilled',
        );
      }
      await this.sink!.trades(wanted);
      for (const t of wanted) {
        const id = Number(t.tradeId);
        if (id > s.lastId!) {
          s.lastId = id;
          s.lastTs = Math.max(s.lastTs!, t.tradeTs);
        }
      }
    } catch (err) {
      this.log.error({ err, pair, why }, 'REST refill failed; the gap stays open');
      this.stats.unrecoverable++;
    } finally {
      s.recovering = false;
    }
  }

  private async watermarks(): Promise<void> {
    if (!this.connected || this.sink === undefined) return;
    const now = Date.now() - (this.o.watermarkDelayMs ?? 2_000);
    for (const [pair, s] of this.state) {
      if (s.recovering) continue;
      s.completeUntil = now;
      await this.sink.watermark({ v: 1, type: 'watermark', exchange: this.a.exchange, pair, ts: now });
    }
  }
}

import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { log } from '../core/log.ts';
import { Pair, pairFromUrl, pairToUrl } from '../schemas/common.ts';
import { keyCharge } from './auth.ts';
import type { Entry, Feed, FeedRecord } from './feed.ts';
import { OutageLog } from './outage-log.ts';
import type { ApiErrorCode } from './reply.ts';
import { answerWithin, StoreTimeoutError } from './store-deadline.ts';

/**
 * The WebSocket stream (`GET /v1/ws`), with one channel per feed: `predictions` (the default) and `errors` (the
 * monitoring pipeline's error records). A client sends
 * `{"type":"subscribe","channel":"predictions","pairs":["BTC-USD"],"since":<epoch ms, optional>}`; the server
 * answers `subscribed` (with `since`: `replayFromByPair`, where each pair's replay starts, and `replayFrom`, the earliest
 * of them), replays the records with windowEnd > since (from the ring of recent ones, or the store when
 * older; without `since`, the latest one), then streams live ones as `{"type":"prediction","data":{…}}` (errors:
 * `"prediction_error"`). Live records that arrive during the replay are held and sent after it, minus those the
 * replay already sent (same key): neither gaps nor duplicates across the handover. (The revisions of the errors and
 * candles channels are the exception, by design: a resume also sends those of records before `since` that came while the client may
 * have been away — `Feed.recent` — so one may come twice, and before the records after `since`.)
 * `{"type":"unsubscribe","channel":…,"pairs":[…]}` stops pairs.
 *
 * A replay that reads the store waits for the client's previous store reads (one in flight per client), and no
 * longer than `replayReadTimeoutMs`: then, or when the store fails, `{"type":"error","error":"replay_failed",
 * "channel":…,"pair":…,"message":…}` and live records follow. One from memory never waits. With API keys, each replay
 * that reads the store takes a token of the key's bucket (the one the upgrade took one from): when empty,
 * `{"type":"error","error":"rate_limited","channel":…,"pair":…,…}`, no read, and live records follow. Either comes
 * before any record of that channel and pair: a client resubscribes them from its old `since` to fill the gap (the
 * frame names both: with the pair alone, a client of several channels could not tell which to ask again).
 * A replay that went through ends with `{"type":"replayed","channel":…,"pair":…}`, after its records and the live
 * ones held meanwhile (also when there was nothing to replay): a client knows its gap is filled without waiting for a
 * record that may never come. Every frame and its fields: docs/api.md (`WS_CONTROL_FRAMES` below).
 *
 * Protection: a malformed frame gets `{"type":"error",…}`; more than `maxFramesPerSecond` frames in a second closes
 * with 1008; a client whose socket holds more than `maxBufferedBytes` unsent is closed with 1013 (its backlog never
 * delays anyone else: a send never waits); a ping every `heartbeatMs`, and a client that missed the previous pong is
 * dropped.
 */
export interface WsOptions {
  maxFramesPerSecond?: number;
  maxBufferedBytes?: number;
  heartbeatMs?: number;
  /**
   * How far back `since` may reach (default 24 h) before the pair's newest record (or now, if earlier), pair by
   * pair; an older one is replayed from this bound (told in `subscribed`, `replayFromByPair`).
   */
  maxReplayMs?: number;
  /**
   * How long a replay waits for the store (default 10 s): then it answers `replay_failed` and the pair goes live. A
   * store that hangs must not hold the client's later replays, and its live records, for ever.
   */
  replayReadTimeoutMs?: number;
  /** Pairs per client (default 32). */
  maxPairs?: number;
  /**
   * Connections at once (default 5,000): one more is closed at once with 1013 (try again later). Each client holds
   * subscriptions, a replay chain and up to `maxBufferedBytes` unsent: without a bound, a client opening sockets in a
   * loop grows the process's memory until it is killed, and every other client with it.
   */
  maxClients?: number;
}

interface PairSub {
  /** Live records held while the replay runs; null once live. */
  held: Entry[] | null;
  /**
   * What the replay sent, until live passes it: a replay read from the store can include a prediction the topic has
   * not delivered yet (the predictor stores before it publishes), which must not be sent again when it arrives.
   */
  replayed: { sent: Map<string, Entry>; lastWindowEnd: number } | null;
}

const OPEN = 1;

/**
 * The frames a client sends, and those the server sends besides the channels' records (whose types are the feeds'
 * `frameType`: `prediction`, `prediction_error`, `candle`). docs/api.md lists every frame with its fields and when it
 * is sent; a unit test finds its list equal to these.
 */
export const WS_CLIENT_FRAMES = ['subscribe', 'unsubscribe'] as const;
export const WS_CONTROL_FRAMES = ['subscribed', 'unsubscribed', 'replayed', 'error'] as const;
type WsControlFrame = (typeof WS_CONTROL_FRAMES)[number];

/** The largest frame a client may send (subscribe and unsubscribe frames are far smaller). */
export const MAX_FRAME_BYTES = 4096;

/**
 * Reasons for the closes ws makes by itself when a client's frame breaks its rules: it sends the code alone (a bare
 * 1009 for a frame over the limit), and has no option for a reason, but it calls the socket's own `close`.
 */
const LIBRARY_CLOSE_REASONS: Record<number, string> = {
  1002: 'protocol error: not a valid WebSocket frame',
  1007: 'a text frame that is not valid UTF-8',
  1009: `a frame over ${MAX_FRAME_BYTES} bytes: send subscribe and unsubscribe frames only`,
};

/** A subscription's key: channel and pair. */
const subKey = (channel: string, pair: string) => `${channel}|${pair}`;

class Client {
  readonly socket: WebSocket;
  /** By `channel|pair`. */
  readonly subs = new Map<string, PairSub>();
  alive = true;
  closed = false;
  frameWindow = 0;
  frames = 0;
  /**
   * The client's replays that read the store, one after another: a subscribe may name 32 pairs, each read from the
   * store, and a client may send 20 of them a second. Run side by side, a few clients kept the store busy with
   * hundreds of reads a second and every REST request waited seconds behind them; in a chain, a client has one read
   * in flight at most (each with a deadline). A replay from memory is not in the chain: it never waits for a read.
   */
  replays: Promise<void> = Promise.resolve();
  /**
   * Charges one store read to the API key the client upgraded with (0 when a token was taken, else the milliseconds
   * until one is); undefined without API keys.
   */
  readonly charge: (() => number) | undefined;
  constructor(socket: WebSocket, charge: (() => number) | undefined) {
    this.socket = socket;
    this.charge = charge;
  }
}

export class WsHub {
  /** Channel name → feed; the first is the default channel. */
  private readonly feeds = new Map<string, Feed<FeedRecord>>();
  private readonly defaultChannel: string;
  /** By `channel|pair`. */
  private readonly byPair = new Map<string, Set<Client>>();
  private readonly clients = new Set<Client>();
  private readonly maxFrames: number;
  private readonly maxBuffered: number;
  private readonly maxReplayMs: number;
  private readonly replayReadTimeoutMs: number;
  private readonly maxPairs: number;
  private readonly maxClients: number;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unlisten: (() => void)[] = [];
  private readonly replayOutages = new Map<string, OutageLog>();
  readonly stats = {
    connected: 0,
    sent: 0,
    droppedSlow: 0,
    closedFlood: 0,
    malformed: 0,
    refusedFull: 0,
    /** Replays that read no store: the key's bucket was empty. */
    replaysRateLimited: 0,
    /** Store reads of replays that did not answer within `replayReadTimeoutMs`. */
    replaysTimedOut: 0,
  };

  constructor(feeds: readonly Feed<FeedRecord>[], options: WsOptions = {}) {
    for (const f of feeds) {
      this.feeds.set(f.spec.channel, f);
      const channel = f.spec.channel;
      this.unlisten.push(f.onRecord((e) => this.publish(channel, e)));
    }
    this.defaultChannel = feeds[0]!.spec.channel;
    this.maxFrames = options.maxFramesPerSecond ?? 20;
    this.maxBuffered = options.maxBufferedBytes ?? 1 << 20;
    this.maxReplayMs = options.maxReplayMs ?? 86_400_000;
    this.replayReadTimeoutMs = options.replayReadTimeoutMs ?? 10_000;
    this.maxPairs = options.maxPairs ?? 32;
    this.maxClients = options.maxClients ?? 5_000;
    this.heartbeat = setInterval(() => this.ping(), options.heartbeatMs ?? 30_000);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** The outage log of a channel's store as its replays read it (the REST routes' own reads have theirs). */
  private replayOutage(channel: string): OutageLog {
    let outage = this.replayOutages.get(channel);
    if (outage === undefined) {
      outage = new OutageLog({ what: `${channel} store (WebSocket replays)` });
      this.replayOutages.set(channel, outage);
    }
    return outage;
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const u of this.unlisten) u();
    for (const c of this.clients) c.socket.terminate();
    this.clients.clear();
    this.byPair.clear();
  }

  /** Closes every client with 1001 (going away) and `reason`: the API is stopping. */
  goingAway(reason: string): void {
    for (const c of [...this.clients]) this.kick(c, 1001, reason);
  }

  /**
   * Takes over a freshly upgraded socket; `req`, the upgrade request, says which API key to charge for the client's
   * store reads (none without API keys).
   */
  accept(socket: WebSocket, req?: FastifyRequest): void {
    const close = socket.close.bind(socket);
    socket.close = (code?: number, reason?: string | Buffer) =>
      close(code, reason ?? (code === undefined ? undefined : LIBRARY_CLOSE_REASONS[code]));
    if (this.clients.size >= this.maxClients) {
      this.stats.refusedFull++;
      socket.close(1013, `server full (${this.maxClients} connections): try again later`);
      return;
    }
    const c = new Client(socket, req === undefined ? undefined : keyCharge(req));
    this.clients.add(c);
    this.stats.connected++;
    socket.on('message', (data, isBinary) => this.onFrame(c, data as Buffer, isBinary));
    socket.on('pong', () => {
      c.alive = true;
    });
    socket.on('close', () => this.drop(c));
    socket.on('error', (err) => {
      log.debug({ err, service: 'api' }, 'websocket error');
      this.drop(c);
    });
  }

  /** Fan-out of one new record: one pre-serialised frame, never awaited. */
  private publish(channel: string, e: Entry): void {
    const k = subKey(channel, e.p.pair);
    const set = this.byPair.get(k);
    if (set === undefined) return;
    for (const c of set) {
      const sub = c.subs.get(k);
      if (sub === undefined) continue;
      if (sub.held !== null) sub.held.push(e);
      else if (!this.alreadyReplayed(channel, sub, e)) this.send(c, e.frame);
    }
  }

  private alreadyReplayed(channel: string, sub: PairSub, e: Entry): boolean {
    const r = sub.replayed;
    if (r === null) return false;
    if (e.p.windowEnd > r.lastWindowEnd) {
      sub.replayed = null; // live has passed the replay: nothing later can repeat it
      return false;
    }
    return this.repeats(channel, r.sent, e);
  }

  /** Whether `e` was sent already — the same key, and not a revision of what was sent (`FeedSpec.revision`). */
  private repeats(channel: string, sent: ReadonlyMap<string, Entry>, e: Entry): boolean {
    const before = sent.get(e.key);
    return before !== undefined && this.feeds.get(channel)!.spec.revision?.(e.p, before.p) !== true;
  }

  private send(c: Client, frame: Buffer | string): boolean {
    if (c.closed || c.socket.readyState !== OPEN) return false;
    if (c.socket.bufferedAmount > this.maxBuffered) {
      this.stats.droppedSlow++;
      this.kick(c, 1013, 'slow consumer: too much unsent data');
      return false;
    }
    // Text frames (the pre-serialised Buffers would otherwise go out binary: a browser would get a Blob).
    c.socket.send(frame, { binary: false });
    this.stats.sent++;
    return true;
  }

  private sendJson(c: Client, msg: { type: WsControlFrame } & Record<string, unknown>): void {
    this.send(c, JSON.stringify(msg));
  }

  private error(c: Client, code: ApiErrorCode, message: string): void {
    this.stats.malformed++;
    this.sendJson(c, { type: 'error', error: code, message });
  }

  /** Closes with a code; a socket that cannot even take the close frame is cut a second later. */
  private kick(c: Client, code: number, reason: string): void {
    if (c.closed) return;
    this.drop(c);
    try {
      c.socket.close(code, reason);
    } catch {
      c.socket.terminate();
    }
    setTimeout(() => c.socket.terminate(), 1_000).unref();
  }

  private drop(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    this.clients.delete(c);
    for (const k of c.subs.keys()) this.unlink(k, c);
    c.subs.clear();
  }

  /** Removes a client from a channel's pair set, and the set once empty (made-up pairs must not accumulate). */
  private unlink(k: string, c: Client): void {
    const set = this.byPair.get(k);
    set?.delete(c);
    if (set?.size === 0) this.byPair.delete(k);
  }

  private ping(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        this.drop(c);
        c.socket.terminate();
        continue;
      }
      c.alive = false;
      try {
        c.socket.ping();
      } catch {
        this.drop(c);
      }
    }
  }

  private onFrame(c: Client, data: Buffer, isBinary: boolean): void {
    if (c.closed) return;
    const now = Date.now();
    if (now - c.frameWindow >= 1_000) {
      c.frameWindow = now;
      c.frames = 0;
    }
    if (++c.frames > this.maxFrames) {
      this.stats.closedFlood++;
      this.kick(c, 1008, `more than ${this.maxFrames} frames per second`);
      return;
    }
    const problem = this.handle(c, data, isBinary);
    if (problem !== undefined) this.error(c, 'bad_request', problem);
  }

  /** Applies one frame; returns what is wrong with it, if anything. */
  private handle(c: Client, data: Buffer, isBinary: boolean): string | undefined {
    if (isBinary) return 'frames must be JSON text';
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      return 'frame is not JSON';
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return 'frame must be a JSON object';
    const m = msg as { type?: unknown; channel?: unknown; pairs?: unknown; since?: unknown };
    if (!WS_CLIENT_FRAMES.includes(m.type as (typeof WS_CLIENT_FRAMES)[number]))
      return 'type must be "subscribe" or "unsubscribe"';
    const channel = m.channel ?? this.defaultChannel;
    if (typeof channel !== 'string' || !this.feeds.has(channel))
      return `channel must be one of ${[...this.feeds.keys()].join(', ')}`;
    if (!Array.isArray(m.pairs) || m.pairs.length === 0 || m.pairs.length > this.maxPairs)
      return `pairs must be a list of 1 to ${this.maxPairs} pairs`;
    const pairs: string[] = [];
    for (const x of m.pairs) {
      const p = typeof x === 'string' ? pairFromUrl(x) : '';
      if (!Pair.safeParse(p).success)
        return `not a pair: ${String(JSON.stringify(x)).slice(0, 40)} (use e.g. BTC-USD)`;
      if (!pairs.includes(p)) pairs.push(p);
    }
    if (m.type === 'unsubscribe') {
      for (const p of pairs) {
        c.subs.delete(subKey(channel, p));
        this.unlink(subKey(channel, p), c);
      }
      this.sendJson(c, { type: 'unsubscribed', channel, pairs: pairs.map(pairToUrl) });
      return undefined;
    }
    if (
      m.since !== undefined &&
      (typeof m.since !== 'number' || !Number.isSafeInteger(m.since) || m.since < 0)
    )
      return 'since must be epoch milliseconds (a whole number)';
    const fresh = pairs.filter((p) => !c.subs.has(subKey(channel, p)));
    if (c.subs.size + fresh.length > this.maxPairs) return `at most ${this.maxPairs} pairs per connection`;
    // How far back a replay may reach is measured from each pair's newest record, not from the wall clock: a replay
    // of last year's recordings resumes like a live stream does. Pair by pair: a pair whose feed stopped days ago
    // must not stretch the replay of the others to its own bound.
    const feed = this.feeds.get(channel)!;
    const floor = (pair: string) =>
      Math.min(feed.latest(pair)?.windowEnd ?? Date.now(), Date.now()) - this.maxReplayMs;
    const requested = m.since as number | undefined;
    const from = new Map(
      pairs.map((p) => [p, requested === undefined ? undefined : Math.max(requested, floor(p))] as const),
    );
    for (const p of fresh) {
      const k = subKey(channel, p);
      c.subs.set(k, { held: [], replayed: null });
      let set = this.byPair.get(k);
      if (set === undefined) {
        set = new Set();
        this.byPair.set(k, set);
      }
      set.add(c);
    }
    this.sendJson(c, {
      type: 'subscribed',
      channel,
      pairs: pairs.map(pairToUrl),
      ...(requested === undefined
        ? {}
        : {
            // The earliest of them (what a single `replayFrom` has always said), then each pair's own.
            replayFrom: Math.min(...pairs.map((p) => from.get(p)!)),
            replayFromByPair: Object.fromEntries(pairs.map((p) => [pairToUrl(p), from.get(p)!])),
          }),
    });
    for (const p of fresh) {
      const k = subKey(channel, p);
      const sub = c.subs.get(k)!;
      const since = from.get(p);
      const failed = (err: unknown) =>
        log.error({ err, service: 'api', channel, pair: p }, 'websocket replay failed');
      // Only a replay that reads the store waits its turn: one from memory (the latest, or the ring) goes at once,
      // whatever another pair's read is doing.
      if (since === undefined || feed.recent(p, since) !== undefined) {
        this.replay(c, channel, p, since).catch(failed);
        continue;
      }
      // A pair unsubscribed (or subscribed anew) while waiting for its turn is skipped: no read for it.
      c.replays = c.replays
        .then(() => (c.subs.get(k) === sub ? this.replay(c, channel, p, since) : undefined))
        .catch(failed);
    }
    return undefined;
  }

  /** Replays one pair of a channel, then hands over to live (held frames minus those replayed). */
  private async replay(c: Client, channel: string, pair: string, since: number | undefined): Promise<void> {
    const k = subKey(channel, pair);
    const feed = this.feeds.get(channel)!;
    const sub = c.subs.get(k);
    if (sub === undefined) return;
    let items: readonly Entry[];
    /** An error frame said this pair was not replayed: no `replayed` frame then. */
    let notReplayed = false;
    if (since === undefined) {
      const e = feed.latestEntry(pair);
      items = e === undefined ? [] : [e];
    } else {
      const ring = feed.recent(pair, since);
      const wait = ring === undefined ? (c.charge?.() ?? 0) : 0;
      if (ring !== undefined) items = ring;
      else if (wait > 0) {
        // The key's bucket is empty: no read (a client resubscribing in a loop would read the store for ever).
        this.stats.replaysRateLimited++;
        notReplayed = true;
        this.sendJson(c, {
          type: 'error',
          error: 'rate_limited',
          channel,
          pair: pairToUrl(pair),
          message: `${pairToUrl(pair)} not replayed: rate limit exceeded for this API key (retry in ${Math.max(1, Math.ceil(wait / 1000))} s); live records follow`,
        });
        items = [];
      } else {
        try {
          // The read cannot be called back and may go on in the store, but the client's next replays wait no more
          // for it: a client starts at most one store read per deadline.
          items = await answerWithin(
            feed.fromStore(pair, since),
            'store',
            this.replayReadTimeoutMs,
            this.replayOutage(channel),
          );
        } catch (err) {
          const late = err instanceof StoreTimeoutError;
          if (late) this.stats.replaysTimedOut++;
          notReplayed = true;
          // Logged by the channel's outage log: once per outage with its stack, then a count a minute (every client
          // subscribing during an outage wrote a stack trace).
          this.sendJson(c, {
            type: 'error',
            error: 'replay_failed',
            channel,
            pair: pairToUrl(pair),
            message: `could not replay ${pairToUrl(pair)}: ${late ? `the store did not answer within ${this.replayReadTimeoutMs} ms` : 'store unavailable'}`,
          });
          items = [];
        }
      }
    }
    if (c.closed || c.subs.get(k) !== sub) return;
    const sent = new Map<string, Entry>();
    for (const e of items) {
      // A long replay goes at the client's pace (live frames are held meanwhile), within the same limit.
      if (c.socket.bufferedAmount > this.maxBuffered / 2) {
        if (!(await this.drained(c)) || c.subs.get(k) !== sub) return;
      }
      if (!this.send(c, e.frame)) return;
      sent.set(e.key, e);
    }
    const held = sub.held ?? [];
    sub.held = null;
    let lastWindowEnd = Number.NEGATIVE_INFINITY;
    for (const e of items) lastWindowEnd = Math.max(lastWindowEnd, e.p.windowEnd);
    for (const e of held) {
      // A revision is news whatever its windowEnd (it keeps the one of the record it revises, which may be ≤ since).
      if (this.repeats(channel, sent, e) || (since !== undefined && e.p.windowEnd <= since && !e.revision))
        continue;
      if (!this.send(c, e.frame)) return;
      sent.set(e.key, e);
      lastWindowEnd = Math.max(lastWindowEnd, e.p.windowEnd);
    }
    if (sent.size > 0) sub.replayed = { sent, lastWindowEnd };
    // The replay is whole: a client waiting for it (to know a gap is filled) must not have to wait for a record,
    // which may never come (nothing was missing, or the pipeline stopped).
    if (!notReplayed) this.sendJson(c, { type: 'replayed', channel, pair: pairToUrl(pair) });
  }

  /** Waits (up to 10 s) until the client has taken half of its backlog; false if it is gone or too slow. */
  private async drained(c: Client): Promise<boolean> {
    const until = Date.now() + 10_000;
    while (!c.closed && c.socket.bufferedAmount > this.maxBuffered / 2) {
      if (Date.now() > until) {
        this.stats.droppedSlow++;
        this.kick(c, 1013, 'slow consumer: replay not read');
        return false;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return !c.closed;
  }
}

import type { WebSocket } from 'ws';
import { log } from '../core/log.ts';
import type { PredictionsStore } from '../inference/predictions-store.ts';
import { Pair, pairFromUrl, pairToUrl } from '../schemas/common.ts';
import { type Entry, type LatestPredictions, makeEntry } from './latest.ts';

/**
 * The WebSocket stream (`GET /v1/ws`). A client sends
 * `{"type":"subscribe","pairs":["BTC-USD"],"since":<epoch ms, optional>}`; the server answers `subscribed`, replays
 * the predictions with windowEnd > since (from the ring of recent ones, or the store when older; without `since`,
 * the latest one), then streams live ones as `{"type":"prediction","data":{…}}`. Live predictions that arrive during
 * the replay are held and sent after it, minus those the replay already sent (same pair, windowEnd, modelVersion):
 * neither gaps nor duplicates across the handover. `{"type":"unsubscribe","pairs":[…]}` stops pairs.
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
  /** How far back `since` may reach (default 24 h); an older one is replayed from this bound (told in `subscribed`). */
  maxReplayMs?: number;
  /** Pairs per client (default 32). */
  maxPairs?: number;
}

interface PairSub {
  /** Live predictions held while the replay runs; null once live. */
  held: Entry[] | null;
  /**
   * What the replay sent, until live passes it: a replay read from the store can include a prediction the topic has
   * not delivered yet (the predictor stores before it publishes), which must not be sent again when it arrives.
   */
  replayed: { keys: Set<string>; lastWindowEnd: number } | null;
}

const OPEN = 1;

class Client {
  readonly socket: WebSocket;
  readonly subs = new Map<string, PairSub>();
  alive = true;
  closed = false;
  frameWindow = 0;
  frames = 0;
  constructor(socket: WebSocket) {
    this.socket = socket;
  }
}

export class WsHub {
  private readonly latest: LatestPredictions;
  private readonly store: PredictionsStore;
  private readonly byPair = new Map<string, Set<Client>>();
  private readonly clients = new Set<Client>();
  private readonly maxFrames: number;
  private readonly maxBuffered: number;
  private readonly maxReplayMs: number;
  private readonly maxPairs: number;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unlisten: () => void;
  readonly stats = { connected: 0, sent: 0, droppedSlow: 0, closedFlood: 0, malformed: 0 };

  constructor(latest: LatestPredictions, store: PredictionsStore, options: WsOptions = {}) {
    this.latest = latest;
    this.store = store;
    this.maxFrames = options.maxFramesPerSecond ?? 20;
    this.maxBuffered = options.maxBufferedBytes ?? 1 << 20;
    this.maxReplayMs = options.maxReplayMs ?? 86_400_000;
    this.maxPairs = options.maxPairs ?? 32;
    this.unlisten = latest.onPrediction((e) => this.publish(e));
    this.heartbeat = setInterval(() => this.ping(), options.heartbeatMs ?? 30_000);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.unlisten();
    for (const c of this.clients) c.socket.terminate();
    this.clients.clear();
    this.byPair.clear();
  }

  /** Takes over a freshly upgraded socket. */
  accept(socket: WebSocket): void {
    const c = new Client(socket);
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

  /** Fan-out of one new prediction: one pre-serialised frame, never awaited. */
  private publish(e: Entry): void {
    const set = this.byPair.get(e.p.pair);
    if (set === undefined) return;
    for (const c of set) {
      const sub = c.subs.get(e.p.pair);
      if (sub === undefined) continue;
      if (sub.held !== null) sub.held.push(e);
      else if (!this.alreadyReplayed(sub, e)) this.send(c, e.frame);
    }
  }

  private alreadyReplayed(sub: PairSub, e: Entry): boolean {
    const r = sub.replayed;
    if (r === null) return false;
    if (e.p.windowEnd > r.lastWindowEnd) {
      sub.replayed = null; // live has passed the replay: nothing later can repeat it
      return false;
    }
    return r.keys.has(e.key);
  }

  private send(c: Client, frame: Buffer | string): boolean {
    if (c.closed || c.socket.readyState !== OPEN) return false;
    if (c.socket.bufferedAmount > this.maxBuffered) {
      this.stats.droppedSlow++;
      this.kick(c, 1013, 'slow consumer: too much unsent data');
      return false;
    }
    c.socket.send(frame);
    this.stats.sent++;
    return true;
  }

  private sendJson(c: Client, msg: Record<string, unknown>): void {
    this.send(c, JSON.stringify(msg));
  }

  private error(c: Client, code: string, message: string): void {
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
    for (const pair of c.subs.keys()) this.unlink(pair, c);
    c.subs.clear();
  }

  /** Removes a client from a pair's set, and the set once empty (made-up pairs must not accumulate). */
  private unlink(pair: string, c: Client): void {
    const set = this.byPair.get(pair);
    set?.delete(c);
    if (set?.size === 0) this.byPair.delete(pair);
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
    const m = msg as { type?: unknown; pairs?: unknown; since?: unknown };
    if (m.type !== 'subscribe' && m.type !== 'unsubscribe')
      return 'type must be "subscribe" or "unsubscribe"';
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
        c.subs.delete(p);
        this.unlink(p, c);
      }
      this.sendJson(c, { type: 'unsubscribed', pairs: pairs.map(pairToUrl) });
      return undefined;
    }
    if (
      m.since !== undefined &&
      (typeof m.since !== 'number' || !Number.isSafeInteger(m.since) || m.since < 0)
    )
      return 'since must be epoch milliseconds (a whole number)';
    const fresh = pairs.filter((p) => !c.subs.has(p));
    if (c.subs.size + fresh.length > this.maxPairs) return `at most ${this.maxPairs} pairs per connection`;
    const since = m.since === undefined ? undefined : Math.max(m.since, Date.now() - this.maxReplayMs);
    for (const p of fresh) {
      c.subs.set(p, { held: [], replayed: null });
      let set = this.byPair.get(p);
      if (set === undefined) {
        set = new Set();
        this.byPair.set(p, set);
      }
      set.add(c);
    }
    this.sendJson(c, {
      type: 'subscribed',
      pairs: pairs.map(pairToUrl),
      ...(since === undefined ? {} : { replayFrom: since }),
    });
    for (const p of fresh) void this.replay(c, p, since);
    return undefined;
  }

  /** Replays one pair, then hands over to live (held frames minus those replayed). */
  private async replay(c: Client, pair: string, since: number | undefined): Promise<void> {
    const sub = c.subs.get(pair);
    if (sub === undefined) return;
    let items: readonly Entry[];
    if (since === undefined) {
      const e = this.latest.latestEntry(pair);
      items = e === undefined ? [] : [e];
    } else {
      const ring = this.latest.recent(pair, since);
      if (ring !== undefined) items = ring;
      else {
        try {
          items = await this.fromStore(pair, since);
        } catch (err) {
          log.error({ err, service: 'api', pair }, 'websocket replay from the store failed');
          this.sendJson(c, {
            type: 'error',
            error: 'replay_failed',
            message: `could not replay ${pairToUrl(pair)}: store unavailable`,
          });
          items = [];
        }
      }
    }
    if (c.closed || c.subs.get(pair) !== sub) return;
    const sent = new Set<string>();
    for (const e of items) {
      // A long replay goes at the client's pace (live frames are held meanwhile), within the same limit.
      if (c.socket.bufferedAmount > this.maxBuffered / 2) {
        if (!(await this.drained(c)) || c.subs.get(pair) !== sub) return;
      }
      if (!this.send(c, e.frame)) return;
      sent.add(e.key);
    }
    const held = sub.held ?? [];
    sub.held = null;
    let lastWindowEnd = Number.NEGATIVE_INFINITY;
    for (const e of items) lastWindowEnd = Math.max(lastWindowEnd, e.p.windowEnd);
    for (const e of held) {
      if (sent.has(e.key) || (since !== undefined && e.p.windowEnd <= since)) continue;
      if (!this.send(c, e.frame)) return;
      sent.add(e.key);
      lastWindowEnd = Math.max(lastWindowEnd, e.p.windowEnd);
    }
    if (sent.size > 0) sub.replayed = { keys: sent, lastWindowEnd };
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

  /** Store history with windowEnd > since (pages of 1000), merged with the ring, deduped, in order. */
  private async fromStore(pair: string, since: number): Promise<Entry[]> {
    const out = new Map<string, Entry>();
    const to = Date.now() + 86_400_000;
    let after: number | undefined;
    for (;;) {
      const page = await this.store.history(pair, since + 1, to, { limit: 1000, after });
      for (const p of page) {
        const e = makeEntry(p);
        out.set(e.key, e);
      }
      // A page may be short without being the last (it never ends inside a windowEnd): read until empty.
      if (page.length === 0) break;
      after = page[page.length - 1]!.windowEnd;
    }
    for (const e of this.latest.ring(pair)) if (e.p.windowEnd > since) out.set(e.key, e);
    return [...out.values()].sort(
      (a, b) => a.p.windowEnd - b.p.windowEnd || a.p.modelVersion - b.p.modelVersion,
    );
  }
}

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { log } from '../core/log.ts';
import type { PredictionsStore } from '../inference/predictions-store.ts';
import type { Bus, Subscription } from '../runtime/bus.ts';
import { topics } from '../runtime/topic.ts';
import { pairToUrl } from '../schemas/common.ts';
import type { Prediction } from '../schemas/prediction.ts';

/**
 * One prediction as the API holds it: the value, its identity (pair, windowEnd, modelVersion) and its WebSocket
 * frame serialised once, so a fan-out to many clients costs no serialisation per client.
 */
export interface Entry {
  readonly p: Prediction;
  readonly key: string;
  readonly frame: Buffer;
}

export function predictionKey(p: Prediction): string {
  return `${p.pair}|${p.windowEnd}|${p.modelVersion}`;
}

/** Orders by (windowEnd, modelVersion), the order of the store's history and of every replay. */
export function compareEntries(a: Entry, b: Entry): number {
  return a.p.windowEnd - b.p.windowEnd || a.p.modelVersion - b.p.modelVersion;
}

export function makeEntry(p: Prediction): Entry {
  return {
    p,
    key: predictionKey(p),
    frame: Buffer.from(`{"type":"prediction","data":${JSON.stringify(p)}}`),
  };
}

interface PairState {
  latest: Entry;
  /** The latest prediction's JSON body, ready for `GET /v1/predictions/latest`. */
  body: Buffer;
  /** Recent predictions, ordered by (windowEnd, modelVersion), unique by key, at most `ringSize`. */
  ring: Entry[];
  keys: Set<string>;
  /**
   * The ring holds every prediction of this pair with windowEnd > coveredFrom that this instance has seen since it
   * subscribed; anything at or before it may be missing here and is read from the store.
   */
  coveredFrom: number;
}

export interface LatestOptions {
  /** Recent predictions kept per pair for WebSocket resume (default 1440: a day of one-minute predictions). */
  ringSize?: number;
}

export interface LatestStartOptions {
  bus: Bus;
  store: PredictionsStore;
  /** Pairs read from the store on a cold start (canonical, `BTC/USD`). */
  pairs: readonly string[];
  /** Consumer group; default unique per instance (every API instance must see every prediction). */
  group?: string;
}

type Listener = (e: Entry) => void;

/**
 * The API's in-memory view of the `predictions` topic: the latest prediction per pair (served without I/O) and a
 * short ring of recent ones per pair (WebSocket resume). Fed by a subscription of its own (a consumer group unique
 * to this instance, from the latest offset); a cold start fills it from the topic's tail and the store's `latest`.
 *
 * Newest wins for `latest`: the greater windowEnd, then the later createdAt. A prediction whose key is already in
 * the ring (a re-publication) replaces it silently: listeners hear of each key once.
 */
export class LatestPredictions {
  private readonly pairs = new Map<string, PairState>();
  /** `BTC-USD` → state, for the latest route's lookup without string work. */
  private readonly byUrlPair = new Map<string, PairState>();
  private readonly listeners = new Set<Listener>();
  private readonly ringSize: number;
  private subscription: Subscription | undefined;
  private filled = false;
  readonly stats = { received: 0, duplicates: 0, stale: 0 };

  constructor(options: LatestOptions = {}) {
    this.ringSize = options.ringSize ?? 1440;
    if (!Number.isInteger(this.ringSize) || this.ringSize < 1) throw new Error('ringSize must be ≥ 1');
  }

  /** True once the cold start is done and the subscription is running. */
  get ready(): boolean {
    return this.filled && this.subscription !== undefined;
  }

  /**
   * Subscribes to `predictions` (from the latest offset, so nothing published from now on is missed), then fills
   * the cache from the topic's recent records and the store's latest per pair.
   */
  async start(opts: LatestStartOptions): Promise<void> {
    const group = opts.group ?? `api-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.subscription = await opts.bus.subscribe({
      topic: topics.predictions,
      group,
      from: 'latest',
      service: 'api',
      handle: (batch) => {
        for (const r of batch.records) this.add(r.value);
        return undefined;
      },
    });
    const tail = await opts.bus.readTail(topics.predictions, Math.min(this.ringSize, 1000));
    tail.sort((a, b) => a.value.windowEnd - b.value.windowEnd);
    for (const r of tail) this.add(r.value, true);
    for (const pair of opts.pairs) {
      const p = await opts.store.latest(pair);
      if (p !== undefined) this.add(p, true);
    }
    // What was known before the subscription may have gaps: the ring is trusted only after it.
    for (const s of this.pairs.values()) s.coveredFrom = Math.max(s.coveredFrom, s.latest.p.windowEnd);
    this.filled = true;
    log.info({ service: 'api', group, pairs: [...this.pairs.keys()] }, 'latest predictions loaded');
  }

  async stop(): Promise<void> {
    const s = this.subscription;
    this.subscription = undefined;
    await s?.stop();
  }

  /** Marks the cache filled without a bus (tests, benchmarks). */
  markReady(): void {
    this.filled = true;
    this.subscription ??= { stop: async () => {}, caughtUp: async () => {} };
  }

  /**
   * Adds a prediction. Returns its entry when it is new (listeners were told), undefined for a duplicate key or
   * one too old for the ring. `quiet` adds without telling listeners (cold start).
   */
  add(p: Prediction, quiet = false): Entry | undefined {
    this.stats.received++;
    const e = makeEntry(p);
    let s = this.pairs.get(p.pair);
    if (s === undefined) {
      s = {
        latest: e,
        body: Buffer.from(JSON.stringify(p)),
        ring: [e],
        keys: new Set([e.key]),
        coveredFrom: p.windowEnd - 1,
      };
      this.pairs.set(p.pair, s);
      this.byUrlPair.set(pairToUrl(p.pair), s);
      if (!quiet) this.emit(e);
      return e;
    }
    const newer =
      p.windowEnd > s.latest.p.windowEnd ||
      (p.windowEnd === s.latest.p.windowEnd && p.createdAt >= s.latest.p.createdAt);
    if (newer) {
      s.latest = e;
      s.body = Buffer.from(JSON.stringify(p));
    }
    const ring = s.ring;
    if (s.keys.has(e.key)) {
      const i = ring.findIndex((x) => x.key === e.key);
      if (i >= 0) ring[i] = e;
      this.stats.duplicates++;
      return undefined;
    }
    if (ring.length >= this.ringSize && compareEntries(e, ring[0]!) < 0) {
      // Older than anything kept: a late re-publication, which the store already has.
      this.stats.stale++;
      return undefined;
    }
    let i = ring.length;
    while (i > 0 && compareEntries(ring[i - 1]!, e) > 0) i--;
    if (i === ring.length) ring.push(e);
    else ring.splice(i, 0, e);
    s.keys.add(e.key);
    while (ring.length > this.ringSize) {
      const gone = ring.shift()!;
      s.keys.delete(gone.key);
      s.coveredFrom = Math.max(s.coveredFrom, gone.p.windowEnd);
    }
    if (!quiet) this.emit(e);
    return e;
  }

  /** The latest prediction's JSON body for a URL pair (`BTC-USD`), or undefined. */
  bodyFor(urlPair: string): Buffer | undefined {
    return this.byUrlPair.get(urlPair)?.body;
  }

  latest(pair: string): Prediction | undefined {
    return this.pairs.get(pair)?.latest.p;
  }

  /** Pairs (canonical) with a prediction. */
  knownPairs(): string[] {
    return [...this.pairs.keys()];
  }

  /**
   * Predictions of `pair` with windowEnd > since, from the ring, in order; undefined when the ring may miss some of
   * them (since is before what it covers): read the store then.
   */
  recent(pair: string, since: number): Entry[] | undefined {
    const s = this.pairs.get(pair);
    if (s === undefined) return undefined;
    if (since < s.coveredFrom) return undefined;
    const ring = s.ring;
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ring[mid]!.p.windowEnd <= since) lo = mid + 1;
      else hi = mid;
    }
    return ring.slice(lo);
  }

  /** The ring of `pair` as it is now (oldest first). */
  ring(pair: string): readonly Entry[] {
    return this.pairs.get(pair)?.ring ?? [];
  }

  latestEntry(pair: string): Entry | undefined {
    return this.pairs.get(pair)?.latest;
  }

  /** Calls `fn` for every new prediction; returns the unsubscribe function. */
  onPrediction(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: Entry): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        log.error({ err, service: 'api' }, 'prediction listener failed');
      }
    }
  }
}

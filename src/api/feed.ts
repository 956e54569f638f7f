import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { log } from '../core/log.ts';
import { type Bus, offsetsAfter, type Subscription } from '../runtime/bus.ts';
import type { Topic } from '../runtime/topic.ts';

/**
 * What the API serves live, per channel of the WebSocket (`predictions`, `errors`): a record type keyed by pair and
 * ordered by windowEnd, its topic, and where older records are read from (the store).
 */
export interface FeedRecord {
  readonly pair: string;
  readonly windowEnd: number;
}

export interface FeedSpec<T extends FeedRecord> {
  /** The WebSocket channel name, and the `type` of its data frames. */
  readonly channel: string;
  readonly frameType: string;
  readonly topic: Topic<T>;
  /** Identity: a record with the same key replaces the previous one (a re-publication; see also `revision`). */
  key(v: T): string;
  /**
   * For a record whose key is held already: `true`, a revision — it replaces the held one and goes to the subscribers
   * (a verdict scored after it timed out); `false`, stale — kept out (that timed-out verdict read again after its
   * revision); `undefined` or absent: a re-publication, which replaces the held one silently.
   */
  revision?(next: T, held: T): boolean | undefined;
  /**
   * Whether a record may still be revised (a time-out): one that leaves the ring is then kept aside (`evicted`,
   * bounded like the ring), so that its revision, coming after a busy day filled the ring, still reaches subscribers.
   */
  revisable?(v: T): boolean;
  /**
   * How long a revisable record set aside stays revisable, behind its pair's newest record (the monitor revises a
   * time-out only within the day it keeps). Default: forever, within the bound.
   */
  readonly revisableForMs?: number;
  /** Order within a pair: windowEnd, then this (e.g. model version). */
  tiebreak(a: T, b: T): number;
  /** What a frame's `data` carries of a record (default: all of it): fields kept for the pipeline's own use left out. */
  view?(v: T): unknown;
  /** For `latest`: does `a` supersede `b` (same pair)? */
  newer(a: T, b: T): boolean;
  /** Store history with windowEnd in [from, to), ordered, paged after a windowEnd (pages end on whole windowEnds). */
  history(pair: string, from: number, to: number, opts: { limit: number; after?: number }): Promise<T[]>;
  /** The newest record of a pair in the store (cold start), if the store can say. */
  latestInStore?(pair: string): Promise<T | undefined>;
}

/** One record as the API holds it: the value, its identity and its WebSocket frame serialised once. */
export interface Entry<T extends FeedRecord = FeedRecord> {
  readonly p: T;
  readonly key: string;
  readonly frame: Buffer;
  /** A revision of a record sent before under the same key (`FeedSpec.revision`): news whatever its windowEnd. */
  readonly revision?: true;
  /**
   * On a revision: the pair's newest windowEnd when it came (+∞ when not known: a cold start). A client resuming from
   * a `since` at or before it was away when it came, and gets it again; one resuming from later had it live.
   */
  readonly revisedAt?: number;
}

interface PairState<T extends FeedRecord> {
  latest: Entry<T>;
  /** Recent records, ordered, unique by key, at most `ringSize`. */
  ring: Entry<T>[];
  keys: Set<string>;
  /**
   * Revisable records (`FeedSpec.revisable`) that left the ring, by key, oldest first; at most `ringSize`, and none
   * older than `revisableForMs` behind the newest. The record only: its frame is never sent again.
   */
  evicted: Map<string, T>;
  /**
   * The ring holds every record of this pair with windowEnd > coveredFrom that this instance has seen since it
   * subscribed; anything at or before it may be missing here and is read from the store.
   */
  coveredFrom: number;
}

export interface FeedOptions {
  /** Recent records kept per pair for WebSocket resume (default 1440: a day of one-minute records). */
  ringSize?: number;
}

export interface FeedStartOptions {
  bus: Bus;
  /** Pairs read from the store on a cold start (canonical, `BTC/USD`). */
  pairs: readonly string[];
  /** Consumer group; default unique per instance (every API instance must see every record). */
  group?: string;
}

type Listener<T extends FeedRecord> = (e: Entry<T>) => void;

/** Whether a client resuming from `since` may have missed `e`, a record with windowEnd ≤ since: a revision that came then. */
const missedRevision = (e: Entry, since: number) => e.revision === true && (e.revisedAt ?? Infinity) >= since;

/**
 * The API's in-memory view of a topic: the latest record per pair and a ring of recent ones per pair (WebSocket
 * resume). Fed by a subscription of its own (a consumer group unique to this instance, from where the cold start's
 * read of the topic's tail ended); a cold start fills it from that tail and the store's latest. A record whose key is already in the ring (a
 * re-publication) replaces it silently: listeners hear of each key once — or twice, when the spec says the second is
 * a revision (`FeedSpec.revision`).
 */
export class Feed<T extends FeedRecord> {
  readonly spec: FeedSpec<T>;
  private readonly pairs = new Map<string, PairState<T>>();
  private readonly listeners = new Set<Listener<T>>();
  private readonly ringSize: number;
  private subscription: Subscription | undefined;
  private filled = false;
  /** From the start of `start` until its cold start is done (see `recent`). */
  private coldStarting = false;
  readonly stats = { received: 0, duplicates: 0, stale: 0 };

  constructor(spec: FeedSpec<T>, options: FeedOptions = {}) {
    this.spec = spec;
    this.ringSize = options.ringSize ?? 1440;
    if (!Number.isInteger(this.ringSize) || this.ringSize < 1) throw new Error('ringSize must be ≥ 1');
  }

  compare(a: Entry<T>, b: Entry<T>): number {
    return a.p.windowEnd - b.p.windowEnd || this.spec.tiebreak(a.p, b.p);
  }

  makeEntry(v: T): Entry<T> {
    return {
      p: v,
      key: this.spec.key(v),
      frame: Buffer.from(
        `{"type":"${this.spec.frameType}","data":${JSON.stringify(this.spec.view ? this.spec.view(v) : v)}}`,
      ),
    };
  }

  /** True once the cold start is done and the subscription is running. */
  get ready(): boolean {
    return this.filled && this.subscription !== undefined;
  }

  /**
   * Fills from the topic's tail, subscribes from where that read ended (so nothing published since is missed), then
   * fills from the store.
   */
  async start(opts: FeedStartOptions): Promise<void> {
    this.coldStarting = true;
    const group =
      opts.group ?? `api-${this.spec.channel}-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const tail = await opts.bus.readTail(this.spec.topic, Math.min(this.ringSize, 1000));
    const tailEnd = offsetsAfter(tail);
    tail.sort((a, b) => a.value.windowEnd - b.value.windowEnd);
    for (const r of tail) this.add(r.value, true);
    // From the offsets the tail ended at (a partition it found empty: from its start), not "from latest" before the
    // read: on Kafka "latest" is fixed when the group is assigned the partitions, which a late join or a rebalance puts
    // after the read, and the records published in between were neither read nor consumed.
    this.subscription = await opts.bus.subscribe({
      topic: this.spec.topic,
      group,
      from: 'earliest',
      startAt: tailEnd,
      service: 'api',
      handle: (batch) => {
        for (const r of batch.records) this.add(r.value);
        return undefined;
      },
    });
    if (this.spec.latestInStore)
      for (const pair of opts.pairs) {
        const v = await this.spec.latestInStore(pair);
        if (v !== undefined) this.add(v, true);
      }
    // What was known before the subscription may have gaps: the ring is trusted only after it.
    for (const s of this.pairs.values()) s.coveredFrom = Math.max(s.coveredFrom, s.latest.p.windowEnd);
    this.coldStarting = false;
    this.filled = true;
    log.info(
      { service: 'api', channel: this.spec.channel, group, pairs: [...this.pairs.keys()] },
      'feed loaded',
    );
  }

  async stop(): Promise<void> {
    const s = this.subscription;
    this.subscription = undefined;
    await s?.stop();
  }

  /** Marks the feed filled without a bus (tests, benchmarks, the embedded runtime feeding it directly). */
  markReady(): void {
    this.filled = true;
    this.subscription ??= {
      stop: async () => {},
      caughtUp: async () => {},
      lag: () => 0,
      readToEnd: () => true,
    };
  }

  /**
   * Adds a record. Returns its entry when it is new or a revision (listeners were told), undefined for a duplicate
   * key, a stale one or one too old for the ring. `quiet` adds without telling listeners (cold start).
   */
  add(v: T, quiet = false): Entry<T> | undefined {
    this.stats.received++;
    const e = this.makeEntry(v);
    let s = this.pairs.get(v.pair);
    if (s === undefined) {
      s = { latest: e, ring: [e], keys: new Set([e.key]), evicted: new Map(), coveredFrom: v.windowEnd - 1 };
      this.pairs.set(v.pair, s);
      this.onLatest(e);
      if (!quiet) this.emit(e);
      return e;
    }
    const ring = s.ring;
    const held = s.keys.has(e.key) ? ring.findIndex((x) => x.key === e.key) : -1;
    const aside = held < 0 ? s.evicted.get(e.key) : undefined;
    const before = held >= 0 ? ring[held]!.p : aside;
    const revision = before !== undefined ? this.spec.revision?.(v, before) : undefined;
    if (revision === false) {
      this.stats.stale++;
      return undefined;
    }
    if (this.spec.newer(v, s.latest.p)) {
      s.latest = e;
      this.onLatest(e);
    }
    if (s.keys.has(e.key)) {
      if (revision === true) {
        const revised: Entry<T> = {
          ...e,
          revision: true,
          revisedAt: quiet ? Number.POSITIVE_INFINITY : s.latest.p.windowEnd,
        };
        ring[held] = revised;
        if (!quiet) this.emit(revised);
        return revised;
      }
      // A re-publication (a restart's rebuild from the store, an at-least-once topic) keeps a revision's mark.
      const was = ring[held];
      if (was !== undefined)
        ring[held] = was.revision ? { ...e, revision: true, revisedAt: was.revisedAt } : e;
      this.stats.duplicates++;
      return undefined;
    }
    if (aside !== undefined && revision === true) {
      // The revision of a record that has left the ring: news for the subscribers; the ring keeps its order.
      s.evicted.delete(e.key);
      const revised: Entry<T> = { ...e, revision: true };
      if (!quiet) this.emit(revised);
      return revised;
    }
    if (ring.length >= this.ringSize && this.compare(e, ring[0]!) < 0) {
      // Older than anything kept: a late re-publication, which the store already has.
      this.stats.stale++;
      return undefined;
    }
    let i = ring.length;
    while (i > 0 && this.compare(ring[i - 1]!, e) > 0) i--;
    if (i === ring.length) ring.push(e);
    else ring.splice(i, 0, e);
    s.keys.add(e.key);
    while (ring.length > this.ringSize) {
      const gone = ring.shift()!;
      s.keys.delete(gone.key);
      if (this.spec.revisable?.(gone.p)) s.evicted.set(gone.key, gone.p);
      if (s.evicted.size > 0) this.pruneAside(s);
      s.coveredFrom = Math.max(s.coveredFrom, gone.p.windowEnd);
    }
    if (!quiet) this.emit(e);
    return e;
  }

  /** Drops the records set aside that can no longer be revised, or beyond the bound. */
  private pruneAside(s: PairState<T>): void {
    const horizon = s.latest.p.windowEnd - (this.spec.revisableForMs ?? Number.POSITIVE_INFINITY);
    // Oldest first (they leave the ring in windowEnd order).
    for (const [key, v] of s.evicted) {
      if (s.evicted.size <= this.ringSize && v.windowEnd >= horizon) break;
      s.evicted.delete(key);
    }
  }

  /** Called when a pair's latest record changes (subclasses cache derived views). */
  protected onLatest(_e: Entry<T>): void {}

  latest(pair: string): T | undefined {
    return this.pairs.get(pair)?.latest.p;
  }

  /** Pairs (canonical) with a record. */
  knownPairs(): string[] {
    return [...this.pairs.keys()];
  }

  /**
   * Records of `pair` with windowEnd > since, from the ring, in order, and before them the revisions the ring holds
   * from before since that came when the pair's newest windowEnd was since or later (a revision keeps the windowEnd
   * of the record it revises: a client away when it came would never get it by windowEnd; one that left just as it
   * came may get it again, the same record under the same key). Undefined when the ring may miss some of them (since
   * is before what it covers): read the store then.
   */
  recent(pair: string, since: number): Entry<T>[] | undefined {
    // During the cold start the ring is not trusted at all: it may hold the topic's tail but not yet the store's
    // latest (raised into coveredFrom at the end), and a client resuming in between (the API listens before its
    // feeds are filled: a dashboard reconnecting after a restart) got an empty replay and never the records stored
    // while it was away.
    if (this.coldStarting) return undefined;
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
    const revisions: Entry<T>[] = [];
    for (let i = 0; i < lo; i++) if (missedRevision(ring[i]!, since)) revisions.push(ring[i]!);
    return revisions.length === 0 ? ring.slice(lo) : [...revisions, ...ring.slice(lo)];
  }

  /** The ring of `pair` as it is now (oldest first). */
  ring(pair: string): readonly Entry<T>[] {
    return this.pairs.get(pair)?.ring ?? [];
  }

  latestEntry(pair: string): Entry<T> | undefined {
    return this.pairs.get(pair)?.latest;
  }

  /**
   * Store history with windowEnd > since (pages of 1000), merged with the ring, deduped, in order; with the ring's
   * revisions from before since, as `recent`.
   */
  async fromStore(pair: string, since: number, to = Date.now() + 86_400_000): Promise<Entry<T>[]> {
    const out = new Map<string, Entry<T>>();
    let after: number | undefined;
    for (;;) {
      const page = await this.spec.history(pair, since + 1, to, { limit: 1000, after });
      for (const v of page) {
        const e = this.makeEntry(v);
        out.set(e.key, e);
      }
      // A page may be short without being the last (it never ends inside a windowEnd): read until empty.
      if (page.length === 0) break;
      after = page[page.length - 1]!.windowEnd;
    }
    for (const e of this.ring(pair)) if (e.p.windowEnd > since || missedRevision(e, since)) out.set(e.key, e);
    return [...out.values()].sort((a, b) => this.compare(a, b));
  }

  /** Calls `fn` for every new record; returns the unsubscribe function. */
  onRecord(fn: Listener<T>): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: Entry<T>): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        log.error({ err, service: 'api', channel: this.spec.channel }, 'feed listener failed');
      }
    }
  }
}

import TinyQueue from 'tinyqueue';

/**
 * A `Map` whose entries each have a time (`timeOf` of the key and value), dropped once their time has passed by
 * `dropBefore`, which costs about what it drops — not a scan of the whole map.
 *
 * Why: the monitor keeps a day or a week of keys and minutes, added about in time order, and dropped what had aged out
 * after every batch; scanning all of them each time was most of the maturity join's and the rolling quality's cost in
 * a replay. Entries set in time order stay in time order (a `Map` iterates in insertion order), so the old ones are at
 * the front. An entry older than the newest one already there is late — common, not rare: the verdicts of two pairs
 * interleave, one a minute behind the other — and also goes into a min-heap by time, from which `dropBefore` takes
 * what has aged out. Exact: nothing at or after `from` is dropped, nothing before it is kept (a key set again with a
 * value of another time is moved to where that time belongs). A time that is not a number (NaN) is refused.
 */
export class TimedMap<K, V> extends Map<K, V> {
  private readonly timeOf: (key: K, value: V) => number;
  /**
   * The late keys by time. An entry leaves only when its time has passed: one deleted meanwhile (or dropped by the
   * walk from the front) is then skipped.
   */
  private late = new TinyQueue<{ t: number; key: K }>([], (a, b) => a.t - b.t);
  private newest = Number.NEGATIVE_INFINITY;

  constructor(timeOf: (key: K, value: V) => number) {
    super();
    this.timeOf = timeOf;
  }

  override set(key: K, value: V): this {
    const t = this.timeOf(key, value);
    if (Number.isNaN(t)) throw new RangeError("TimedMap: an entry's time is NaN");
    if (this.has(key)) {
      // Its place (the front walk's order, or the heap) is that of its time: kept while the time stays the same.
      if (this.timeOf(key, this.get(key) as V) === t) return super.set(key, value);
      super.delete(key);
    }
    if (t < this.newest) this.late.push({ t, key });
    else this.newest = t;
    return super.set(key, value);
  }

  override clear(): void {
    this.late = new TinyQueue<{ t: number; key: K }>([], (a, b) => a.t - b.t);
    this.newest = Number.NEGATIVE_INFINITY;
    super.clear();
  }

  /** Drops every entry whose time is before `from`; `onDrop` is told of each (not in time order). */
  dropBefore(from: number, onDrop?: (key: K, value: V) => void): void {
    if (Number.isNaN(from)) throw new RangeError('TimedMap: dropBefore(NaN)');
    // The entries set in time order come in time order; a late one met on the way is dropped or ends the walk like the
    // others (every entry set in order after it is newer than it).
    for (const [k, v] of this) {
      if (this.timeOf(k, v) >= from) break;
      this.delete(k);
      onDrop?.(k, v);
    }
    while (this.late.length > 0 && this.late.peek()!.t < from) {
      const { key } = this.late.pop()!;
      if (!this.has(key)) continue;
      const v = this.get(key) as V;
      // Deleted or set again since with a time not passed yet: it has its own place (the front walk, or the heap).
      if (this.timeOf(key, v) >= from) continue;
      this.delete(key);
      onDrop?.(key, v);
    }
  }
}

/**
 * One value per exchange and pair, made on first use, for per-trade hot paths: consecutive trades are usually of the
 * same pair (a one-entry cache answers them with two string comparisons), and otherwise a lookup by exchange, then by
 * pair, hashes strings the trades already carry instead of building an `exchange:pair` string per trade (that alone
 * cost more than the price guard's judgement).
 */
export class ByPair<T> {
  private readonly byExchange = new Map<string, Map<string, T>>();
  private readonly make: (exchange: string, pair: string) => T;
  private lastExchange = '';
  private lastPair = '';
  private last: T | undefined;

  constructor(make: (exchange: string, pair: string) => T) {
    this.make = make;
  }

  get(exchange: string, pair: string): T {
    if (this.last !== undefined && pair === this.lastPair && exchange === this.lastExchange) return this.last;
    let byPair = this.byExchange.get(exchange);
    if (byPair === undefined) {
      byPair = new Map();
      this.byExchange.set(exchange, byPair);
    }
    let v = byPair.get(pair);
    if (v === undefined) {
      v = this.make(exchange, pair);
      byPair.set(pair, v);
    }
    this.lastExchange = exchange;
    this.lastPair = pair;
    this.last = v;
    return v;
  }

  *values(): IterableIterator<T> {
    for (const byPair of this.byExchange.values()) yield* byPair.values();
  }
}

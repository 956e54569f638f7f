import { ByPair } from '../core/by-pair.ts';
import { PriceGuard, type PriceGuardOptions } from '../core/price-guard.ts';
import { type Trade, tradeAheadOfReceipt, tradeOutOfBounds } from '../schemas/trade.ts';

/**
 * Why a trade is implausible (undefined: it is plausible): the schema's bounds, a time after its receipt (beyond
 * clock skew), then its price against the recent
 * median of its exchange and pair (`PriceGuard`). The trade service and `cryptocast candles` judge alike through it.
 * Each series name is built once per exchange and pair, not per trade (a string per trade cost more than the
 * judgement).
 */
export class TradePlausibility {
  private readonly guard: PriceGuard;
  private readonly series = new ByPair((exchange, pair) => `${exchange}:${pair}`);

  constructor(o?: PriceGuardOptions) {
    this.guard = new PriceGuard(o);
  }

  why(t: Trade): string | undefined {
    return (
      tradeOutOfBounds(t) ??
      tradeAheadOfReceipt(t) ??
      this.guard.judge(this.series.get(t.exchange, t.pair), t.price)
    );
  }
}

import type { LatePolicy } from '../candles/aggregator.ts';
import type { Logger } from '../core/log.ts';
import type { Candle } from '../schemas/candle.ts';

/**
 * The late policy a candle shows its candle service runs under, or `undefined` when it cannot tell. Under `revise` the
 * service stamps every traded candle with `revisable` (and a revision is > 0); under `dlq` never. Only a traded candle
 * the candle service emitted (`inputOffset`) tells `dlq`: a filled one, or one imported, carries neither.
 */
export function announcedLatePolicy(c: Candle): LatePolicy | undefined {
  if (c.revision > 0 || c.revisable !== undefined) return 'revise';
  if (!c.filled && c.inputOffset !== undefined) return 'dlq';
  return undefined;
}

/**
 * The monitor's late policy (`service monitor --late-policy`, CRYPTOCAST_LATE_POLICY) against the one the candle
 * service's candles show. The two are given by hand, one per service: a monitor on `dlq` behind candles on `revise`
 * keeps no first emissions, so after a restart it scores by a revised close where a monitor that never stopped judged by
 * the first; nothing said so. Now an error is logged when the candles show the other policy (again after they agreed
 * in between), and `mismatch` says whether the newest telling candle disagrees (the progress line carries it).
 * Candles that ended by `judgeFrom` are not judged: the topic still holds those of a policy changed since.
 */
export class LatePolicyCheck {
  /** The newest telling candle disagrees with the monitor's policy. */
  mismatch = false;
  private newest = Number.NEGATIVE_INFINITY;
  private readonly expected: LatePolicy;
  private readonly log: Logger;
  private readonly judgeFrom: number;

  constructor(expected: LatePolicy, log: Logger, judgeFrom = Number.NEGATIVE_INFINITY) {
    this.expected = expected;
    this.log = log;
    this.judgeFrom = judgeFrom;
  }

  onCandle(c: Candle): void {
    if (c.windowEnd <= this.judgeFrom || c.windowEnd < this.newest) return;
    const shown = announcedLatePolicy(c);
    if (shown === undefined) return;
    this.newest = c.windowEnd;
    const mismatch = shown !== this.expected;
    if (mismatch && !this.mismatch)
      this.log.error(
        { latePolicy: this.expected, candlesLatePolicy: shown, pair: c.pair, windowEnd: c.windowEnd },
        `the candle service runs --late-policy ${shown} (its candles say so), this monitor ${this.expected}: ` +
          'give both the same (the chart: market.latePolicy; compose: CRYPTOCAST_LATE_POLICY) and restart the monitor; ' +
          'until then a restarted monitor may score by another close than the one it judged by',
      );
    else if (!mismatch && this.mismatch)
      this.log.info({ latePolicy: this.expected }, 'the candle service runs the same late policy again');
    this.mismatch = mismatch;
  }
}

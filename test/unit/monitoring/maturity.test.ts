import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MaturityJoin } from '../../../src/monitoring/maturity.ts';
import { scorePrediction, unscorable } from '../../../src/monitoring/score.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { errorKey, PredictionErrorSchema } from '../../../src/schemas/prediction-error.ts';
import { candle as baseCandle, prediction as basePrediction } from '../../support/factories.ts';

const T = Date.UTC(2026, 0, 5, 12, 0);
const M = 60_000;

const prediction = (o: Partial<Prediction> & { windowEnd: number }): Prediction =>
  basePrediction({ exchange: 'kraken', pair: 'BTC/USD', predictedClose: 101, p10: 99, p90: 102, ...o });

const candle = (windowEnd: number, close: number, o: Partial<Candle> = {}): Candle =>
  baseCandle({ exchange: 'kraken', pair: 'BTC/USD', windowEnd, close, ...o });

describe('scoring one prediction (hand-checked)', () => {
  it('signed, absolute and percent error, persistence error, direction, band', () => {
    const e = scorePrediction(prediction({ windowEnd: T }), 100.5, T + 5 * M + 3_000);
    assert.deepEqual(
      [e.error, e.absError, e.persistenceAbsError, e.directionHit, e.directionTie, e.inBand, e.latenessMs],
      [0.5, 0.5, 0.5, true, false, true, 3_000],
    );
    assert.equal(e.pctError, (0.5 / 100.5) * 100);
    assert.ok(PredictionErrorSchema.safeParse(e).success);
    const down = scorePrediction(prediction({ windowEnd: T }), 98, T + 5 * M);
    assert.deepEqual([down.error, down.directionHit, down.inBand], [3, false, false]);
  });

  it('ties in direction: either move exactly zero is a tie, excluded from hits and counted', () => {
    const flatActual = scorePrediction(prediction({ windowEnd: T }), 100, T + 5 * M);
    assert.deepEqual([flatActual.directionHit, flatActual.directionTie], [null, true]);
    const flatPredicted = scorePrediction(prediction({ windowEnd: T, predictedClose: 100 }), 101, T + 5 * M);
    assert.deepEqual([flatPredicted.directionHit, flatPredicted.directionTie], [null, true]);
  });
});

describe('MaturityJoin: predictions meet the candle of their target minute', () => {
  it('exact target minute: scored when that candle closes, not before', () => {
    const j = new MaturityJoin();
    assert.deepEqual(j.onPrediction(prediction({ windowEnd: T })), []);
    for (let k = 1; k < 5; k++) assert.deepEqual(j.onCandle(candle(T + k * M, 100)), []);
    const [e] = j.onCandle(candle(T + 5 * M, 100.5));
    assert.equal(e!.status, 'scored');
    assert.equal(e!.actualClose, 100.5);
    assert.equal(j.pendingCount(), 0);
  });

  it('a prediction that arrives after its target candle is scored at once', () => {
    const j = new MaturityJoin();
    for (let k = 0; k <= 7; k++) j.onCandle(candle(T + k * M, 100 + k));
    const [e] = j.onPrediction(prediction({ windowEnd: T, createdAt: T + 7 * M }));
    assert.equal(e!.actualClose, 105);
    assert.equal(
      e!.latenessMs,
      2 * M,
      'on event time: scored when both existed (the prediction came 2 min late)',
    );
    const [onTime] = j.onPrediction(prediction({ windowEnd: T + M }));
    assert.equal(onTime!.latenessMs, 0, 'however far the candles had run ahead in this process');
  });

  it('live: scoredAt and lateness by the wall clock', () => {
    let now = T + 5 * M + 1_500;
    const j = new MaturityJoin({ now: () => now });
    j.onPrediction(prediction({ windowEnd: T }));
    const [e] = j.onCandle(candle(T + 5 * M, 100));
    assert.deepEqual([e!.scoredAt, e!.latenessMs], [now, 1_500]);
    now += 1;
  });

  it('missing target minute (a gap): unscorable with the reason once the pair’s candles pass it', () => {
    const j = new MaturityJoin();
    j.onPrediction(prediction({ windowEnd: T }));
    j.onCandle(candle(T + 4 * M, 100));
    const [e] = j.onCandle(candle(T + 6 * M, 100)); // T+5 never closed
    assert.deepEqual([e!.status, e!.reason, e!.actualClose], ['unscorable', 'no_candle_at_target', null]);
    assert.ok(PredictionErrorSchema.safeParse(e).success);
  });

  it('a pair that stops: unscorable after the timeout on the stream clock (another pair advances it)', () => {
    const j = new MaturityJoin({ timeoutMs: 10 * M });
    j.onPrediction(prediction({ windowEnd: T }));
    j.onCandle(candle(T + 3 * M, 100));
    for (let k = 4; k <= 14; k++) j.onCandle(candle(T + k * M, 3000, { pair: 'ETH/USD' }));
    assert.deepEqual(j.expire(true), [], 'T+5 + 10 min not reached yet');
    j.onCandle(candle(T + 15 * M, 3000, { pair: 'ETH/USD' }));
    const [e] = j.expire(true);
    assert.deepEqual([e!.status, e!.reason], ['unscorable', 'target_not_closed_in_time']);
  });

  it('live: the wall clock expires a prediction even when no candle comes at all', () => {
    let now = T;
    const j = new MaturityJoin({ timeoutMs: 10 * M, now: () => now });
    j.onPrediction(prediction({ windowEnd: T }));
    now = T + 14 * M;
    assert.deepEqual(j.expire(true), []);
    now = T + 15 * M;
    assert.equal(j.expire(true)[0]!.reason, 'target_not_closed_in_time');
  });

  it('two model versions for one minute: one record each; a prediction delivered twice: one record', () => {
    const j = new MaturityJoin();
    j.onPrediction(prediction({ windowEnd: T, modelVersion: 1 }));
    j.onPrediction(prediction({ windowEnd: T, modelVersion: 2, predictedClose: 99 }));
    j.onPrediction(prediction({ windowEnd: T, modelVersion: 1 }));
    const out = j.onCandle(candle(T + 5 * M, 100.5));
    assert.deepEqual(
      out.map((e) => [e.modelVersion, e.error]),
      [
        [1, 0.5],
        [2, -1.5],
      ],
    );
    assert.deepEqual(j.onPrediction(prediction({ windowEnd: T, modelVersion: 2 })), [], 'judged already');
    assert.equal(j.stats.duplicates, 2);
  });

  it("a prediction's key is its exchange, pair, windowEnd, model name and version: each one different is another prediction", () => {
    const j = new MaturityJoin();
    const base = prediction({ windowEnd: T });
    const others = [
      prediction({ windowEnd: T, modelName: 'other' }),
      prediction({ windowEnd: T, modelVersion: base.modelVersion + 1 }),
      prediction({ windowEnd: T + M, horizonMs: 4 * M, targetTs: T + 5 * M }), // the same target minute
    ];
    for (const p of [base, ...others, { ...base }]) assert.deepEqual(j.onPrediction(p), []);
    assert.equal(j.stats.duplicates, 1, 'the same key twice while waiting');
    assert.ok([base, ...others].every((p) => j.isWaiting(p)));
    const out = j.onCandle(candle(T + 5 * M, 100.5));
    assert.deepEqual(
      out.map(errorKey),
      [base, ...others].map((p) => errorKey(p)),
    );
    for (const p of [base, ...others]) assert.deepEqual(j.onPrediction({ ...p }), [], 'judged already');
    assert.equal(j.stats.duplicates, 5);
    // Another exchange's prediction of the same minute and model is its own (its series has no candle: it waits).
    assert.deepEqual(j.onPrediction({ ...base, exchange: 'other' }), []);
    assert.equal(j.stats.duplicates, 5);
    assert.equal(j.pendingCount(), 1);
  });

  it('a prediction whose verdict the store held (remember): judged before, not scored again, not a duplicate', () => {
    const j = new MaturityJoin();
    const p = prediction({ windowEnd: T });
    j.remember([scorePrediction(p, 100, T + 5 * M)]);
    j.onCandle(candle(T + 5 * M, 100));
    assert.deepEqual(j.onPrediction(p), []);
    assert.deepEqual([j.stats.judgedBefore, j.stats.duplicates, j.stats.scored], [1, 0, 0]);
    assert.deepEqual(j.onPrediction(p), [], 'delivered twice in this process');
    assert.deepEqual([j.stats.judgedBefore, j.stats.duplicates], [1, 1]);
  });

  it('revised candles do not change a close already used', () => {
    const j = new MaturityJoin();
    j.onCandle(candle(T + 5 * M, 100));
    j.onCandle(candle(T + 5 * M, 200, { revision: 1 }));
    assert.equal(j.onPrediction(prediction({ windowEnd: T }))[0]!.actualClose, 100);
  });

  it('pairs and exchanges are separate series', () => {
    const j = new MaturityJoin();
    j.onPrediction(prediction({ windowEnd: T }));
    assert.deepEqual(j.onCandle(candle(T + 5 * M, 1, { exchange: 'binance' })), []);
    assert.deepEqual(j.onCandle(candle(T + 5 * M, 1, { pair: 'ETH/USD' })), []);
    assert.equal(j.onCandle(candle(T + 5 * M, 100))[0]!.actualClose, 100);
  });
});

describe('MaturityJoin: a monitor catching up on a backlog of candles', () => {
  const D = 86_400_000;

  it('live, an hour late: a prediction whose candle is not read yet does not time out until the candles are read to the end', () => {
    const now = T + 60 * M;
    const j = new MaturityJoin({ now: () => now });
    const p = prediction({ windowEnd: T });
    assert.deepEqual(j.onPrediction(p), [], 'waits: its candle is in the backlog');
    assert.deepEqual(j.expire(false), [], 'the candles are not read to the end: nothing times out');
    const [e] = j.onCandle(candle(T + 5 * M, 100.5));
    assert.deepEqual([e!.status, e!.actualClose], ['scored', 100.5]);
    assert.deepEqual(j.expire(true), []);
  });

  it('live, the candles read to the end and still none at the target: then it times out', () => {
    const now = T + 60 * M;
    const j = new MaturityJoin({ now: () => now });
    j.onPrediction(prediction({ windowEnd: T }));
    assert.deepEqual(j.expire(false), []);
    assert.equal(j.expire(true)[0]!.reason, 'target_not_closed_in_time');
  });

  it('on the event clock a time-out is dated when the wait ran out in the stream, however late the monitor decided it', () => {
    const timeOutOf = (readToEndAt: number) => {
      const j = new MaturityJoin();
      j.onCandle(candle(T, 100));
      j.onPrediction(prediction({ windowEnd: T }));
      // The candles stop at T + 5 min for BTC (its target); ETH's go on. The monitor is behind until `readToEndAt`.
      for (let k = 1; k <= 60; k++) {
        j.onCandle(candle(T + k * M, 3000, { pair: 'ETH/USD' }));
        const out = j.expire(k >= readToEndAt);
        if (out.length > 0) return out[0]!;
      }
      return undefined;
    };
    const keptUp = timeOutOf(0);
    const lagged = timeOutOf(45);
    assert.equal(keptUp?.reason, 'target_not_closed_in_time');
    assert.equal(keptUp?.scoredAt, T + 5 * M + 15 * M, 'the target plus the 15-minute wait');
    assert.deepEqual(lagged, keptUp, 'the same record from a monitor that caught up 25 minutes later');
  });

  it('on the event clock a gap is dated by its own pair’s candles, however far another pair was read ahead', () => {
    const gapOf = (ethAhead: boolean) => {
      const j = new MaturityJoin();
      const eth = (k: number) => j.onCandle(candle(T + k * M, 3000, { pair: 'ETH/USD' }));
      if (ethAhead) for (let k = 0; k <= 120; k++) eth(k);
      j.onCandle(candle(T, 100));
      j.onPrediction(prediction({ windowEnd: T }));
      // No BTC candle at T + 5 min (its target): the one at T + 6 min proves the gap.
      const [e] = j.onCandle(candle(T + 6 * M, 100));
      // A prediction read after the gap is known, judged at once.
      const [late] = j.onPrediction(prediction({ windowEnd: T - 2 * M }));
      return [e, late];
    };
    const along = gapOf(false);
    assert.deepEqual(
      along.map((e) => [e?.reason, e?.scoredAt]),
      [
        ['no_candle_at_target', T + 6 * M],
        ['no_candle_at_target', T + 6 * M],
      ],
    );
    assert.deepEqual(gapOf(true), along, 'ETH read two hours ahead: the same records');
  });

  it("another pair's candles read two days ahead: this pair's closes and verdicts are kept a day behind its own", () => {
    const j = new MaturityJoin();
    // BTC's partition is read first, two days of it; then ETH's, from its start.
    for (let k = 0; k <= 2 * 1440; k += 10) j.onCandle(candle(T + k * M, 100));
    j.expire(true);
    const eth = (o: Partial<Prediction> = {}) => prediction({ pair: 'ETH/USD', windowEnd: T, ...o });
    assert.deepEqual(j.onPrediction(eth()), [], 'waits for its candle');
    assert.deepEqual(j.expire(false), [], 'the ETH candles are not read yet');
    j.onCandle(candle(T + 5 * M, 3000, { pair: 'ETH/USD' }));
    j.onCandle(candle(T + 6 * M, 3001, { pair: 'ETH/USD' }));
    j.expire(true);
    const [late] = j.onPrediction(eth({ windowEnd: T + M }));
    assert.deepEqual(
      [late!.status, late!.actualClose],
      ['scored', 3001],
      'a prediction read after its close finds it (kept a day behind ETH, not BTC)',
    );
    assert.deepEqual(j.onPrediction(eth()), [], 'a re-read prediction already judged: not judged again');
    assert.equal(j.stats.duplicates, 1);
    // ETH's own clock a day on: now its old closes go.
    j.onCandle(candle(T + D + 10 * M, 3100, { pair: 'ETH/USD' }));
    j.expire(true);
    assert.equal(j.onPrediction(eth({ windowEnd: T + 2 * M }))[0]!.reason, 'target_before_retention');
  });
});

describe('MaturityJoin: a candle that comes after its predictions timed out', () => {
  it('live: the timed-out prediction is scored then, superseding its unscorable verdict (the same key)', () => {
    let now = T;
    const j = new MaturityJoin({ timeoutMs: 10 * M, now: () => now });
    j.onPrediction(prediction({ windowEnd: T }));
    now = T + 16 * M;
    const [timedOut] = j.expire(true);
    assert.equal(timedOut!.reason, 'target_not_closed_in_time');
    now = T + 40 * M; // the candle stage was down; it catches up
    const [late] = j.onCandle(candle(T + 5 * M, 100.5));
    assert.deepEqual(
      [late!.status, late!.actualClose, late!.scoredAt, late!.latenessMs],
      ['scored', 100.5, T + 40 * M, 35 * M],
    );
    assert.equal(errorKey(late!), errorKey(timedOut!));
    assert.deepEqual([j.stats.scored, j.stats.unscorable, j.stats.lateScored], [1, 0, 1]);
    assert.deepEqual(j.onCandle(candle(T + 5 * M, 100.5)), [], 'once: the same candle again gives nothing');
    assert.deepEqual(j.onPrediction(prediction({ windowEnd: T })), [], 'the prediction read again: judged');
  });

  it('after a restart: a timed-out verdict from the store is scored when the re-read candles bring its close', () => {
    const j = new MaturityJoin({ timeoutMs: 10 * M, now: () => T + 60 * M });
    const p = prediction({ windowEnd: T });
    j.remember([unscorable(p, 'target_not_closed_in_time', T + 16 * M)]);
    const [late] = j.onCandle(candle(T + 5 * M, 99));
    assert.deepEqual([late!.status, late!.actualClose], ['scored', 99]);
    assert.deepEqual([j.stats.scored, j.stats.unscorable, j.stats.lateScored], [1, 0, 1]);
  });

  it('event clock: the late-scored verdict is dated at its target (when both existed), not where other pairs ran to', () => {
    for (const ahead of [20, 600]) {
      const j = new MaturityJoin({ timeoutMs: 10 * M });
      j.onPrediction(prediction({ windowEnd: T }));
      j.onCandle(candle(T + ahead * M, 3000, { pair: 'ETH/USD' }));
      assert.equal(j.expire(true)[0]!.reason, 'target_not_closed_in_time');
      const [late] = j.onCandle(candle(T + 5 * M, 100.5));
      assert.deepEqual(
        [late!.status, late!.scoredAt, late!.latenessMs],
        ['scored', T + 5 * M, 0],
        `ETH ${ahead} min ahead`,
      );
    }
  });

  it('a restart two days on: the verdicts it remembers of a pair whose candles are not read yet are kept until they are', () => {
    const now = T + 2 * 1440 * M;
    const j = new MaturityJoin({ now: () => now });
    const judged = prediction({ windowEnd: T });
    const timedOut = prediction({ windowEnd: T + M });
    j.remember([
      scorePrediction(judged, 100, T + 5 * M),
      unscorable(timedOut, 'target_not_closed_in_time', T + 21 * M),
    ]);
    j.onCandle(candle(now - 10 * M, 3000, { pair: 'ETH/USD' })); // another partition read first
    assert.deepEqual(j.expire(false), []);
    // BTC's candles re-read from a day before the crash: the remembered verdicts are still known.
    j.onCandle(candle(T + 5 * M, 100));
    const [late] = j.onCandle(candle(T + 6 * M, 101));
    assert.deepEqual([late!.status, late!.actualClose], ['scored', 101], 'the time-out revised');
    assert.deepEqual(j.onPrediction(judged), [], 'the judged prediction re-read: not judged again');
    assert.equal(j.stats.judgedBefore, 1);
  });

  it('only a timeout is revised: a gap stays a gap, a scored verdict stays; nothing past the retention', () => {
    let now = T;
    const j = new MaturityJoin({ timeoutMs: 10 * M, retentionMs: 60 * M, now: () => now });
    j.remember([
      unscorable(prediction({ windowEnd: T }), 'no_candle_at_target', T + 7 * M),
      scorePrediction(prediction({ windowEnd: T + M }), 100, T + 6 * M),
    ]);
    assert.deepEqual(j.onCandle(candle(T + 5 * M, 100)), []);
    assert.deepEqual(j.onCandle(candle(T + 6 * M, 101)), []);
    j.onPrediction(prediction({ windowEnd: T + 10 * M }));
    now = T + 40 * M;
    assert.equal(j.expire(true).length, 1, 'timed out');
    j.onCandle(candle(T + 90 * M, 100, { pair: 'BTC/USD' })); // the pair's clock 75 min past the target
    j.expire(true);
    assert.deepEqual(j.onCandle(candle(T + 15 * M, 100)), [], 'past the retention: not revised');
  });
});

describe('MaturityJoin: a restart after an outage of more than a day', () => {
  it('a stored verdict re-read after the candles backlog ran a day past it is not judged again (its record kept)', () => {
    // Crash at T + 10 min: the prediction's verdict was stored, its offset not committed yet. Restarted two days on,
    // the candles (a day before the crash to now) are read faster than the predictions.
    const now = T + 2 * 1440 * M;
    const j = new MaturityJoin({ now: () => now });
    const judged = prediction({ windowEnd: T });
    j.remember([scorePrediction(judged, 100, T + 5 * M)]);
    for (let t = T - 1440 * M; t <= now; t += 10 * M) {
      j.onCandle(candle(t, 100));
      j.expire(false);
    }
    assert.deepEqual(
      j.onPrediction(judged).map((e) => `${e.status} ${e.reason}`),
      [],
      'a second record would replace the stored one (upsert by key)',
    );
    assert.equal(j.stats.judgedBefore, 1);
  });
});

describe('MaturityJoin: closes re-read after an outage of more than a day', () => {
  // Crash at T + 10 min with a prediction (target T + 10 min) waiting; restarted two days on. The candles are re-read
  // from a day before the crash to now, ahead of the predictions, re-read from their commit (the waiting one).
  const now = T + 2 * 1440 * M;
  const waiting = prediction({ windowEnd: T + 5 * M });
  const rereadCandles = (j: MaturityJoin, predictionsReadToEnd: boolean) => {
    for (let t = T + 10 * M - 1440 * M; t <= now; t += M) {
      j.onCandle(candle(t, t === T + 10 * M ? 104 : 100));
      j.expire(true, predictionsReadToEnd);
    }
  };

  it('a prediction whose target candle was re-read is scored, not written off target_before_retention', () => {
    const j = new MaturityJoin({ now: () => now });
    rereadCandles(j, false);
    const [e] = j.onPrediction(waiting);
    assert.deepEqual([e?.status, e?.reason, e?.actualClose], ['scored', null, 104]);
    // Caught up with the predictions: the closes go a day behind the candles again.
    j.onPrediction(prediction({ windowEnd: now - 5 * M }));
    j.expire(true, true);
    const [old] = j.onPrediction(prediction({ windowEnd: T + 6 * M }));
    assert.equal(
      old?.reason,
      'target_before_retention',
      'the closes of the backlog are dropped once caught up',
    );
  });

  it('bounded: once the predictions are read to the end, a pair no longer predicted keeps a day of closes', () => {
    const j = new MaturityJoin({ now: () => now });
    rereadCandles(j, true);
    assert.equal(j.onPrediction(waiting)[0]?.reason, 'target_before_retention');
  });
});

describe('MaturityJoin: a backlog of waiting predictions', () => {
  it('15,000 predictions waiting, then their candles: each candle finds its own (time printed, not asserted)', (t) => {
    // Before, each candle walked every minute waiting in its pair (quadratic in the backlog: about 5 s for these).
    const j = new MaturityJoin();
    const n = 15_000;
    for (let i = 0; i < n; i++) j.onPrediction(prediction({ windowEnd: T + i * M }));
    assert.equal(j.pendingCount(), n);
    const started = performance.now();
    let scored = 0;
    for (let i = 0; i < n + 5; i++) scored += j.onCandle(candle(T + i * M, 100)).length;
    t.diagnostic(`${n} candles over ${n} waiting predictions: ${Math.round(performance.now() - started)} ms`);
    assert.equal(scored, n);
    assert.equal(j.pendingCount(), 0);
  });

  it('a candle closing a long gap gives its verdicts at most `max` at a time, the rest by `settle`, as unbounded', () => {
    // 300 predictions for minutes 0..299 (two models each), then one candle at the last one's target minute.
    const bounded = new MaturityJoin();
    const unbounded = new MaturityJoin();
    for (let i = 0; i < 300; i++)
      for (const modelVersion of [1, 2]) {
        const p = prediction({ windowEnd: T + i * M, modelVersion });
        bounded.onPrediction(p);
        unbounded.onPrediction(p);
      }
    const c = candle(T + 304 * M, 100);
    const all = unbounded.onCandle(c);
    assert.equal(unbounded.settling, false);
    const first = bounded.onCandle(c, 7);
    assert.equal(first.length, 7);
    assert.equal(bounded.settling, true);
    const given = [...first];
    while (bounded.settling) {
      const more = bounded.settle(50);
      assert.ok(more.length > 0 && more.length <= 50, `${more.length} given`);
      given.push(...more);
    }
    assert.deepEqual(given, all);
    assert.equal(all.length, 600);
    assert.equal(all.filter((e) => e.status === 'scored').length, 2, 'the candle’s own minute, both models');
    assert.deepEqual(
      all.map((e) => e.targetTs),
      all.map((e) => e.targetTs).toSorted((a, b) => a - b),
      'the earliest minute first',
    );
    assert.equal(bounded.pendingCount(), 0);
  });

  it('while a candle’s verdicts are held back, nothing of its pair times out and a prediction read meanwhile is judged once', () => {
    const j = new MaturityJoin({ timeoutMs: 15 * M });
    for (let i = 0; i < 20; i++) j.onPrediction(prediction({ windowEnd: T + i * M }));
    const given = j.onCandle(candle(T + 24 * M, 100), 5);
    // Far past the time-out on the stream's clock (another pair's candle): the held-back ones are the candle's to give.
    j.onCandle(candle(T + 120 * M, 100, { pair: 'ETH/USD' }));
    given.push(...j.expire(true));
    given.push(...j.onPrediction(prediction({ windowEnd: T + 10 * M })));
    while (j.settling) given.push(...j.settle(4));
    assert.equal(given.length, 20);
    assert.equal(new Set(given.map(errorKey)).size, 20);
    assert.ok(given.every((e) => e.reason !== 'target_not_closed_in_time'));
    assert.equal(j.stats.duplicates, 1);
  });
});

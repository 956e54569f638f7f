import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { figures, RollingQuality } from '../../../src/monitoring/rolling-quality.ts';
import { scorePrediction, unscorable } from '../../../src/monitoring/score.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import type { PredictionError } from '../../../src/schemas/prediction-error.ts';
import { wilson } from '../../../src/training/metrics.ts';
import { prediction } from '../../support/factories.ts';

const T = Date.UTC(2026, 0, 5, 0, 0);
const M = 60_000;

function record(
  i: number,
  minute: number,
  predicted: number,
  actual: number,
  version = 1,
  pair = 'BTC/USD',
): PredictionError {
  const windowEnd = T + minute * M;
  const p = prediction({
    exchange: 'x',
    pair,
    windowEnd,
    predictedClose: predicted,
    p10: predicted - 1,
    p90: predicted + 1,
    modelVersion: version,
    latencyMs: i,
  });
  return scorePrediction(p, actual, windowEnd + 5 * M);
}

const pick = (f: { count: number; unscorable: number; mae: number | null }) => [f.count, f.unscorable, f.mae];

/** The figures straight from the records of the window: what the per-minute sums must equal. */
function direct(records: PredictionError[], from: number, to: number) {
  const rs = records.filter((e) => e.status === 'scored' && e.targetTs > from && e.targetTs <= to);
  const n = rs.length;
  const mae = rs.reduce((a, e) => a + e.absError!, 0) / n;
  const pmae = rs.reduce((a, e) => a + e.persistenceAbsError!, 0) / n;
  const dir = rs.filter((e) => !e.directionTie);
  const hits = dir.filter((e) => e.directionHit).length;
  return {
    count: n,
    mae: n ? mae : null,
    rmse: n ? Math.sqrt(rs.reduce((a, e) => a + e.error! ** 2, 0) / n) : null,
    bias: n ? rs.reduce((a, e) => a + e.error!, 0) / n : null,
    skill: n && pmae > 0 ? 1 - mae / pmae : null,
    directionalAccuracy: dir.length ? hits / dir.length : null,
    coverage: n ? rs.filter((e) => e.inBand).length / n : null,
    ci: wilson(hits, dir.length),
  };
}

const close = (a: number | null, b: number | null) =>
  (a === null && b === null) ||
  (a !== null && b !== null && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)));

describe('rolling quality from mergeable per-minute sums', () => {
  it('hand-checked window: MAE, RMSE, bias, persistence MAE, skill, direction with its Wilson interval, coverage', () => {
    const q = new RollingQuality({ '1h': 3_600_000 });
    q.add(record(0, 0, 101, 100.5)); // err +0.5, persistence 0.5, up/up hit, in band
    q.add(record(1, 1, 99, 101)); // err −2, persistence 1, down/up miss, out of band
    q.add(record(2, 2, 101, 100)); // tie (actual flat), err +1, persistence 0, in band
    const f = q.report('BTC/USD')['1h']!;
    assert.equal(f.count, 3);
    assert.equal(f.mae, 3.5 / 3);
    assert.equal(f.rmse, Math.sqrt((0.25 + 4 + 1) / 3));
    assert.equal(f.bias, -0.5 / 3);
    assert.equal(f.persistenceMae, 1.5 / 3);
    assert.equal(f.skill, 1 - 3.5 / 1.5);
    assert.equal(f.directionalAccuracy, 0.5);
    assert.deepEqual(f.directionalCi95, wilson(1, 2));
    assert.equal(f.ties, 1);
    assert.equal(f.coverage, 2 / 3);
  });

  it('windows end at the clock given, minutes outside are excluded; model versions apart or together', () => {
    const q = new RollingQuality({ '1h': 3_600_000 });
    q.add(record(0, 0, 101, 100.5, 1));
    q.add(record(1, 100, 101, 100.5, 2));
    const end = T + 105 * M;
    assert.equal(
      figures(q.sums('BTC/USD', 3_600_000, end)).count,
      1,
      'the minute-5 record is 100 minutes old',
    );
    assert.equal(figures(q.sums('BTC/USD', 3_600_000, end, { name: 'm', version: 1 })).count, 0);
    assert.equal(figures(q.sums('BTC/USD', 2 * 3_600_000, end)).count, 2);
    assert.equal(figures(q.sums('ETH/USD', 3_600_000, end)).count, 0);
  });

  it('unscorable records are counted apart and do not enter the errors', () => {
    const q = new RollingQuality();
    const ok = record(0, 0, 101, 100.5);
    q.add(ok);
    const p = {
      ...ok,
      predictedReturnBps: 0,
      featureSet: 't',
      featureSetVersion: 1,
      createdAt: ok.windowEnd,
      latencyMs: 0,
      windowEnd: ok.windowEnd + M,
      targetTs: ok.targetTs + M,
    } as unknown as Prediction;
    q.add(unscorable(p, 'no_candle_at_target', ok.targetTs + 2 * M));
    const f = q.report('BTC/USD')['1h']!;
    assert.deepEqual([f.count, f.unscorable, f.mae], [1, 1, 0.5]);
  });

  it('a scored record supersedes an unscorable one of the same key (a timed-out prediction scored after all), never the reverse', () => {
    const q = new RollingQuality();
    const scored = record(0, 0, 101, 100.5);
    const timedOut = {
      ...scored,
      ...unscorable(scored as unknown as Prediction, 'target_not_closed_in_time', scored.targetTs),
    };
    assert.equal(q.add(timedOut), true);
    assert.deepEqual(pick(q.report('BTC/USD')['1h']!), [0, 1, null]);
    assert.equal(q.add(timedOut), false, 'the same again: nothing');
    assert.equal(q.add(scored), true, 'the revision');
    assert.deepEqual(pick(q.report('BTC/USD')['1h']!), [1, 0, 0.5]);
    assert.equal(q.add(timedOut), false, 'the timed-out verdict read again after it: stale');
    assert.equal(q.add(scored), false);
    assert.deepEqual(pick(q.report('BTC/USD')['1h']!), [1, 0, 0.5]);
    const gap = {
      ...record(1, 1, 101, 100.5),
      ...unscorable(
        record(1, 1, 101, 100.5) as unknown as Prediction,
        'no_candle_at_target',
        scored.targetTs + M,
      ),
    };
    assert.equal(q.add(gap), true);
    assert.equal(q.add(record(1, 1, 101, 100.5)), false, 'a gap is not superseded (only a time-out is)');
  });

  it('knows a record by its whole key — exchange, pair, windowEnd, model name and version — and forgets it after the longest window', () => {
    const q = new RollingQuality({ '1h': 3_600_000 });
    const a = record(0, 0, 101, 100.5);
    assert.equal(q.add(a), true);
    assert.equal(q.add({ ...a }), false, 'the same record again');
    assert.equal(q.add({ ...a, exchange: 'y' }), true, 'another exchange: another prediction');
    assert.equal(q.add({ ...a, modelVersion: 2 }), true, 'another version');
    assert.equal(q.add({ ...a, modelName: 'other' }), true, 'another model');
    assert.equal(q.add({ ...a, windowEnd: a.windowEnd + M }), true, 'another minute');
    assert.equal(q.add({ ...a, pair: 'ETH/USD' }), true, 'another pair');
    // Same minute, both exchanges: the pair's figures count both (the series is the pair and model, not the exchange).
    assert.deepEqual(
      pick(q.report('BTC/USD', a.targetTs, { name: a.modelName, version: 1 })['1h']!),
      [3, 0, 0.5],
    );
    const timedOut = {
      ...a,
      ...unscorable(a as unknown as Prediction, 'target_not_closed_in_time', a.targetTs),
    };
    const later = record(1, 120, 101, 100.5); // two hours on: the hour's window has passed the first records
    const t = { ...timedOut, exchange: 'z' };
    assert.equal(q.add(t), true);
    assert.equal(q.add(later), true);
    q.prune();
    assert.equal(q.add({ ...a }), true, 'forgotten after the longest window: added again');
    assert.equal(q.add(t), true, 'the time-out too');
    assert.equal(q.add({ ...a, exchange: 'z' }), true, 'and a time-out it still supersedes');
    assert.equal(q.add({ ...a, exchange: 'z' }), false, 'once');
  });

  it('property: every window equals a direct recomputation over random streams', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            minute: fc.integer({ min: 0, max: 3 * 1440 }),
            predicted: fc.double({ min: 95, max: 105, noNaN: true }),
            actual: fc.oneof(fc.constant(100), fc.double({ min: 95, max: 105, noNaN: true })),
            version: fc.integer({ min: 1, max: 2 }),
          }),
          { minLength: 1, maxLength: 300 },
        ),
        fc.integer({ min: 0, max: 3 * 1440 }),
        fc.constantFrom(3_600_000, 86_400_000, 7 * 86_400_000),
        (rows, endMinute, windowMs) => {
          const q = new RollingQuality();
          const all = rows.map((r, i) => record(i, r.minute, r.predicted, r.actual, r.version));
          // One verdict per prediction key: a record added again is ignored (the first one counts).
          const records = all.filter(
            (e, i) =>
              all.findIndex((x) => x.windowEnd === e.windowEnd && x.modelVersion === e.modelVersion) === i,
          );
          for (const e of all) q.add(e);
          const end = T + endMinute * M + 5 * M;
          const got = figures(q.sums('BTC/USD', windowMs, end));
          const want = direct(records, end - windowMs, end);
          assert.equal(got.count, want.count);
          for (const k of ['mae', 'rmse', 'bias', 'skill', 'directionalAccuracy', 'coverage'] as const)
            assert.ok(close(got[k], want[k]), `${k}: ${got[k]} vs ${want[k]}`);
          assert.deepEqual(got.directionalCi95, want.ci);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: asked again after more records (or after changing what it returned), a window is recomputed, never stale', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            minute: fc.integer({ min: 0, max: 2 * 1440 }),
            predicted: fc.double({ min: 95, max: 105, noNaN: true }),
            actual: fc.double({ min: 95, max: 105, noNaN: true }),
          }),
          { minLength: 2, maxLength: 120 },
        ),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 * 1440 }), fc.constantFrom(3_600_000, 86_400_000)), {
          minLength: 1,
          maxLength: 4,
        }),
        (rows, chunks, asks) => {
          const q = new RollingQuality();
          // Distinct minutes: one verdict per prediction key.
          const records = [...new Map(rows.map((r) => [r.minute, r])).values()].map((r, i) =>
            record(i, r.minute, r.predicted, r.actual),
          );
          const size = Math.ceil(records.length / chunks);
          for (let c = 0; c < records.length; c += size) {
            for (const e of records.slice(c, c + size)) q.add(e);
            const added = records.slice(0, c + size);
            for (const [endMinute, windowMs] of asks)
              for (let again = 0; again < 2; again++) {
                const end = T + endMinute * M + 5 * M;
                const s = q.sums('BTC/USD', windowMs, end);
                const want = direct(added, end - windowMs, end);
                assert.equal(s.n, want.count);
                assert.ok(close(figures(s).mae, want.mae), `mae ${figures(s).mae} vs ${want.mae}`);
                s.n += 1_000; // what the caller does with its copy is its own
              }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: with more minutes than it looks at one by one, windows stay exact through late records, prunes and asks at any end', () => {
    const DAY = 86_400_000;
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 2 * 1440 }), { minLength: 200, maxLength: 500 }),
        fc.double({ min: 95, max: 105, noNaN: true }),
        fc.array(
          fc.record({
            added: fc.integer({ min: 1, max: 40 }),
            prune: fc.option(fc.integer({ min: 0, max: 3 * 1440 }), { nil: undefined, freq: 4 }),
            // Ends near hour boundaries most often: where a whole hour enters or leaves a window.
            asks: fc.array(
              fc.tuple(
                fc.oneof(
                  fc
                    .tuple(fc.integer({ min: 0, max: 72 }), fc.integer({ min: -2, max: 2 }))
                    .map(([h, d]) => h * 60 + d),
                  fc.integer({ min: 0, max: 3 * 1440 }),
                ),
                fc.constantFrom(3_600_000, 2 * 3_600_000, DAY),
              ),
              { minLength: 1, maxLength: 6 },
            ),
          }),
          { minLength: 1, maxLength: 10 },
        ),
        (minutes, level, steps) => {
          const q = new RollingQuality({ '1h': 3_600_000, '24h': DAY });
          // Added out of time order (late verdicts land in hours already summed); 130 first, more than are looked at
          // one by one.
          const records = minutes.map((m, i) => record(i, m, level + ((i * 7) % 11) - 5, level));
          let next = 130;
          for (const e of records.slice(0, next)) q.add(e);
          const pruned = new Set<PredictionError>();
          for (const step of steps) {
            if (step.prune !== undefined) {
              const end = T + step.prune * M;
              q.prune(end);
              // A prune drops the minutes before end − 24 h of what was added so far (a record added later stays).
              for (const e of records.slice(0, next))
                if (Math.floor(e.targetTs / M) * M < end - DAY) pruned.add(e);
            }
            const kept = records.slice(0, next).filter((e) => !pruned.has(e));
            for (const [endMinute, windowMs] of step.asks) {
              const end = T + endMinute * M + 30_000;
              const got = figures(q.sums('BTC/USD', windowMs, end));
              const want = direct(kept, end - windowMs, end);
              assert.equal(got.count, want.count, `count at ${endMinute} over ${windowMs}`);
              assert.ok(close(got.mae, want.mae), `mae ${got.mae} vs ${want.mae}`);
              assert.ok(close(got.coverage, want.coverage));
            }
            for (const e of records.slice(next, next + step.added)) q.add(e);
            next = Math.min(records.length, next + step.added);
          }
        },
      ),
      // No shrinking: a failing case is hundreds of records, and shrinking one took minutes.
      { numRuns: 150, endOnFailure: true },
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Evaluation, Scorecard } from '../../../src/training/evaluation.ts';
import { DEFAULT_GATE, decide, type GatePolicy } from '../../../src/training/gate.ts';

/** A pair's scorecard with only what the gate reads: significantly better than persistence, the best baseline. */
function card(o: Partial<Scorecard> = {}): Scorecard {
  return {
    skill: 0.02,
    dm_pvalue: 0.001,
    dm_stat: -3.3,
    dm_lag: 6,
    best_baseline: 'persistence',
    vs_best_baseline: { skill: 0.02, dm_stat: -3.3, dm_pvalue: 0.001, dm_lag: 6 },
    mae_model: 10,
    mae_champion: null,
    vs_champion: null,
    intervals: band(0.8, 30),
    intervals_baseline: band(0.85, 32),
    ...o,
  } as Scorecard;
}

function band(coverage: number, intervalScore: number): Scorecard['intervals'] {
  return {
    n: 100,
    coverage,
    below: (1 - coverage) / 2,
    above: (1 - coverage) / 2,
    mean_width_bps: 20,
    pinball_p10: 1,
    pinball_p90: 1,
    interval_score: intervalScore,
    crps: intervalScore / 4,
  };
}

const evaluation = (perPair: Record<string, Scorecard>) => ({ per_pair: perPair }) as unknown as Evaluation;

const twoPairs = (btc: Partial<Scorecard> = {}, eth: Partial<Scorecard> = {}) =>
  evaluation({ 'BTC/USDT': card(btc), 'ETH/USDT': card(eth) });

describe('promotion gate', () => {
  it('promotes a significant improvement over persistence on every pair (no champion yet)', () => {
    const d = decide(twoPairs(), DEFAULT_GATE, undefined);
    assert.equal(d.promoted, true);
    assert.equal(d.reasons.filter((r) => r.startsWith('pass: BTC/USDT vs persistence')).length, 1);
    assert.equal(d.reasons.filter((r) => r.startsWith('pass: ETH/USDT vs persistence')).length, 1);
    assert.ok(d.reasons.includes('pass: there is no champion yet'));
    assert.ok(d.reasons.every((r) => r.startsWith('pass: ')));
  });

  it('never promotes a model worse than persistence on one pair, whatever alpha and minSkill', () => {
    const worse = twoPairs({}, { skill: -0.01, dm_pvalue: 1e-9 }); // ETH significantly *worse*
    const policies: GatePolicy[] = [
      DEFAULT_GATE,
      { alpha: 1, minSkill: 0, championMargin: 0 },
      { alpha: 1, minSkill: -1, championMargin: 0 },
      { alpha: 0.5, minSkill: -0.5, championMargin: -1 },
    ];
    for (const policy of policies) {
      const d = decide(worse, policy, undefined);
      assert.equal(d.promoted, false, JSON.stringify(policy));
      assert.ok(d.reasons.some((r) => r.startsWith('FAIL: ETH/USDT vs persistence')));
      assert.ok(d.reasons.some((r) => r.startsWith('pass: BTC/USDT vs persistence')));
    }
    // A tie with persistence (skill exactly 0) is not an improvement either.
    assert.equal(
      decide(twoPairs({ skill: 0 }), { alpha: 1, minSkill: -1, championMargin: 0 }, undefined).promoted,
      false,
    );
  });

  it('refuses a model trained for a pair it was never tested on (no out-of-sample rows)', () => {
    const pairs = ['BTC/USDT', 'ETH/USDT', 'SOL/USDT'];
    const d = decide(twoPairs(), DEFAULT_GATE, undefined, pairs);
    assert.equal(d.promoted, false);
    assert.deepEqual(
      d.reasons.filter((r) => r.startsWith('FAIL')),
      ['FAIL: SOL/USDT: no out-of-sample rows, so never tested — yet the model would serve it'],
    );
    assert.equal(decide(twoPairs(), DEFAULT_GATE, undefined, pairs.slice(0, 2)).promoted, true);
  });

  it('refuses an improvement that is not significant, or smaller than minSkill', () => {
    const notSignificant = decide(twoPairs({ dm_pvalue: 0.2 }), DEFAULT_GATE, undefined);
    assert.equal(notSignificant.promoted, false);
    assert.ok(notSignificant.reasons.some((r) => /^FAIL: BTC\/USDT vs persistence.*DM p 0\.2000/.test(r)));
    assert.equal(decide(twoPairs({ dm_pvalue: null }), DEFAULT_GATE, undefined).promoted, false);
    assert.equal(
      decide(twoPairs({ dm_pvalue: 0.2 }), { ...DEFAULT_GATE, alpha: 0.25 }, undefined).promoted,
      true,
    );
    const small = decide(twoPairs({ skill: 0.02 }), { ...DEFAULT_GATE, minSkill: 0.05 }, undefined);
    assert.equal(small.promoted, false);
    assert.ok(
      small.reasons.some((r) => /^FAIL: BTC\/USDT vs persistence: skill 2\.000% \(need > 5\.000%\)/.test(r)),
    );
  });

  it('a best baseline other than persistence must be beaten too', () => {
    const linearWins = {
      best_baseline: 'linear' as const,
      vs_best_baseline: { skill: -0.01, dm_stat: 2, dm_pvalue: 0.01, dm_lag: 6 },
    };
    const d = decide(twoPairs({}, linearWins), DEFAULT_GATE, undefined);
    assert.equal(d.promoted, false);
    assert.ok(d.reasons.some((r) => r.startsWith('FAIL: ETH/USDT vs the best baseline (linear)')));
    // Better than linear but not significantly: still refused.
    const notSig = {
      best_baseline: 'drift' as const,
      vs_best_baseline: { skill: 0.01, dm_stat: -1, dm_pvalue: 0.3, dm_lag: 6 },
    };
    assert.equal(decide(twoPairs(notSig), DEFAULT_GATE, undefined).promoted, false);
    // Significantly better than linear: passes, and the reason says so.
    const beaten = {
      best_baseline: 'linear' as const,
      vs_best_baseline: { skill: 0.01, dm_stat: -3, dm_pvalue: 0.002, dm_lag: 6 },
    };
    const ok = decide(twoPairs({}, beaten), DEFAULT_GATE, undefined);
    assert.equal(ok.promoted, true);
    assert.ok(ok.reasons.some((r) => r.startsWith('pass: ETH/USDT vs the best baseline (linear)')));
    // When persistence is the best baseline there is no separate check.
    assert.ok(!ok.reasons.some((r) => r.includes('BTC/USDT vs the best baseline')));
    // --gate-min-skill holds against the best baseline as against persistence: 1 % over linear is not 2 %.
    const strict = decide(twoPairs({}, beaten), { ...DEFAULT_GATE, minSkill: 0.02 }, undefined);
    assert.equal(strict.promoted, false);
    assert.ok(
      strict.reasons.some((r) =>
        /^FAIL: ETH\/USDT vs the best baseline \(linear\): skill 1\.000% \(need > 2\.000%\)/.test(r),
      ),
      strict.reasons.join('\n'),
    );
  });

  it('against a champion of another configuration: MAE above it is refused, equal or below passes', () => {
    const champion = { version: 3, sameConfig: false };
    const above = decide(twoPairs({ mae_model: 10.001, mae_champion: 10 }), DEFAULT_GATE, champion);
    assert.equal(above.promoted, false);
    assert.ok(
      above.reasons.some((r) =>
        /^FAIL: BTC\/USDT vs champion v3 refitted on the same folds: MAE 10\.0010 vs 10\.0000/.test(r),
      ),
    );
    const equal = decide(
      twoPairs({ mae_model: 10, mae_champion: 10 }, { mae_model: 5, mae_champion: 6 }),
      DEFAULT_GATE,
      champion,
    );
    assert.equal(equal.promoted, true);
    assert.equal(equal.reasons.filter((r) => /^pass: .* vs champion v3/.test(r)).length, 2);
    // A margin asks for a real improvement: 10 ≤ 10·(1 − 0.01) is false.
    assert.equal(
      decide(
        twoPairs({ mae_model: 10, mae_champion: 10 }),
        { ...DEFAULT_GATE, championMargin: 0.01 },
        champion,
      ).promoted,
      false,
    );
    // A champion that could not be refitted on these folds cannot be compared: refused.
    const unknown = decide(twoPairs({ mae_champion: null }), DEFAULT_GATE, champion);
    assert.equal(unknown.promoted, false);
    assert.ok(
      unknown.reasons.some((r) => /^FAIL: BTC\/USDT: the champion \(v3\) could not be refitted/.test(r)),
    );
  });

  it('a refit of the champion’s own configuration passes without the champion comparison', () => {
    const d = decide(twoPairs({ mae_model: 11, mae_champion: 10 }), DEFAULT_GATE, {
      version: 7,
      sameConfig: true,
    });
    assert.equal(d.promoted, true);
    assert.ok(d.reasons.some((r) => r.startsWith('pass: same configuration as champion v7')));
    assert.ok(!d.reasons.some((r) => r.includes('refitted on the same folds: MAE')));
    // It still has to beat persistence.
    assert.equal(
      decide(twoPairs({ skill: -0.1 }), DEFAULT_GATE, { version: 7, sameConfig: true }).promoted,
      false,
    );
  });

  it('a champion whose card cannot be read is not compared: the other rules decide alone, and the reason says so', () => {
    const unreadable = { version: 4, sameConfig: false, unreadable: 'card.json is missing' };
    const d = decide(twoPairs(), DEFAULT_GATE, unreadable);
    assert.equal(d.promoted, true);
    assert.ok(d.reasons.some((r) => /^pass: champion v4 cannot be read \(card\.json is missing\)/.test(r)));
    assert.ok(!d.reasons.some((r) => /could not be refitted/.test(r)));
    // Not a way around the other rules: worse than persistence is still refused.
    assert.equal(decide(twoPairs({ skill: -0.01 }), DEFAULT_GATE, unreadable).promoted, false);
  });

  it('refuses when the champion is not comparable (another horizon, target, feature sets or pairs)', () => {
    const d = decide(twoPairs({}), DEFAULT_GATE, {
      version: 4,
      sameConfig: false,
      incomparable: 'it predicts 5 minutes ahead, this model 15',
    });
    assert.equal(d.promoted, false);
    assert.ok(
      d.reasons.some((r) => /^FAIL: not comparable with champion v4: it predicts 5 minutes ahead/.test(r)),
    );
    assert.ok(!d.reasons.some((r) => r.includes('refitted on the same folds')));
  });

  it('refuses an evaluation without pairs, and gives one reason per check', () => {
    const none = decide(evaluation({}), DEFAULT_GATE, undefined);
    assert.equal(none.promoted, false);
    assert.ok(none.reasons.includes('FAIL: no pair was evaluated'));
    // 2 pairs × (persistence + best baseline linear + band score + band coverage + champion) = 10 checks.
    const beaten = {
      best_baseline: 'linear' as const,
      vs_best_baseline: { skill: 0.01, dm_stat: -3, dm_pvalue: 0.002, dm_lag: 6 },
    };
    const all = decide(
      twoPairs({ ...beaten, mae_champion: 11 }, { ...beaten, mae_champion: 12 }),
      DEFAULT_GATE,
      { version: 1, sameConfig: false },
    );
    assert.equal(all.promoted, true);
    assert.equal(all.reasons.length, 10);
    for (const pair of ['BTC/USDT', 'ETH/USDT'])
      for (const what of [
        'vs persistence',
        'vs the best baseline (linear)',
        'band vs persistence ± realised volatility',
        'p10–p90 coverage',
        'vs champion v1',
      ])
        assert.ok(
          all.reasons.some((r) => r.startsWith(`pass: ${pair} ${what}`)),
          `${pair} ${what}`,
        );
  });
});

describe('promotion gate: the band (rules 4 and 5)', () => {
  it('refuses a band whose interval score is worse than persistence ± realised volatility', () => {
    const d = decide(twoPairs({}, { intervals: band(0.8, 33) }), DEFAULT_GATE, undefined);
    assert.equal(d.promoted, false);
    assert.ok(
      d.reasons.some((r) => r.startsWith('FAIL: ETH/USDT band vs persistence ± realised volatility')),
    );
    assert.ok(
      d.reasons.some((r) => r.startsWith('pass: BTC/USDT band vs persistence ± realised volatility')),
    );
    // A margin asks for a real improvement: 30 vs 32 is 6.25 % better, not 10 %.
    const strict = decide(twoPairs(), { ...DEFAULT_GATE, intervalMargin: 0.1 }, undefined);
    assert.equal(strict.promoted, false);
    assert.ok(strict.reasons.some((r) => /FAIL: BTC\/USDT band .* \(need ≤ ×0\.900\)/.test(r)));
  });

  it('checks each pair’s coverage on its own: 72 % and 88 % (80 % pooled) fail both pairs', () => {
    const d = decide(
      twoPairs({ intervals: band(0.72, 30) }, { intervals: band(0.88, 30) }),
      DEFAULT_GATE,
      undefined,
    );
    assert.equal(d.promoted, false);
    assert.ok(d.reasons.includes('FAIL: BTC/USDT p10–p90 coverage 72.0% (need 80% ± 5.0)'));
    assert.ok(d.reasons.includes('FAIL: ETH/USDT p10–p90 coverage 88.0% (need 80% ± 5.0)'));
  });

  it('refuses a miscalibrated band (coverage outside 80 % ± the tolerance), unless the rule is off', () => {
    const wide = twoPairs({ intervals: band(0.86, 30) });
    const d = decide(wide, DEFAULT_GATE, undefined);
    assert.equal(d.promoted, false);
    assert.ok(d.reasons.includes('FAIL: BTC/USDT p10–p90 coverage 86.0% (need 80% ± 5.0)'));
    assert.equal(decide(wide, { ...DEFAULT_GATE, coverageTolerance: 0.07 }, undefined).promoted, true);
    assert.equal(decide(wide, { ...DEFAULT_GATE, coverageTolerance: 1 }, undefined).promoted, true);
    // A scorecard without interval scores cannot pass rule 4.
    assert.equal(
      decide(twoPairs({ intervals: undefined as never }), DEFAULT_GATE, undefined).promoted,
      false,
    );
  });
});

describe('promotion gate: NaN metrics and settings fail closed', () => {
  it('a NaN anywhere a rule reads (a model that output NaN, a band over no rows) is refused, never passed', () => {
    const nan = Number.NaN;
    const champion = { version: 3, sameConfig: false };
    for (const bad of [
      { skill: nan },
      { dm_pvalue: nan },
      { best_baseline: 'drift', vs_best_baseline: { skill: nan, dm_stat: nan, dm_pvalue: nan, dm_lag: 6 } },
      { mae_model: nan, mae_champion: 10 },
      { mae_champion: nan },
      { intervals: band(nan, 30) },
      { intervals: band(0.8, nan) },
      { intervals_baseline: band(0.8, nan) },
    ] as Partial<Scorecard>[]) {
      const d = decide(twoPairs({ mae_champion: 10, ...bad }, { mae_champion: 10 }), DEFAULT_GATE, champion);
      assert.equal(d.promoted, false, JSON.stringify(bad));
    }
    // The same scorecards without the NaN pass: the refusals above are the NaN's.
    const clean = twoPairs({ mae_champion: 10 }, { mae_champion: 10 });
    assert.equal(decide(clean, DEFAULT_GATE, champion).promoted, true);
  });

  it('a NaN setting refuses rather than turns its rule off (a library caller’s; the CLI refuses it as read)', () => {
    const miscalibrated = twoPairs({ intervals: band(0.6, 30) });
    for (const policy of [
      { ...DEFAULT_GATE, coverageTolerance: Number.NaN },
      { ...DEFAULT_GATE, intervalMargin: Number.NaN },
      { ...DEFAULT_GATE, alpha: Number.NaN },
      { ...DEFAULT_GATE, minSkill: Number.NaN },
    ])
      assert.equal(decide(miscalibrated, policy, undefined).promoted, false, JSON.stringify(policy));
    const vsChampion = twoPairs({ mae_champion: 10 }, { mae_champion: 10 });
    const champion = { version: 3, sameConfig: false };
    assert.equal(decide(vsChampion, DEFAULT_GATE, champion).promoted, true);
    assert.equal(
      decide(vsChampion, { ...DEFAULT_GATE, championMargin: Number.NaN }, champion).promoted,
      false,
    );
  });
});

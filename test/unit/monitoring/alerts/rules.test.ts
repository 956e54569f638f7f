import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { type CryptocastError, ERR } from '../../../../src/core/errors.ts';
import { AlertEngine, evaluable, observe } from '../../../../src/monitoring/alerts/engine.ts';
import { defaultRules, loadRules, RuleSchema } from '../../../../src/monitoring/alerts/rules.ts';
import { RollingQuality } from '../../../../src/monitoring/rolling-quality.ts';
import { scorePrediction } from '../../../../src/monitoring/score.ts';
import type { Prediction } from '../../../../src/schemas/prediction.ts';
import { scratchDir } from '../../../support/scratch.ts';

const file = (name: string, text: string) => {
  const p = join(scratchDir('cc-rules-'), name);
  writeFileSync(p, text);
  return p;
};
const configError = (pattern: RegExp) => (e: CryptocastError) => {
  assert.equal(e.code, ERR.CONFIG.code);
  assert.match(e.message, pattern);
  return true;
};

describe('alert rules files', () => {
  it('YAML and JSON files with every kind load; durations in words or seconds', () => {
    const rules = loadRules(
      file(
        'rules.yaml',
        `rules:
  - { name: skill, kind: skill_below, window: 24h, threshold: -0.001, for: 15m }
  - { name: mae, kind: mae_above, window: 1h, threshold: { BTC/USD: 60, default: 5 } }
  - { name: cov, kind: coverage_outside, window: 7d, low: 0.75, high: 0.85 }
  - { name: candles, kind: no_candles, minutes: 5, resolveAfter: 30 }
  - { name: trades, kind: no_trades, minutes: 30, pairs: [BTC/USD] }
  - { name: stale, kind: feature_staleness, minutes: 3 }
  - { name: lag, kind: consumer_lag, records: 5000 }
  - { name: old, kind: champion_age, hours: 48, severity: critical }
  - { name: dlq, kind: dead_letters, perMinute: 0 }
`,
      ),
    );
    assert.equal(rules.length, 9);
    assert.equal(rules[0]!.for, 15 * 60_000);
    assert.equal(rules[3]!.resolveAfter, 30_000);
    const json = loadRules(
      file('rules.json', JSON.stringify({ rules: [{ name: 'x', kind: 'champion_age', hours: 1 }] })),
    );
    assert.equal(json[0]!.repeatEvery, 3_600_000);
    assert.equal(defaultRules().length, 9);
  });

  it('invalid files fail at start with the line, the column and the fix (CC_ERR_CONFIG)', () => {
    assert.throws(
      () => loadRules(file('a.yaml', 'rules:\n  - name: x\n    kind: nope\n')),
      configError(/line 3, column 11 \(rules\.0\.kind\): kind must be one of skill_below, mae_above/),
    );
    assert.throws(
      () => loadRules(file('b.yaml', 'rules:\n  - name: x\n    kind: no_candles\n    minutes: -1\n')),
      configError(/line 4, column 14 \(rules\.0\.minutes\)/),
    );
    assert.throws(
      () =>
        loadRules(
          file('c.yaml', 'rules:\n  - name: x\n    kind: no_candles\n    minutes: 5\n    for: soon\n'),
        ),
      configError(/line 5.*not a duration/),
    );
    assert.throws(
      () => loadRules(file('d.yaml', 'rules: [\n')),
      configError(/d\.yaml line \d+, column \d+: not valid YAML\/JSON/),
    );
    assert.throws(
      () => loadRules(file('e.yaml', 'rules:\n  - { name: x, kind: no_candles, minutes: 1, colour: red }\n')),
      configError(/unknown setting colour/),
    );
    assert.throws(
      () =>
        loadRules(
          file(
            'f.yaml',
            'rules:\n  - { name: x, kind: no_candles, minutes: 1 }\n  - { name: x, kind: no_trades, minutes: 1 }\n',
          ),
        ),
      configError(/line 3.*"x" used twice/),
    );
    assert.throws(
      () =>
        loadRules(
          file(
            'g.yaml',
            'rules:\n  - { name: x, kind: coverage_outside, window: 1h, low: 0.9, high: 0.7 }\n',
          ),
        ),
      configError(/low must be below high/),
    );
    assert.throws(() => loadRules('/nonexistent/rules.yaml'), configError(/cannot read it \(ENOENT\)/));
  });
});

/** The i-th of a run of BTC/USD predictions made at 1-minute intervals from T, 5 minutes ahead, from a close of 100. */
const T = Date.UTC(2026, 0, 5);
const M = 60_000;
const prediction = (i: number, predictedClose: number) =>
  ({
    v: 1,
    exchange: 'x',
    pair: 'BTC/USD',
    windowEnd: T + i * M,
    horizonMs: 5 * M,
    targetTs: T + (i + 5) * M,
    close: 100,
    predictedReturnBps: 0,
    predictedClose,
    p10: 99,
    p90: 103,
    modelName: 'm',
    modelVersion: 1,
    featureSet: 't',
    featureSetVersion: 1,
    createdAt: T + i * M,
    latencyMs: 0,
  }) as Prediction;

describe('rule conditions on the monitor’s signals', () => {
  const quality = () => {
    const q = new RollingQuality();
    for (let i = 0; i < 50; i++) {
      const p = prediction(i, 101);
      q.add(scorePrediction(p, 99.5, p.targetTs)); // always worse than persistence, outside the band
    }
    return q;
  };
  const signals = (o: Partial<Parameters<typeof observe>[1]> = {}) => ({
    now: T + 60 * M,
    live: true,
    quality: quality(),
    lastCandle: new Map([['BTC/USD', T + 59 * M]]),
    lastTradeCandle: new Map([['BTC/USD', T + 20 * M]]),
    lastFeature: new Map([['BTC/USD', T + 59 * M]]),
    candlesCaughtUp: true,
    consumerLag: new Map([['trades/candles', 12_000]]),
    championCreatedAt: T - 100 * 3_600_000,
    deadLettersLastMinute: 3,
    ...o,
  });
  const r = (x: object) => RuleSchema.parse({ name: 'r', ...x });

  it('quality rules per pair, only with enough predictions', () => {
    const [skill] = observe(r({ kind: 'skill_below', window: '1h', minCount: 30 }), signals());
    assert.equal(skill!.active, true);
    assert.match(skill!.message, /worse than persistence/);
    assert.equal(
      observe(r({ kind: 'skill_below', window: '1h', minCount: 100 }), signals())[0]!.active,
      false,
    );
    assert.equal(
      observe(r({ kind: 'mae_above', window: '1h', threshold: { 'BTC/USD': 1 } }), signals())[0]!.active,
      true,
    );
    assert.equal(
      observe(r({ kind: 'coverage_outside', window: '1h', low: 0.7, high: 0.9, minCount: 10 }), signals())[0]!
        .active,
      true,
    );
  });

  it('staleness rules per pair, live only; system rules once', () => {
    assert.equal(observe(r({ kind: 'no_candles', minutes: 5 }), signals())[0]!.active, false);
    assert.equal(observe(r({ kind: 'no_trades', minutes: 30 }), signals())[0]!.active, true);
    assert.deepEqual(observe(r({ kind: 'no_trades', minutes: 30 }), signals({ live: false })), []);
    assert.equal(observe(r({ kind: 'consumer_lag', records: 10_000 }), signals())[0]!.active, true);
    assert.equal(observe(r({ kind: 'champion_age', hours: 72 }), signals())[0]!.active, true);
    assert.equal(observe(r({ kind: 'dead_letters', perMinute: 5 }), signals())[0]!.active, false);
  });

  it('champion_age is wall-clock: not evaluated on a replay, whatever period the replay is of', () => {
    const rule = r({ kind: 'champion_age', hours: 360 });
    const trained = T - 100 * 3_600_000;
    // Live, 20 days after training: fires.
    const live = observe(rule, signals({ now: trained + 20 * 24 * 3_600_000 }));
    assert.equal(live[0]!.active, true);
    // A replay whose event clock is 20 days after training (data recorded since), or a month before it: no
    // observation, and the rule counts as not evaluated (its alerts left as they are, none raised).
    for (const now of [trained + 20 * 24 * 3_600_000, trained - 30 * 24 * 3_600_000]) {
      const replay = signals({ live: false, now });
      assert.deepEqual(observe(rule, replay), [], `event clock ${new Date(now).toISOString()}`);
      assert.equal(evaluable(rule, replay), false);
    }
  });
});

describe('the shipped quality rules: silent on what a good model does, firing on a worse one', () => {
  /** `count` verdicts ending at the last minute, each with |model error| = (1 + worse) × |persistence error|. */
  const quality = (count: number, worse: number) => {
    const q = new RollingQuality();
    for (let i = 0; i < count; i++) {
      const p = prediction(i, 100 - worse);
      q.add(scorePrediction(p, 101, p.targetTs)); // persistence misses by 1, the model by 1 + worse
    }
    return q;
  };
  const active = (name: string, count: number, worse: number) => {
    const rule = defaultRules().find((x) => x.name === name)!;
    const q = quality(count, worse);
    const [o] = observe(rule, { now: q.clock, live: true, quality: q } as Parameters<typeof observe>[1]);
    return o!.active;
  };

  it('model-worse-than-persistence: a day at −1.7 % (the worst day of 14 months walked forward) is not an alert', () => {
    assert.equal(active('model-worse-than-persistence', 1440, 0.017), false);
    assert.equal(active('model-worse-than-persistence', 1440, 0.025), true);
    // Half a day of verdicts at least: a few hours are too noisy to tell.
    assert.equal(active('model-worse-than-persistence', 700, 0.05), false);
    assert.equal(active('model-worse-than-persistence', 720, 0.05), true);
  });

  it('model-broken: an hour at −26 % (the worst hour of 14 months) is not an alert; −35 % is', () => {
    assert.equal(active('model-broken', 60, 0.26), false);
    assert.equal(active('model-broken', 60, 0.35), true);
    assert.equal(active('model-broken', 25, 0.9), false);
  });

  it('interval-miscalibrated: half a day of verdicts before judging the band (here every close inside it)', () => {
    assert.equal(active('interval-miscalibrated', 700, 0), false);
    assert.equal(active('interval-miscalibrated', 720, 0), true);
  });
});

describe('a no-candles alert taken back at a restart, while the backlog of candles is re-read', () => {
  it('is neither resolved nor fired again while the rule cannot be evaluated (the candles are not read to the end)', () => {
    const rule = RuleSchema.parse({
      name: 'no-candles',
      kind: 'no_candles',
      minutes: 5,
      severity: 'critical',
    });
    const engine = new AlertEngine([rule], undefined, pino({ level: 'silent' }));
    const sent: string[] = [];
    engine.onNotification = (n) => sent.push(`${n.status} ${n.key}#${n.repeat}`);
    // The monitor went down while BTC had no candles for an hour; it comes back to a day of candles to re-read.
    const restartedAt = T + 24 * 60 * M;
    engine.restore(
      [
        {
          status: 'firing',
          rule: 'no-candles',
          kind: 'no_candles',
          severity: 'critical',
          key: 'BTC/USD',
          value: 60,
          message: 'BTC/USD: no candle for 60.0 min (limit 5 min)',
          startsAt: restartedAt - 60 * M,
          at: restartedAt - 5 * M, // its last reminder: the next is due in an hour
          repeat: 0,
        },
      ],
      restartedAt,
    );
    const evaluate = (now: number, lastCandle: number, candlesCaughtUp: boolean) =>
      engine.evaluate({
        now,
        live: true,
        quality: new RollingQuality(),
        lastCandle: new Map([['BTC/USD', lastCandle]]),
        lastTradeCandle: new Map([['BTC/USD', lastCandle]]),
        lastFeature: new Map(),
        candlesCaughtUp,
        consumerLag: new Map(),
        championCreatedAt: undefined,
        deadLettersLastMinute: 0,
      });
    // Ten minutes of re-reading the day (past the rule's resolveAfter of 5 minutes); the candles still stopped.
    for (let t = 0; t <= 10 * M; t += 15_000)
      evaluate(restartedAt + t, restartedAt - 24 * 60 * M + (t / (10 * M)) * 23 * 60 * M, false);
    evaluate(restartedAt + 10 * M + 15_000, restartedAt - 60 * M, true);
    assert.deepEqual(sent, [], 'still firing: no resolved, and no new firing#0');
    assert.deepEqual(
      engine.active().map((a) => `${a.rule} ${a.key}`),
      ['no-candles BTC/USD'],
    );
    // The candles come back: it resolves once clear for resolveAfter.
    for (let t = 11 * M; t <= 17 * M; t += 15_000) evaluate(restartedAt + t, restartedAt + t, true);
    assert.deepEqual(sent, ['resolved BTC/USD#0']);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyShrinkage, Shrinkage, SWITCH_GRID } from '../../../src/inference/shrinkage.ts';

describe('Shrinkage toward persistence', () => {
  it('publishes the model as it is until an outcome has matured', () => {
    assert.equal(new Shrinkage().lambda('BTC/USDT'), 1);
  });

  it('picks the λ of the grid with the smallest recent absolute error (hand-computed)', () => {
    const g = new Shrinkage({ grid: [0, 0.5, 1], window: 3 });
    // Predicted 4, actual 2: errors |0 − 2| = 2, |2 − 2| = 0, |4 − 2| = 2 → λ 0.5.
    g.update('K', 4, 2);
    assert.equal(g.lambda('K'), 0.5);
    // Predicted 2, actual 2: errors 2, 1, 0 → sums 4, 1, 2 → still 0.5.
    g.update('K', 2, 2);
    assert.equal(g.lambda('K'), 0.5);
    // Predicted 1, actual −3: errors 3, 3.5, 4 → sums 7, 4.5, 6 → 0.5.
    g.update('K', 1, -3);
    assert.equal(g.lambda('K'), 0.5);
    // Predicted −4, actual −4: the first outcome leaves the window (window 3). Errors 4, 2, 0 →
    // sums (2 + 3 + 4) = 9, (1 + 3.5 + 2) = 6.5, (0 + 4 + 0) = 4 → λ 1.
    g.update('K', -4, -4);
    assert.equal(g.lambda('K'), 1);
    assert.equal(g.lambda('other'), 1);
  });

  it('the switch rule is persistence while the model did worse than it, and ties go to the model', () => {
    const g = new Shrinkage({ grid: SWITCH_GRID, window: 10 });
    g.update('K', 3, -1); // model error 4, persistence 1
    assert.equal(g.lambda('K'), 0);
    g.update('K', 5, 8); // model 3, persistence 8: sums 7 vs 9
    assert.equal(g.lambda('K'), 1);
    const t = new Shrinkage({ grid: SWITCH_GRID, window: 10 });
    t.update('K', 1, 0.5); // both 0.5
    assert.equal(t.lambda('K'), 1);
  });

  it('refuses a grid outside [0, 1] and an empty window', () => {
    assert.throws(() => new Shrinkage({ grid: [0, 1.5] }), /grid/);
    assert.throws(() => new Shrinkage({ window: 0 }), /window/);
  });
});

describe('applyShrinkage', () => {
  it('learns an outcome only once its target time has come, and shrinks a model that has gone wrong', () => {
    const MIN = 60_000;
    const n = 400;
    // The model is right for 200 minutes (predicts the outcome), then exactly wrong (predicts its opposite).
    const actual = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 5);
    const predicted = Float64Array.from(actual, (y, i) => (i < 200 ? y : -y));
    const stream = {
      key: new Float64Array(n),
      windowEnd: Float64Array.from({ length: n }, (_, i) => i * MIN),
      horizonMs: 5 * MIN,
      predicted,
      actual,
    };
    const r = applyShrinkage(stream, { grid: [0, 0.5, 1], window: 60 });
    for (let i = 0; i < 5; i++) assert.equal(r.lambda[i], 1, `minute ${i}: nothing matured yet`);
    assert.equal(r.lambda[199], 1);
    // The first wrong forecast (minute 200) matures at 205: until then the gate cannot know.
    for (let i = 200; i <= 205; i++) assert.equal(r.lambda[i], 1, `minute ${i}`);
    assert.ok(
      r.lambda.slice(300).every((l) => l === 0),
      'persistence once the window is all wrong',
    );
    assert.equal(Math.abs(r.published[300]!), 0);
  });
});

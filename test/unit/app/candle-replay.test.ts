import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replayRange } from '../../../src/app/candle-replay.ts';

describe('--replay ranges', () => {
  it('a month, a day, and inclusive ranges of either, in UTC', () => {
    assert.deepEqual(replayRange('2022-05'), { from: Date.UTC(2022, 4, 1), to: Date.UTC(2022, 5, 1) });
    assert.deepEqual(replayRange('2022-12'), { from: Date.UTC(2022, 11, 1), to: Date.UTC(2023, 0, 1) });
    assert.deepEqual(replayRange('2022-05-09'), { from: Date.UTC(2022, 4, 9), to: Date.UTC(2022, 4, 10) });
    assert.deepEqual(replayRange('2022-05..2022-06'), {
      from: Date.UTC(2022, 4, 1),
      to: Date.UTC(2022, 6, 1),
    });
    assert.deepEqual(replayRange('2022-05-09..2022-05-12'), {
      from: Date.UTC(2022, 4, 9),
      to: Date.UTC(2022, 4, 13),
    });
  });

  it('refuses what is not a date, an impossible day, and an empty range, with the usage code', () => {
    for (const bad of ['May 2022', '2022-5', '2022-13', '2022-02-30', '2022-06..2022-05', ''])
      assert.throws(() => replayRange(bad), { code: 'CC_ERR_USAGE' }, bad);
  });
});

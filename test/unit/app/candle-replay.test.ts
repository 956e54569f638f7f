import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { klineFiles, replayRange } from '../../../src/app/candle-replay.ts';
import type { CryptocastError } from '../../../src/core/errors.ts';
import { scratchDir } from '../../support/scratch.ts';

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

describe('--replay of months nobody recorded', () => {
  const empty = scratchDir('cc-replay-');
  const klines = ['BTCUSDT', 'ETHUSDT'].map((symbol) => ({ symbol, folders: [empty] }));
  const hint = (range: string) => {
    try {
      klineFiles({ klines, ...replayRange(range) });
    } catch (err) {
      assert.equal((err as CryptocastError).code, 'CC_ERR_INPUT');
      return (err as CryptocastError).hint;
    }
    assert.fail(`${range}: not refused`);
  };

  it('the hint downloads the months asked for, not always 2022-05', () => {
    assert.match(hint('2021-01') ?? '', /data fetch --from 2021-01 \(/);
    assert.match(hint('2021-03-07') ?? '', /data fetch --from 2021-03 \(/);
    assert.match(hint('2020-11..2021-02') ?? '', /data fetch --from 2020-11 --to 2021-02 \(/);
  });
});

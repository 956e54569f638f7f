import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePointWindows } from '../../../src/cli/commands/train.ts';
import { CryptocastError } from '../../../src/core/errors.ts';

describe('--point-windows (train, evaluate)', () => {
  it('reads all and whole days, in order', () => {
    assert.deepEqual(parsePointWindows('all,60d'), [null, 60]);
    assert.deepEqual(parsePointWindows('all'), [null]);
    assert.deepEqual(parsePointWindows(' 90d , all , 30d'), [90, null, 30]);
  });

  it('refuses what is not a whole number of days, and a window named twice (exit 2, naming the flag)', () => {
    for (const bad of ['12h', '1.5d', 'sometimes', 'all,all', '60d,60d', '0d']) {
      assert.throws(
        () => parsePointWindows(bad),
        (e: unknown) => e instanceof CryptocastError && e.exitCode === 2 && /--point-windows/.test(e.message),
        bad,
      );
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertDeepClose } from '../../support/close.ts';

describe('assertDeepClose (test helper)', () => {
  it('takes a last-bit difference, refuses a real one, a missing key or another string', () => {
    const q = { windows: { '7d': { rmse: 112.02961376924004, count: 346, pair: 'BTC/USDT' } }, list: [1, 2] };
    assertDeepClose({ windows: { '7d': { ...q.windows['7d'], rmse: 112.02961376924007 } }, list: [1, 2] }, q);
    assert.throws(
      () => assertDeepClose({ ...q, windows: { '7d': { ...q.windows['7d'], rmse: 112.0296138 } } }, q),
      /\$\.windows\.7d\.rmse/,
    );
    assert.throws(() => assertDeepClose({ windows: q.windows }, q), /keys/);
    assert.throws(
      () => assertDeepClose({ ...q, windows: { '7d': { ...q.windows['7d'], pair: 'ETH/USDT' } } }, q),
      /pair/,
    );
    assert.throws(() => assertDeepClose({ ...q, list: [1, 3] }, q), /\$\.list\.1/);
  });
});

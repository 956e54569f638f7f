import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByPair } from '../../../src/core/by-pair.ts';

describe('ByPair: one value per exchange and pair', () => {
  it('makes each value once, returns the same one after other pairs, and lists them all', () => {
    let made = 0;
    const m = new ByPair((exchange, pair) => ({ key: `${exchange}:${pair}`, n: ++made }));
    const a = m.get('kraken', 'BTC/USD');
    assert.equal(m.get('kraken', 'BTC/USD'), a, 'the last one, again');
    const b = m.get('binance', 'BTC/USD');
    const c = m.get('kraken', 'ETH/USD');
    assert.equal(m.get('kraken', 'BTC/USD'), a, 'found again after others');
    assert.notEqual(a, b);
    assert.deepEqual(
      [a, b, c].map((v) => v.key),
      ['kraken:BTC/USD', 'binance:BTC/USD', 'kraken:ETH/USD'],
    );
    assert.equal(made, 3);
    assert.deepEqual([...m.values()].map((v) => v.n).sort(), [1, 2, 3]);
  });
});

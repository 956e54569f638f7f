import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { examplePair } from '../../../src/cli/commands/run.ts';

describe('the example URL cryptocast run prints names a pair it will have', () => {
  it('live: the first followed pair (BTC/USD by default), not the recordings’ BTC/USDT', () => {
    assert.equal(examplePair('live', undefined, ['BTC/USD', 'ETH/USD']), 'BTC-USD');
    assert.equal(examplePair('live', 'ETH/EUR', ['ETH/EUR']), 'ETH-EUR');
  });
  it('replay: the recordings’ BTC/USDT, or the first of --pairs', () => {
    assert.equal(examplePair('replay', undefined, ['BTC/USD', 'ETH/USD']), 'BTC-USDT');
    assert.equal(examplePair(undefined, 'ETH/USDT', ['ETH/USDT']), 'ETH-USDT');
  });
});

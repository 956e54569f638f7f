import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERR } from '../../../src/core/errors.ts';
import { klineReplaySymbols } from '../../../src/data/locations.ts';
import { coded } from '../../support/errors.ts';

describe('klineReplaySymbols: what `run --replay` plays under --pairs', () => {
  it('every recorded symbol without --pairs; only the pairs named with it', () => {
    assert.deepEqual(
      klineReplaySymbols(undefined).map((k) => k.symbol),
      ['BTCUSDT', 'ETHUSDT'],
    );
    assert.deepEqual(
      klineReplaySymbols(['ETH/USDT']).map((k) => k.symbol),
      ['ETHUSDT'],
    );
  });

  it('a pair the kline recordings do not hold is refused with CC_ERR_PAIR, naming it and what there is', () => {
    assert.throws(
      () => klineReplaySymbols(['BTC/USD']),
      coded(ERR.PAIR, /BTC\/USDT, ETH\/USDT, not BTC\/USD$/),
    );
    assert.throws(() => klineReplaySymbols(['BTC/USDT', 'SOL/USDT']), coded(ERR.PAIR, /SOL\/USDT/));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERR } from '../../../../src/core/errors.ts';
import { liveSources } from '../../../../src/ingestion/live/index.ts';
import { coded } from '../../../support/errors.ts';

const PAIRS = ['BTC/USD', 'ETH/USD'];
const names = (exchanges: string) =>
  liveSources(PAIRS, { CRYPTOCAST_EXCHANGES: exchanges }).map((s) => s.name);

describe('liveSources: one exchange per pair', () => {
  // Kraken's and Coinbase's BTC/USD both went into the one BTC/USD series: the features stage dead-lettered the
  // second venue's every candle ("not after the previous one") and the candle store kept whichever came last.
  it('refuses two exchanges that would follow the same pair, naming both', () => {
    assert.throws(() => names('kraken,coinbase'), coded(ERR.CONFIG, /BTC\/USD .*both kraken and coinbase/));
    assert.throws(
      () => liveSources(['BTC/USDT'], { CRYPTOCAST_EXCHANGES: 'kraken,binance' }),
      coded(ERR.CONFIG, /BTC\/USDT .*both kraken and binance/),
    );
  });

  it('takes exchanges whose pairs differ: Binance follows the USDT pairs beside Kraken or Coinbase', () => {
    assert.deepEqual(names('kraken,binance'), ['kraken-ws', 'binance-ws']);
    assert.deepEqual(names('coinbase,binance'), ['coinbase-ws', 'binance-ws']);
    assert.deepEqual(names('kraken,KRAKEN'), ['kraken-ws'], 'an exchange named twice is followed once');
  });
});

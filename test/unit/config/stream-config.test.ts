import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadStreamConfig, loadStreamSetting } from '../../../src/config/config.ts';
import { ERR } from '../../../src/core/errors.ts';
import { coded } from '../../support/errors.ts';

describe('loadStreamSetting: one stream setting, validated as loadStreamConfig validates it', () => {
  it('refuses a max price factor that is not a number above 1, from the flag or the environment', () => {
    for (const bad of ['-3', 'abc', '1', '0.5'])
      assert.throws(() => loadStreamSetting('maxPriceFactor', bad, {}), ConfigError, bad);
    assert.throws(
      () => loadStreamSetting('maxPriceFactor', undefined, { CRYPTOCAST_MAX_PRICE_FACTOR: '0.5' }),
      /^ConfigError: invalid configuration: environment CRYPTOCAST_MAX_PRICE_FACTOR: .*"0\.5"/,
    );
  });

  it('takes the flag over the environment, the default when neither is set', () => {
    assert.equal(loadStreamSetting('maxPriceFactor', '3', { CRYPTOCAST_MAX_PRICE_FACTOR: '0.5' }), 3);
    assert.equal(loadStreamSetting('maxPriceFactor', undefined, {}), 10);
  });

  it('does not read the other settings (a bad CRYPTOCAST_BUS is no business of candles)', () => {
    assert.equal(loadStreamSetting('maxPriceFactor', '4', { CRYPTOCAST_BUS: 'bogus' }), 4);
    assert.throws(() => loadStreamConfig({ maxPriceFactor: '4' }, { CRYPTOCAST_BUS: 'bogus' }), ConfigError);
  });

  it('one bad setting is one line; several are one line each', () => {
    const one = (() => {
      try {
        loadStreamSetting('maxPriceFactor', 'abc', {});
      } catch (e) {
        return (e as Error).message;
      }
    })();
    assert.match(one ?? '', /^invalid configuration: flag --max-price-factor: [^\n]+$/);
    assert.throws(
      () => loadStreamConfig({ maxPriceFactor: 'abc', pairs: 'x' }, {}),
      (e: Error) => e.message.split('\n').length === 3,
    );
  });

  it('pairs that are not pairs: CC_ERR_PAIR, the code of --pair in every command (it was CC_ERR_CONFIG here)', () => {
    assert.throws(() => loadStreamConfig({ pairs: 'foo' }, {}), coded(ERR.PAIR, /--pairs.*"FOO"/));
    assert.throws(
      () => loadStreamConfig({}, { CRYPTOCAST_PAIRS: 'foo,bar' }),
      coded(ERR.PAIR, /CRYPTOCAST_PAIRS/),
    );
    // With another bad setting, the configuration error names both.
    assert.throws(() => loadStreamConfig({ maxPriceFactor: 'abc', pairs: 'x' }, {}), coded(ERR.CONFIG));
  });

  it('--pairs is spelled as every --pair is (BTC/USD, btc-usd, BTCUSDT, XBTUSD), each pair once', () => {
    assert.deepEqual(loadStreamConfig({ pairs: 'btc-usd, BTCUSDT,XBTUSD,ETH/EUR' }, {}).pairs, [
      'BTC/USD',
      'BTC/USDT',
      'ETH/EUR',
    ]);
  });
});

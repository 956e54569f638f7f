import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TradeDeduplicator } from '../../../src/ingestion/dedup.ts';
import { T0, trade } from '../../support/factories.ts';

const t = (id: string, p: { exchange?: string; pair?: string } = {}) =>
  trade({ ts: T0, price: 1, tradeId: id, ...p });

describe('TradeDeduplicator', () => {
  it('drops a repeated (exchange, pair, tradeId) and keeps the same id on another pair or exchange', () => {
    const d = new TradeDeduplicator();
    const out = d.filter([
      t('1'),
      t('2'),
      t('1'),
      t('1', { pair: 'ETH/USD' }),
      t('1', { exchange: 'kraken' }),
      t('2'),
    ]);
    assert.deepEqual(
      out.map((x) => `${x.exchange} ${x.pair} ${x.tradeId}`),
      ['test BTC/USD 1', 'test BTC/USD 2', 'test ETH/USD 1', 'kraken BTC/USD 1'],
    );
    assert.equal(d.duplicates, 2);
  });

  it('recognises a websocket/REST overlap in numeric ids, in any order, across a gap', () => {
    const d = new TradeDeduplicator();
    const ws = [100, 101, 102, 250, 251].map(String); // gap 103..249 while disconnected
    const rest = Array.from({ length: 160 }, (_, i) => String(95 + i)); // 95..254 refilled over REST
    const kept = d.filter([...ws, ...rest].map((id) => t(id))).map((x) => Number(x.tradeId));
    assert.equal(kept.length, 160);
    assert.deepEqual(
      [...kept].sort((a, b) => a - b),
      Array.from({ length: 160 }, (_, i) => 95 + i),
    );
    assert.equal(d.duplicates, 5);
  });

  it('forgets a trade it accepted (delivery refused): accepted again, numeric or not; the others stay seen', () => {
    const d = new TradeDeduplicator();
    assert.equal(d.filter(['5', '6', '7', 'x', 'y'].map((id) => t(id))).length, 5);
    d.forget(t('6'));
    d.forget(t('7')); // the newest: the window's top stays, 6 and 7 count as not seen
    d.forget(t('x'));
    const again = d.filter(['5', '6', '7', 'x', 'y', '8'].map((id) => t(id))).map((x) => x.tradeId);
    assert.deepEqual(again, ['6', '7', 'x', '8']);
    assert.equal(d.duplicates, 2);
  });

  it('accepts but counts ids older than its window instead of dropping them', () => {
    const d = new TradeDeduplicator();
    d.accept(t('5000000'));
    assert.equal(d.accept(t('1')), true);
    assert.equal(d.unverifiable, 1);
  });

  it('reuses bitmap slots correctly when ids jump forward by more than the window', () => {
    const d = new TradeDeduplicator();
    assert.equal(d.accept(t('7')), true);
    assert.equal(d.accept(t(String(7 + (1 << 20)))), true);
    assert.equal(d.accept(t(String(8 + (1 << 20)))), true, 'slot of id 8 was never set');
    assert.equal(d.accept(t(String(7 + (1 << 20)))), false);
  });

  it('handles non-numeric ids with a bounded recent set', () => {
    const d = new TradeDeduplicator(2);
    assert.equal(d.accept(t('a')), true);
    assert.equal(d.accept(t('a')), false);
    d.accept(t('b'));
    d.accept(t('c')); // evicts a
    assert.equal(d.accept(t('a')), true);
  });
});

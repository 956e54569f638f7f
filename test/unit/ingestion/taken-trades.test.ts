import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REFILL_OVERLAP_MS, TakenTrades } from '../../../src/ingestion/resume-points.ts';

/**
 * `TakenTrades` (a candle's `refillFrom`: the newest trade taken and the ids of the last second before it). Past 4,096
 * ids it trimmed at every trade, and with more than that in one second (a liquidation cascade) a trim removes nothing:
 * quadratic — 32,000 trades of one second took 5.7 s of the event loop (h128's review). Trims are counted, not timed.
 */
const T = 1_700_000_000_000;

describe('TakenTrades', () => {
  it('keeps the newest id and time, and the ids of the last second before it only', () => {
    const t = new TakenTrades();
    for (let i = 0; i < 10_000; i++) t.take(String(1_000 + i), T + i * 10); // 100 trades a second
    assert.equal(t.lastId, 10_999);
    assert.equal(t.lastTs, T + 99_990);
    const ids = t.recentIds();
    assert.ok(
      ids.every((id) => Number(id) >= 10_999 - REFILL_OVERLAP_MS / 10),
      ids[0],
    );
    assert.ok(ids.includes('10999'));
  });

  it('32,000 trades inside one second: all kept, trimmed a few times (amortised), not once per trade', () => {
    const t = new TakenTrades();
    const n = 32_000;
    for (let i = 0; i < n; i++) t.take(String(1_000_000 + i), T + Math.floor((i * 900) / n));
    assert.equal(t.recentIds().length, n);
    assert.ok(t.trims <= 8, `${t.trims} trims for ${n} trades`);
  });
});

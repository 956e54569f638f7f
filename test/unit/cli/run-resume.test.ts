import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CandlesTable } from '../../../src/candles/store/candles-table.ts';
import { RESUME_MAX_AGE_MS, resumableCandles } from '../../../src/cli/commands/run.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { candle, MIN } from '../../support/factories.ts';

describe('cryptocast run --source live: where to resume from the store', () => {
  it("takes each followed pair's newest stored candle unless it is older than the REST refill reaches", async () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    const newest: Record<string, Candle> = {
      'BTC/USD': { ...candle({ windowEnd: now - 3 * MIN }), pair: 'BTC/USD' },
      'ETH/USD': { ...candle({ windowEnd: now - RESUME_MAX_AGE_MS - MIN }), pair: 'ETH/USD' }, // a day replayed
      'SOL/USD': { ...candle({ windowEnd: now - MIN }), pair: 'SOL/USD' }, // not followed by this run
    };
    const table = {
      series: async () => Object.keys(newest),
      latest: async (pair: string) => newest[pair],
    } as unknown as CandlesTable;
    const said: string[] = [];
    const got = await resumableCandles(table, ['BTC/USD', 'ETH/USD', 'XRP/USD'], now, (l) => said.push(l));
    assert.deepEqual(
      got.map((c) => c.pair),
      ['BTC/USD'],
    );
    assert.equal(said.length, 2);
    assert.match(said[0]!, /^ETH\/USD: .* over 60 minutes ago: starting fresh/);
    assert.match(
      said[1]!,
      /^resuming BTC\/USD after 2026-01-01 11:57: what traded since is refilled over REST/,
    );
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { backfill } from '../../../src/cli/commands/backfill.ts';
import { krakenRecordedTrades } from '../../support/exchanges/fixtures.ts';
import { KrakenServer } from '../../support/exchanges/kraken.ts';
import { scratchDir } from '../../support/scratch.ts';

// Read when the command runs: no pause between the local server's pages.
process.env.CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS = '0';

/**
 * `cryptocast backfill --output FILE` saves its state (the cursor past a page) after each page. The page was only
 * handed to the file's write stream, not written: a write that failed (a full disk; /dev/full here) left the state
 * past trades the file never got, and the rerun resumed after them — a page lost for good.
 */
it('backfill --output: a page that could not be written is fetched again by the rerun (the state waits for the write)', async () => {
  const server = await new KrakenServer().listen();
  server.pageSize = 100;
  const trades = krakenRecordedTrades();
  server.record('BTC/USDT', trades);
  const dir = scratchDir('cc-backfill-output-');
  const state = join(dir, 'state.json');
  const args = (output: string) => ({
    exchange: 'kraken',
    pair: 'BTC/USDT',
    since: '2025-11-10T17:00:00Z',
    until: '2025-11-11T01:00:00Z',
    baseUrl: server.restUrl,
    output,
    state,
  });
  try {
    assert.ok(trades.length > 300, 'several pages');
    await assert.rejects(backfill(args('/dev/full')), /cannot write \/dev\/full/);
    const out = join(dir, 'trades.csv');
    await backfill(args(out));
    const lines = readFileSync(out, 'utf8').trim().split('\n').slice(1);
    assert.equal(lines.length, trades.length);
    assert.equal(new Set(lines).size, trades.length, 'each trade once');
  } finally {
    await server.close();
  }
});

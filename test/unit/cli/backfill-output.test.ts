import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { backfill } from '../../../src/cli/commands/backfill.ts';
import { ERR } from '../../../src/core/errors.ts';
import { coded } from '../../support/errors.ts';
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

/**
 * The state file and the output are one pair: the state says how far the output got. Apart, a rerun trusted one and
 * ignored the other: the state removed (as the STATE_FILE hint says, "to start over") and the output kept, the range
 * was appended a second time (2,000 rows for 1,000 trades); the output removed (or another --output given) and the
 * state kept, the rerun wrote a header and nothing else, and said "done".
 */
it('backfill --output: a rerun whose state and output disagree is refused, never appended twice or left short', async () => {
  const server = await new KrakenServer().listen();
  server.pageSize = 100;
  const trades = krakenRecordedTrades();
  server.record('BTC/USDT', trades);
  const dir = scratchDir('cc-backfill-pair-');
  const state = join(dir, 'state.json');
  const out = join(dir, 'trades.csv');
  const args = {
    exchange: 'kraken',
    pair: 'BTC/USDT',
    since: '2025-11-10T17:00:00Z',
    until: '2025-11-11T01:00:00Z',
    baseUrl: server.restUrl,
    output: out,
    state,
  };
  const rows = (file: string) => readFileSync(file, 'utf8').trim().split('\n').length - 1;
  try {
    await backfill(args);
    assert.equal(rows(out), trades.length);
    // Done and rerun as it is: nothing more, nothing twice.
    await backfill(args);
    assert.equal(rows(out), trades.length);

    // The state removed, the output kept: refused, the output as it was.
    const before = readFileSync(out, 'utf8');
    rmSync(state);
    await assert.rejects(backfill(args), coded(ERR.OUTPUT, /already holds 1000 trades/));
    assert.equal(readFileSync(out, 'utf8'), before);
    assert.ok(!existsSync(state), 'no state made by the refused run');

    // The output removed (or another one named), the state kept: refused, no header-only file.
    rmSync(out);
    await backfill(args); // a fresh pair again
    rmSync(out);
    await assert.rejects(backfill(args), coded(ERR.STATE_FILE, /1000 trades/));
    assert.ok(!existsSync(out));
    const other = join(dir, 'other.csv');
    await assert.rejects(backfill({ ...args, output: other }), coded(ERR.STATE_FILE));
    assert.ok(!existsSync(other));

    // Another backfill's state (another --since): refused as such, not as a count that disagrees.
    await assert.rejects(
      backfill({ ...args, since: '2025-11-10T18:00:00Z', output: other }),
      coded(ERR.STATE_FILE, /belongs to another backfill/),
    );

    // An empty file given as the output is a fresh one: it gets its header.
    rmSync(state);
    writeFileSync(out, '');
    await backfill(args);
    assert.match(readFileSync(out, 'utf8'), /^exchange,pair,tradeId,tradeTs,price,qty,side\n/);
    assert.equal(rows(out), trades.length);
  } finally {
    await server.close();
  }
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { tempDirs } from '../support/embedded-run.ts';

const dir = tempDirs();

/**
 * `run --replay DAY` plays klines, not trades: its status lines say "candle replay" from the first. Before the replay
 * reported its first minute (while it reads the day's zips), the first line was the trade replay's, "replay · 0 trades
 * (0/s) · 0 candles (0 idle) · 0 late · …", counts of a stage that a candle replay never runs.
 */
it('run --replay: every status line is the candle replay’s, from the first', async () => {
  const file = join(dir('cc-candle-status-'), 'cryptocast.duckdb');
  const args = [
    'run',
    '--port',
    '0',
    '--backend',
    'lexicon',
    '--replay',
    '2022-05-09',
    '--store',
    `duckdb:${file}`,
  ];
  const run = runCli(args, { CRYPTOCAST_REGISTRY: dir('cc-candle-status-registry-') });
  assert.equal(await exitedWithin(run, 180_000, 'the day replay'), 0, run.stderr());
  const statusLines = run
    .stderr()
    .split('\n')
    .filter((l) => /^(done: |stopped: )?(candle )?replay · /.test(l));
  assert.ok(statusLines.length > 0, run.stderr());
  for (const l of statusLines) assert.match(l, /^(done: )?candle replay · /, run.stderr());
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { tempDirs } from '../support/embedded-run.ts';

const dir = tempDirs();

/**
 * `cryptocast run` that predicted nothing ended "done: … 0 predictions" and no more: the reason (here, no champion in
 * the registry) was one line among the start's, scrolled away by the candles. The summary now says why; the run is no
 * failure (the market data and features are stored, and `run` works without predictions), so it exits 0.
 */
describe('cryptocast run: a run that makes no prediction', () => {
  it('ends with a warning saying why (no champion: which registry, how to train one), in the summary and its JSON; exit 0', async () => {
    const registry = dir('cc-no-predictions-registry-');
    const file = join(dir('cc-no-predictions-'), 'cryptocast.duckdb');
    // The default replay (recorded trades: 351 ready vectors), into an empty registry.
    const run = runCli(['run', '--json', '--port', '0', '--no-news', '--store', `duckdb:${file}`], {
      CRYPTOCAST_REGISTRY: registry,
    });
    assert.equal(await exitedWithin(run, 120_000, 'the run to end'), 0, run.stderr());
    const done = run.events.find((e) => e.event === 'done');
    assert.ok(done, JSON.stringify(run.events.at(-1)));
    assert.equal(done.predictions, 0);
    const why = String(done.noPredictions);
    assert.match(why, /^[\d,]+ ready vectors had no model: no champion "cryptocast-price" in /);
    assert.ok(why.includes(registry), why);
    assert.match(why, /train one: bash scripts\/price-model\.sh, or cryptocast train/);
    // The human summary: the warning right after the "done" line.
    assert.match(
      run.stderr(),
      /\ndone: .* 0 predictions .*\nwarning: no predictions: [\d,]+ ready vectors had no model/,
    );
  });
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openCandlesTable } from '../../src/candles/store/candles-table.ts';
import { bitstampCandleRecords } from '../support/bitstamp.ts';
import { exitedWithin, liveRunOnKraken } from '../support/cli.ts';
import { registerFlatChampion, tempDirs } from '../support/embedded-run.ts';
import { KrakenServer } from '../support/exchanges/kraken.ts';

const MIN = 60_000;
const dir = tempDirs();

/**
 * `cryptocast run --source live` on a store an earlier live run left (its candles up to a minute ago): the run resumes
 * after them, and its feature stage starts from them too, so the first new minute is predicted — not an hour later,
 * after a second warm-up on an empty bus.
 */
describe('cryptocast run --source live, restarted on its store', () => {
  it('predicts the first new minute', async () => {
    const env = await registerFlatChampion(dir('cc-restart-registry-'));
    const file = join(dir('cc-restart-'), 'cryptocast.duckdb');
    // What the earlier run stored: 1,100 real minutes of BTC, moved to end at the start of the last whole minute.
    const lastEnd = Math.floor(Date.now() / MIN) * MIN - MIN;
    const real = await bitstampCandleRecords(1_100);
    const shift = lastEnd - real.at(-1)!.windowEnd;
    const table = await openCandlesTable(`duckdb:${file}`);
    await table.write(
      real.map((c, i) => ({
        ...c,
        trades: 20 + (i % 13), // a live run's candles count their trades (the recording's do not)
        exchange: 'kraken',
        pair: 'BTC/USDT',
        windowStart: c.windowStart + shift,
        windowEnd: c.windowEnd + shift,
      })),
    );
    await table.close();
    // A quiet market: no trade, so the next minute is a filled one, closed by the connector's wall-clock watermarks.
    const srv = await new KrakenServer().listen();
    srv.heartbeatMs = 200;
    const run = liveRunOnKraken(srv, { pairs: 'BTC/USDT', file, env });
    try {
      // The minute after the stored ones closes once the wall clock passes its end + 2 s delay + 5 s grace: within
      // about 70 s of the start; the deadline leaves a loaded machine room. Without the seeded feature stage the first
      // prediction came 61 minutes later.
      const stored = await run.waitFor((e) => e.event === 'stored' && Number(e.predictions) > 0, 240_000);
      assert.ok(Number(stored.featureRows) >= 1);
      assert.match(run.stderr(), /resuming BTC\/USDT after /);
    } finally {
      run.child.kill('SIGTERM');
      await exitedWithin(run, 60_000, 'the live run to stop');
      await srv.close();
    }
  });
});

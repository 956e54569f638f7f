import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../src/candles/store/candles-table.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import { type CliRun, exitedWithin, liveRunOnKraken } from '../support/cli.ts';
import { registerFlatChampion, tempDirs } from '../support/embedded-run.ts';
import { KrakenServer, type KrakenTrade } from '../support/exchanges/kraken.ts';
import { waitFor } from '../support/wait.ts';

const MIN = 60_000;
const PAIR = 'BTC/USDT';
const dir = tempDirs();

const krakenTrade = (id: number, ts: number, price: string, qty: string): KrakenTrade => ({
  id,
  price,
  qty,
  time: (ts / 1000).toFixed(4),
  side: 'b',
  ordType: 'l',
});

/** The API port the run printed (`dashboard on http://127.0.0.1:PORT/`, on stderr under --json). */
async function apiPort(run: CliRun): Promise<number> {
  const m = await waitFor(
    'the dashboard line',
    () => /dashboard on http:\/\/127\.0\.0\.1:(\d+)\//.exec(run.stderr()),
    (x) => x !== null,
    { timeoutMs: 120_000 },
  );
  return Number(m![1]);
}

/** The run's candles of `from`…`to` as its API serves them (the store's latest revision of each minute). */
async function servedCandles(port: number, from: number, to: number): Promise<Candle[]> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/candles?pair=BTC-USDT&from=${from}&to=${to}`);
  if (!res.ok) throw new Error(`/v1/candles: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { items: Candle[] }).items;
}

/** The dead letters this process counted (`cryptocast_dead_letters_total` on the API's /metrics), by kind. */
async function deadLetters(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^cryptocast_dead_letters_total\{([^}]*)\} (\S+)$/gm)) {
    const kind = /kind="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
    out[kind] = (out[kind] ?? 0) + Number(m[2]);
  }
  return out;
}

/**
 * `cryptocast run --source live --late-policy revise`, the real CLI against a local Kraken, stopped and started again
 * on its DuckDB store: a late trade, after the restart, for a minute the first process had published is published as
 * a revision of it — as a run that never stopped does — not dead-lettered; the store keeps the revision in its
 * candles and the minute's first emission beside it (what the monitor and the restarted feature stage judge by).
 */
describe('cryptocast run --source live --late-policy revise, restarted on its store', () => {
  it('a late trade after the restart for a minute published before it is a revision, nothing dead-lettered', async () => {
    const env = {
      ...(await registerFlatChampion(dir('h94-revise-registry-'))),
      CRYPTOCAST_EXCHANGES: 'kraken',
    };
    const file = join(dir('h94-revise-restart-'), 'cryptocast.duckdb');
    const srv = await new KrakenServer().listen();
    srv.heartbeatMs = 200;
    const runs: CliRun[] = [];
    let minute = 0;
    const start = () => {
      const r = liveRunOnKraken(srv, { pairs: PAIR, file, flags: ['--late-policy', 'revise'], env });
      runs.push(r);
      return r;
    };
    try {
      // ---- the first process: two trades in the current minute, published once the wall clock closes it.
      const first = start();
      const port1 = await apiPort(first);
      await waitFor(
        'the first run to subscribe',
        () => srv.subscribers(PAIR),
        (n) => n > 0,
        {
          timeoutMs: 120_000,
        },
      );
      // Early enough in its minute that the late trade below (5 s after these) is not in the minute's last second,
      // which a restart takes for the refill's overlap (a re-read): up to 45 s into it leaves 9 s of room. (It waited
      // for the first 15 s, about 18 s on average, for nothing the test needs.)
      await waitFor(
        'a minute with 15 s left',
        () => Date.now() % MIN,
        (ms) => ms > 2_000 && ms < 45_000,
        {
          timeoutMs: 2 * MIN,
          everyMs: 100,
        },
      );
      const t0 = Date.now() - 500;
      minute = Math.floor(t0 / MIN) * MIN;
      srv.publish(PAIR, [krakenTrade(1, t0, '100.0', '0.1'), krakenTrade(2, t0 + 100, '101.0', '0.2')]);
      // Closed by the wall-clock watermark at its end + delay + grace: about a minute; a loaded machine gets room.
      const published = await waitFor(
        'the first run to store the traded minute',
        () => servedCandles(port1, minute, minute + 2 * MIN),
        (cs) => cs.some((c) => c.windowStart === minute),
        { timeoutMs: 240_000, everyMs: 500 },
      );
      const firstEmission = published.find((c) => c.windowStart === minute)!;
      assert.equal(firstEmission.close, 101);
      assert.equal(firstEmission.revision, 0);
      first.child.kill('SIGTERM');
      assert.equal(await exitedWithin(first, 60_000, 'the first run to stop'), 0);

      // ---- the second process, on the same store: a late trade for that minute, after its last trade.
      const second = start();
      const port2 = await apiPort(second);
      // Printed once the store is read, which may come after the API's line: waited for, not assumed to be there.
      await waitFor(
        'the second run to resume after the stored minute',
        () => second.stderr(),
        (err) => /resuming BTC\/USDT after /.test(err),
        { timeoutMs: 60_000, everyMs: 100 },
      );
      await waitFor(
        'the second run to subscribe',
        () => srv.subscribers(PAIR),
        (n) => n > 0,
        {
          timeoutMs: 120_000,
        },
      );
      srv.publish(PAIR, [krakenTrade(3, t0 + 5_000, '90.0', '0.3')]);
      const revised = await waitFor(
        'the revision of the minute in the store',
        () => servedCandles(port2, minute, minute + 2 * MIN),
        (cs) => cs.some((c) => c.windowStart === minute && c.revision > 0),
        { timeoutMs: 120_000, everyMs: 500 },
      );
      const revision = revised.find((c) => c.windowStart === minute)!;
      assert.equal(revision.revision, 1, JSON.stringify(revised));
      assert.equal(revision.close, 90, 'the late trade is the new close');
      assert.equal(revision.open, 100);
      assert.equal(revision.trades, 3);
      assert.ok(Math.abs(revision.volume - 0.6) < 1e-9);
      assert.deepEqual(
        await deadLetters(port2),
        {},
        'nothing dead-lettered: an uninterrupted run took it too',
      );
      second.child.kill('SIGTERM');
      assert.equal(await exitedWithin(second, 60_000, 'the second run to stop'), 0);
    } finally {
      for (const r of runs)
        if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
      await srv.close();
    }

    // ---- the store: the minute's latest revision in its candles, its first emission kept beside it.
    const candles = await openCandlesTable(`duckdb:${file}`);
    const firsts = await openCandleFirstEmissionsTable(`duckdb:${file}`);
    try {
      const at = async (t: typeof candles) => (await t.range(PAIR, minute + MIN, minute + MIN + 1))[0];
      const latest = await at(candles);
      const firstKept = await at(firsts);
      assert.equal(latest?.revision, 1);
      assert.equal(latest?.close, 90);
      assert.ok(latest?.revisable, 'the revision keeps what a later revision needs');
      assert.equal(firstKept?.revision, 0);
      assert.equal(firstKept?.close, 101, 'the first emission, as the first process published it');
    } finally {
      await candles.close();
      await firsts.close();
    }
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import {
  type KrakenBackfillProgress,
  KrakenRestBackfill,
} from '../../../../src/ingestion/backfill/kraken-rest.ts';
import { TradeSchema } from '../../../../src/schemas/trade.ts';
import { exitedWithin, runCli } from '../../../support/cli.ts';
import { KRAKEN_REST_TRADES } from '../../../support/data.ts';
import { krakenRecordedTrades } from '../../../support/exchanges/fixtures.ts';
import { LogSink, testLog } from '../../../support/exchanges/harness.ts';
import { KrakenServer, ns } from '../../../support/exchanges/kraken.ts';
import { freePort } from '../../../support/ports.ts';
import { scratchDir } from '../../../support/scratch.ts';
import { waitFor } from '../../../support/wait.ts';

const real = krakenRecordedTrades(); // 2025-11-10 17:23:53.97 → 2025-11-11 00:13:55.98, ids 10218208…10219207
const PAIR = 'BTC/USDT';
const since = Date.UTC(2025, 10, 10, 17, 0);
const until = Date.UTC(2025, 10, 11, 1, 0); // after the last recorded trade
const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const ms = (t: { time: string }) => Number(ns(t.time) / 1_000_000n);
const tmpState = () => join(scratchDir('bf-'), 'state.json');
/** `cryptocast backfill` of the recorded span from a local server into DIR/t.csv (state DIR/s.json). */
const backfillArgs = (srv: KrakenServer, dir: string) => [
  'backfill',
  '--exchange',
  'kraken',
  '--pair',
  'BTC/USDT',
  '--since',
  '2025-11-10T17:00:00Z',
  '--until',
  '2025-11-11T01:00:00Z',
  '--base-url',
  srv.restUrl,
  '--output',
  join(dir, 't.csv'),
  '--state',
  join(dir, 's.json'),
];

async function server(pageSize: number): Promise<KrakenServer> {
  const s = await new KrakenServer().listen();
  s.pageSize = pageSize;
  s.record(PAIR, real);
  return s;
}

function backfill(
  srv: KrakenServer,
  extra: Partial<ConstructorParameters<typeof KrakenRestBackfill>[0]> = {},
) {
  return new KrakenRestBackfill({
    pair: PAIR,
    since,
    until,
    baseUrl: srv.restUrl,
    minIntervalMs: 0,
    backoff: { initialMs: 5, maxMs: 20 },
    log: testLog,
    ...extra,
  });
}

describe('Kraken REST Trades backfill against a local Kraken server', () => {
  it('pages through the `last` cursor, keeps every trade once, reports progress, ends with a final watermark', async () => {
    const srv = await server(100);
    try {
      const sink = new LogSink();
      const progress: KrakenBackfillProgress[] = [];
      await backfill(srv, { onProgress: (p) => progress.push({ ...p }) }).run(
        sink,
        new AbortController().signal,
      );
      assert.deepEqual(
        sink.ids(PAIR),
        real.map((t) => t.id),
        'every trade once, in order',
      );
      assert.ok(sink.received.every((t) => TradeSchema.safeParse(t).success));
      const t0 = sink.received[0]!;
      assert.deepEqual(
        [t0.exchange, t0.pair, t0.price, t0.qty, t0.side, t0.tradeTs],
        ['kraken', PAIR, 105433.6, 0.00027625, 'buy', 1762795433971],
      );
      assert.equal(
        srv.restCalls[0],
        `/0/public/Trades?pair=XBTUSDT&since=${BigInt(since) * 1_000_000n - 1n}`,
      );
      assert.equal(
        srv.restCalls[1],
        `/0/public/Trades?pair=XBTUSDT&since=${ns(real[99]!.time) - 1n}`,
        'cursor = last',
      );
      // Each page re-asks from 1 ns before the cursor, so trades at the cursor's time come again (dropped by
      // id): pages overlap by a trade or a few; the last one has nothing new, so the cursor's instant is asked past
      // once (since = the cursor itself), which brings nothing and ends the run.
      assert.equal(progress.length + 1, srv.restCalls.length, 'one progress report per page with trades');
      assert.equal(
        srv.restCalls.at(-1),
        `/0/public/Trades?pair=XBTUSDT&since=${ns(real.at(-1)!.time)}`,
        'the end is confirmed past the last instant',
      );
      assert.ok(progress.length >= 11);
      const counts = progress.map((p) => p.fetchedTrades);
      assert.equal(counts[0], 100);
      for (let i = 1; i < counts.length - 1; i++)
        assert.ok(counts[i]! > counts[i - 1]!, `page ${i} brought trades`);
      assert.deepEqual(counts.slice(-2), [1000, 1000]);
      assert.ok(progress.every((p) => p.since === since && p.until === until && p.pair === PAIR));
      for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.cursorTs >= progress[i - 1]!.cursorTs);
      assert.equal(progress[0]!.cursorTs, ms(real[99]!));
      const final = sink.watermarks.at(-1)!;
      assert.deepEqual(final, {
        v: 1,
        type: 'watermark',
        exchange: 'kraken',
        pair: PAIR,
        ts: until,
        final: true,
      });
      assert.equal(sink.events.at(-1)!.kind, 'watermark', 'the final watermark comes last');
    } finally {
      await srv.close();
    }
  });

  it('a whole page of trades at one instant (one order filling many): steps past it, says so, carries on to the end', async () => {
    // The recording has instants with up to 17 trades; with 10 per page, asking from 1 ns before such an instant
    // returns the same 10 trades for ever. It used to end there, "complete" after 17 of 1,000 trades.
    const srv = await server(10);
    try {
      const sink = new LogSink();
      const warnings: string[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
      await backfill(srv, { log }).run(sink, new AbortController().signal);
      // Kraken pages by time: at an instant with more trades than a page, only the first page of them can be had.
      const perInstant = new Map<string, number>();
      for (const t of real) perInstant.set(t.time, (perInstant.get(t.time) ?? 0) + 1);
      const reachable = [...perInstant.values()].reduce((a, n) => a + Math.min(n, 10), 0);
      const ids = sink.ids(PAIR);
      assert.equal(ids.length, reachable, `${ids.length} of ${real.length} (reachable ${reachable})`);
      assert.equal(new Set(ids).size, ids.length, 'none twice');
      assert.equal(ids.at(-1), real.at(-1)!.id, 'to the last trade');
      // A page exactly full of one instant is stepped past too (whether more share it cannot be known).
      const crowded = [...perInstant.values()].filter((n) => n >= 10).length;
      assert.equal(
        warnings.filter((w) => /a whole page of trades shares one instant/.test(w)).length,
        crowded,
      );
      // Each warning names the instant and how many of its trades were not fetched (the ids skipped).
      const said = warnings.map((w) => JSON.parse(w)).filter((w) => /shares one instant/.test(w.msg));
      assert.deepEqual(
        said.map((w) => [w.instant, w.notFetched]),
        [...perInstant]
          .filter(([, n]) => n >= 10)
          .map(([time, n]) => [new Date(Math.floor(Number(time) * 1000)).toISOString(), n - 10]),
      );
      assert.equal(sink.watermarks.at(-1)!.final, true);
    } finally {
      await srv.close();
    }
  });

  it('stops at `until` (exclusive); a later run with a later `until` resumes there from the state file', async () => {
    const srv = await server(100);
    const stateFile = tmpState();
    try {
      const cut = ms(real[450]!); // trade #450 is the first one not wanted
      const first = new LogSink();
      await backfill(srv, { until: cut, stateFile }).run(first, new AbortController().signal);
      assert.deepEqual(
        first.ids(PAIR),
        real.slice(0, 450).map((t) => t.id),
      );
      assert.equal(first.watermarks.at(-1)!.ts, cut);
      assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).done, true);
      const second = new LogSink();
      await backfill(srv, { stateFile }).run(second, new AbortController().signal);
      assert.deepEqual(
        second.ids(PAIR),
        real.slice(450).map((t) => t.id),
        'only what the first run did not deliver',
      );
    } finally {
      await srv.close();
    }
  });

  it('backs off and retries on EAPI:Rate limit exceeded, HTTP 5xx and reset connections', async () => {
    const srv = await server(500);
    const again = await server(500);
    srv.rateLimitNext = 2;
    try {
      const sink = new LogSink();
      let retries = 0;
      const onProgress = (p: KrakenBackfillProgress) => {
        retries = p.retries;
      };
      await backfill(srv, { onProgress }).run(sink, new AbortController().signal);
      assert.equal(sink.received.length, 1000);
      assert.equal(retries, 2);
      assert.equal(srv.restCalls[0], srv.restCalls[2], 'the same page asked again');
      const pages = srv.restCalls.length - 2;
      again.failNext = 1;
      again.resetNext = 1;
      const sink2 = new LogSink();
      await backfill(again).run(sink2, new AbortController().signal);
      assert.equal(sink2.received.length, 1000);
      assert.equal(again.restCalls.length, 2 + pages, 'a 502 and a reset, then the same pages');
    } finally {
      await srv.close();
      await again.close();
    }
  });

  it('stops with Kraken’s error when retrying cannot help, and gives up after its retries', async () => {
    const srv = await server(500);
    try {
      // BTC/EUR is a known mapping (XBTEUR) this server does not list: EQuery:Unknown asset pair.
      await assert.rejects(
        backfill(srv, { pair: 'BTC/EUR' }).run(new LogSink(), new AbortController().signal),
        /Kraken: EQuery:Unknown asset pair/,
      );
      srv.rateLimitNext = 100;
      await assert.rejects(
        backfill(srv, { retries: 2 }).run(new LogSink(), new AbortController().signal),
        /failed after 3 attempts: rate limited by the exchange/,
      );
    } finally {
      await srv.close();
    }
  });

  it('resumes from its state file after being stopped, without refetching or losing trades', async () => {
    const srv = await server(100);
    const stateFile = tmpState();
    try {
      const first = new LogSink();
      const abort = new AbortController();
      await backfill(srv, { stateFile, onProgress: (p) => p.pages === 3 && abort.abort() }).run(
        first,
        abort.signal,
      );
      const n = first.received.length;
      assert.ok(n > 200 && n < 300, `stopped after three pages (${n} trades)`);
      assert.equal(first.watermarks.length, 0, 'no final watermark for an interrupted run');
      const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
      assert.deepEqual(
        [saved.done, saved.fetchedTrades, saved.cursor],
        [false, n, String(ns(real[n - 1]!.time))],
      );
      const callsBefore = srv.restCalls.length;
      const second = new LogSink();
      const progress: KrakenBackfillProgress[] = [];
      await backfill(srv, { stateFile, onProgress: (p) => progress.push({ ...p }) }).run(
        second,
        new AbortController().signal,
      );
      assert.equal(
        srv.restCalls[callsBefore],
        `/0/public/Trades?pair=XBTUSDT&since=${BigInt(saved.cursor) - 1n}`,
      );
      assert.deepEqual(
        [...first.ids(PAIR), ...second.ids(PAIR)],
        real.map((t) => t.id),
        'every trade exactly once across both runs',
      );
      assert.ok(progress[0]!.fetchedTrades > n, 'the count carries over');
      assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).done, true);
      assert.equal(second.watermarks.at(-1)!.final, true);
    } finally {
      await srv.close();
    }
  });

  it('refuses an unknown pair, an empty range, and a state file of another backfill, clearly', async () => {
    assert.throws(() => new KrakenRestBackfill({ pair: 'DOGE/JPY', since }), /no mapping for pair DOGE\/JPY/);
    assert.throws(() => new KrakenRestBackfill({ pair: PAIR, since: until, until: since }), /must be after/);
    const stateFile = tmpState();
    writeFileSync(
      stateFile,
      JSON.stringify({ pair: 'ETH/USD', since, until, cursor: '1', maxId: 1, fetchedTrades: 1, done: false }),
    );
    const srv = await server(100);
    try {
      await assert.rejects(
        backfill(srv, { stateFile }).run(new LogSink(), new AbortController().signal),
        /belongs to another backfill \(ETH\/USD/,
      );
      writeFileSync(stateFile, '{"half a file');
      await assert.rejects(
        backfill(srv, { stateFile }).run(new LogSink(), new AbortController().signal),
        /is not JSON/,
      );
    } finally {
      await srv.close();
    }
  });

  it('cryptocast backfill --base-url where nothing listens: says so in seconds (3 retries), not after minutes', async () => {
    const port = await freePort(); // nothing listens there
    const dir = scratchDir('bf-cli-');
    const started = Date.now();
    const r = await promisify(execFile)(
      join(ROOT, 'bin/cryptocast'),
      [
        'backfill',
        '--exchange',
        'kraken',
        '--pair',
        'BTC/USD',
        '--since',
        '2025-01-01T00:00:00Z',
        '--base-url',
        `http://127.0.0.1:${port}`,
        '--output',
        join(dir, 't.csv'),
        '--state',
        join(dir, 's.json'),
      ],
      { timeout: 90_000 },
    ).then(
      () => assert.fail('backfill succeeded against nothing'),
      (e: { code?: number; stderr?: string }) => e,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr ?? '',
      /nothing answered in 4 attempts: network: fetch failed: connect ECONNREFUSED/,
    );
    assert.match(r.stderr ?? '', /check the URL/);
    assert.match(r.stderr ?? '', /\[CC_ERR_UPSTREAM\]/);
    // Back-off 1 + 2 + 4 s with jitter, plus starting Node: far below the 8 retries' ~2 minutes.
    assert.ok(Date.now() - started < 60_000, `${Date.now() - started} ms`);
  });

  it('cryptocast backfill stopped by SIGINT: exit 130 (CC_ERR_INTERRUPTED) with what was appended; a rerun completes it', async () => {
    const srv = await server(50); // 20-odd pages, paced below: the backfill is in the middle when the signal comes
    const dir = scratchDir('bf-int-');
    try {
      const args = backfillArgs(srv, dir);
      const stopped = runCli(args, { CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: '500' });
      const lines = () =>
        existsSync(join(dir, 't.csv')) ? readFileSync(join(dir, 't.csv'), 'utf8').split('\n').length : 0;
      await waitFor('trades appended', lines, (n) => n > 100, { timeoutMs: 60_000, everyMs: 50 });
      stopped.child.kill('SIGINT');
      assert.equal(await exitedWithin(stopped, 30_000, 'the stop'), 130, stopped.stderr());
      assert.match(stopped.stderr(), /interrupted: \d+ trades appended to .*\[CC_ERR_INTERRUPTED\]/s);
      assert.match(stopped.stderr(), /resumes from the state file/);
      assert.doesNotMatch(stopped.stderr(), /\n\s+at /, 'no stack trace');
      const appended = Number(/interrupted: ([\d,]+) trades/.exec(stopped.stderr())![1]!.replaceAll(',', ''));
      assert.ok(appended > 0 && appended < 1000, `stopped in the middle: ${appended}`);

      const rest = runCli(args, { CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: '0' });
      assert.equal(await exitedWithin(rest, 60_000, 'the rerun'), 0, rest.stderr());
      assert.match(rest.stderr(), /done: [\d,]+ trades appended/);
      const ids = readFileSync(join(dir, 't.csv'), 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(',')[2]);
      assert.equal(ids.length, 1000, 'every trade once');
      assert.equal(new Set(ids).size, 1000, 'none twice');
    } finally {
      await srv.close();
    }
  });

  it('cryptocast backfill writes a trades CSV whose candles equal those of the original recording', async () => {
    const srv = await server(250);
    const dir = scratchDir('bf-cli-');
    const run = promisify(execFile);
    try {
      const env = { ...process.env, CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: '0' };
      const r = await run(join(ROOT, 'bin/cryptocast'), backfillArgs(srv, dir), { env });
      assert.match(r.stderr, /done: 1,000 trades appended/);
      assert.ok(existsSync(join(dir, 's.json')));
      await run(join(ROOT, 'bin/cryptocast'), [
        'candles',
        '--input',
        join(dir, 't.csv'),
        '--output',
        join(dir, 'a.csv'),
      ]);
      await run(join(ROOT, 'bin/cryptocast'), [
        'candles',
        '--input',
        KRAKEN_REST_TRADES,
        '--output',
        join(dir, 'b.csv'),
      ]);
      assert.equal(readFileSync(join(dir, 'a.csv'), 'utf8'), readFileSync(join(dir, 'b.csv'), 'utf8'));
    } finally {
      await srv.close();
    }
  });
});

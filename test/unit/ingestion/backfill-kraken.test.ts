import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { KrakenRestBackfill } from '../../../src/ingestion/backfill/kraken-rest.ts';
import { KRAKEN_REST_TRADES } from '../../support/data.ts';
import { krakenRecordedTrades } from '../../support/exchanges/fixtures.ts';
import { KrakenServer } from '../../support/exchanges/kraken.ts';
import { RecordingSink } from '../../support/sink.ts';

const real = krakenRecordedTrades();
const PAIR = 'BTC/USDT';
const since = Date.UTC(2025, 10, 10, 17, 0);
const until = Date.UTC(2025, 10, 11, 1, 0);
const ROOT = join(import.meta.dirname, '..', '..', '..');

async function server(pageSize: number): Promise<KrakenServer> {
  const s = await new KrakenServer().listen();
  s.pageSize = pageSize;
  s.publish(PAIR, real);
  return s;
}

describe('Kraken REST Trades backfill against a local Kraken server', () => {
  it('pages through the `last` cursor, keeps every trade once, ends with a final watermark', async () => {
    const srv = await server(100);
    try {
      const sink = new RecordingSink();
      const pages: number[] = [];
      const src = new KrakenRestBackfill({
        pair: PAIR,
        sinceMs: since,
        untilMs: until,
        baseUrl: srv.restUrl,
        minIntervalMs: 0,
        onProgress: (p) => pages.push(p.pages),
      });
      await src.run(sink, new AbortController().signal);
      assert.deepEqual(
        sink.ids(PAIR),
        real.map((t) => t.id),
      );
      assert.equal(sink.received.length, 1000, 'no duplicates');
      assert.ok(pages.length >= 10);
      assert.equal(
        srv.restCalls[0],
        `/0/public/Trades?pair=XBTUSDT&since=${BigInt(since) * 1_000_000n - 1n}`,
      );
      const last = sink.watermarks.at(-1)!;
      assert.equal(last.final, true);
      assert.equal(last.ts, Math.max(...sink.received.map((t) => t.tradeTs)));
    } finally {
      await srv.close();
    }
  });

  it('backs off on EAPI:Rate limit exceeded and carries on', async () => {
    const srv = await server(500);
    srv.rateLimitNext = 2;
    try {
      const sink = new RecordingSink();
      let retries = 0;
      const src = new KrakenRestBackfill({
        pair: PAIR,
        sinceMs: since,
        untilMs: until,
        baseUrl: srv.restUrl,
        minIntervalMs: 0,
        backoff: { initialMs: 10, maxMs: 50 },
        onProgress: (p) => {
          retries = p.retries;
        },
      });
      await src.run(sink, new AbortController().signal);
      assert.equal(sink.received.length, 1000);
      assert.equal(retries, 2);
    } finally {
      await srv.close();
    }
  });

  it('resumes from its state file after being stopped, without refetching or losing trades', async () => {
    const srv = await server(100);
    const stateFile = join(mkdtempSync(join(tmpdir(), 'bf-')), 'state.json');
    try {
      const first = new RecordingSink();
      const abort = new AbortController();
      const src1 = new KrakenRestBackfill({
        pair: PAIR,
        sinceMs: since,
        untilMs: until,
        baseUrl: srv.restUrl,
        stateFile,
        minIntervalMs: 0,
        onProgress: (p) => p.pages === 3 && abort.abort(),
      });
      await src1.run(first, abort.signal);
      assert.ok(
        first.received.length >= 200 && first.received.length < 1000,
        `first run stopped after ${first.received.length}`,
      );
      const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
      assert.equal(saved.done, false);
      const callsBefore = srv.restCalls.length;
      const second = new RecordingSink();
      await new KrakenRestBackfill({
        pair: PAIR,
        sinceMs: since,
        untilMs: until,
        baseUrl: srv.restUrl,
        stateFile,
        minIntervalMs: 0,
      }).run(second, new AbortController().signal);
      assert.equal(
        srv.restCalls[callsBefore],
        `/0/public/Trades?pair=XBTUSDT&since=${BigInt(saved.cursor) - 1n}`,
        'resumed at the saved cursor',
      );
      const all = [...first.received, ...second.received].map((t) => Number(t.tradeId));
      assert.deepEqual(
        all,
        real.map((t) => t.id),
        'every trade exactly once, in order',
      );
      assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).done, true);
    } finally {
      await srv.close();
    }
  });

  it('refuses an unknown pair and an empty time range clearly', () => {
    assert.throws(
      () => new KrakenRestBackfill({ pair: 'DOGE/JPY', sinceMs: since }),
      /no mapping for pair DOGE\/JPY/,
    );
    assert.throws(
      () => new KrakenRestBackfill({ pair: PAIR, sinceMs: until, untilMs: since }),
      /must be after/,
    );
  });

  it('cryptocast backfill writes a trades CSV whose candles equal those of the original recording', async () => {
    const srv = await server(250);
    const dir = mkdtempSync(join(tmpdir(), 'bf-cli-'));
    const run = promisify(execFile);
    try {
      const env = { ...process.env, CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: '0' };
      const args = [
        'backfill',
        '--exchange',
        'kraken',
        '--pair',
        'BTC/USDT',
        '--since',
        '2025-11-10T17:00:00Z',
        '--until',
        '2025-11-11T01:00:00Z',
      ];
      const r = await run(
        join(ROOT, 'bin/cryptocast'),
        [...args, '--base-url', srv.restUrl, '--output', join(dir, 't.csv'), '--state', join(dir, 's.json')],
        { env },
      );
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
      const bad = await run(
        join(ROOT, 'bin/cryptocast'),
        ['backfill', '--exchange', 'kraken', '--pair', 'DOGE/JPY', '--since', '2025-11-10T17:00:00Z'],
        { env },
      ).catch((e) => e);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /no mapping for pair DOGE\/JPY/);
    } finally {
      await srv.close();
    }
  });
});

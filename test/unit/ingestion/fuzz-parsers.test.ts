import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { readTradeFile, type TradeFileFormat } from '../../../src/ingestion/files/readers.ts';
import {
  type Parsed,
  parseBinanceFrame,
  parseCoinbaseFrame,
  parseKrakenFrame,
} from '../../../src/ingestion/live/parsers.ts';
import { TradeSchema } from '../../../src/schemas/trade.ts';
import {
  REAL_BINANCE_TRADE as binanceTrade,
  REAL_COINBASE_TRADE as coinbaseTrade,
  REAL_KRAKEN_TRADE as krakenTrade,
  mutateFields,
} from '../../support/fuzz.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * Property-based fuzzing of every parser with malformed and hostile input: wrong types, NaN/Infinity,
 * negative or huge numbers, missing fields, giant payloads, random bytes. Properties: never throws; every
 * trade it yields passes the Trade schema; every input yields at least one trade, control or reject (nothing
 * silently vanishes); rejects carry a reason.
 */
const hostileValue = fc.oneof(
  fc.constant(null),
  fc.constant(Number.NaN),
  fc.constant('NaN'),
  fc.constant('Infinity'),
  fc.constant('-1'),
  fc.constant('1e400'),
  fc.constant(-5),
  fc.constant(1e308),
  fc.constant(''),
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.boolean(),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.constant({}),
);

const mutate = (base: Record<string, unknown>) => mutateFields(base, hostileValue);

const frames = {
  kraken: fc.oneof(
    fc.constant(JSON.stringify({ channel: 'trade', type: 'update', data: [krakenTrade] })),
    mutate(krakenTrade).map((d) => JSON.stringify({ channel: 'trade', type: 'update', data: [d] })),
    mutate({ channel: 'trade', type: 'snapshot', data: [krakenTrade] }).map((m) => JSON.stringify(m)),
    mutate({ method: 'subscribe', result: { channel: 'trade', symbol: 'BTC/USD' }, success: true }).map((m) =>
      JSON.stringify(m),
    ),
  ),
  binance: fc.oneof(
    fc.constant(JSON.stringify({ stream: 'btcusdt@trade', data: binanceTrade })),
    mutate(binanceTrade).map((d) => JSON.stringify({ stream: 'btcusdt@trade', data: d })),
    mutate(binanceTrade).map((d) => JSON.stringify(d)),
  ),
  coinbase: fc.oneof(
    fc.constant(
      JSON.stringify({
        channel: 'market_trades',
        sequence_num: 1,
        events: [{ type: 'update', trades: [coinbaseTrade] }],
      }),
    ),
    mutate(coinbaseTrade).map((t) =>
      JSON.stringify({
        channel: 'market_trades',
        sequence_num: 1,
        events: [{ type: 'update', trades: [t] }],
      }),
    ),
    mutate({ channel: 'heartbeats', sequence_num: 2, events: [{ heartbeat_counter: 3 }] }).map((m) =>
      JSON.stringify(m),
    ),
  ),
};

const junk = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.json(),
  fc.constant('{"channel":"trade","data":' + '['.repeat(5000) + ']'.repeat(5000) + '}'),
  fc.constant('x'.repeat(2 * 1024 * 1024)),
);

function checkParsed(p: Parsed): void {
  for (const t of p.trades) assert.ok(TradeSchema.safeParse(t).success, JSON.stringify(t));
  for (const r of p.rejects) assert.ok(r.reason.length > 0);
  assert.ok(p.trades.length + p.controls.length + p.rejects.length > 0, 'input vanished');
}

describe('fuzzing the live frame parsers', () => {
  const parsers = {
    kraken: (s: string) => parseKrakenFrame(s, Date.now()),
    binance: (s: string) => parseBinanceFrame(s, Date.now()),
    coinbase: (s: string) => parseCoinbaseFrame(s, Date.now()),
  };
  for (const [name, parse] of Object.entries(parsers)) {
    it(`${name}: mutated real messages and junk never crash, and every output is valid or explained`, () => {
      let trades = 0;
      let rejects = 0;
      fc.assert(
        fc.property(fc.oneof(frames[name as keyof typeof frames], junk), (text) => {
          const p = parse(text);
          checkParsed(p);
          trades += p.trades.length;
          rejects += p.rejects.length;
        }),
        { numRuns: 1500 },
      );
      assert.ok(trades > 50 && rejects > 200, `meaningful mix: ${trades} trades, ${rejects} rejects`);
    });
  }
});

describe('fuzzing the recorded-file readers', () => {
  const dir = scratchDir('fuzz-');
  let n = 0;
  async function read(content: string | Buffer, format: TradeFileFormat) {
    const path = join(dir, `f${n++}`);
    writeFileSync(path, content);
    const out = { trades: 0, rejects: 0 };
    for await (const b of readTradeFile(path, { format, pair: format === 'csv' ? 'BTC/USD' : undefined })) {
      for (const t of b.trades) assert.ok(TradeSchema.safeParse(t).success);
      for (const r of b.rejects) assert.ok(r.reason.length > 0 && r.line > 0);
      out.trades += b.trades.length;
      out.rejects += b.rejects.length;
    }
    return out;
  }
  const line = (cells: unknown[]) => cells.map((c) => String(c)).join(',');

  it('Binance capture lines: every line is a trade or a reject', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            mutate(binanceTrade).map(
              (d) => `1723161254087896568 ${JSON.stringify({ stream: 'btcusdt@trade', data: d })}`,
            ),
            junk.filter((s) => !s.includes('\n') && s.trim() !== '' && s.length < 70_000),
          ),
          { minLength: 1, maxLength: 20 },
        ),
        async (lines) => {
          const clean = lines
            .map((l) => l.replace(/[\r\n\u2028\u2029]/g, ' '))
            .filter((l) => l.trim() !== '');
          fc.pre(clean.length > 0);
          const r = await read(clean.join('\n'), 'binance-ws-capture');
          assert.equal(r.trades + r.rejects, clean.length);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('trade CSVs (Kraken, Binance, generic): no crash, every data row a trade or a reject', async () => {
    const cell = fc.oneof(
      hostileValue.map(String),
      fc.constantFrom('1561939203172', '10749.4', '0.004', 'buy', 'sell', 'true'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<TradeFileFormat>('kraken-csv', 'binance-trades-csv', 'csv'),
        fc.array(fc.array(cell, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 15 }),
        async (format, rows) => {
          const headers: Record<string, string> = {
            'kraken-csv': 'time_ms,timestamp_utc,side,price,amount',
            'binance-trades-csv': 'id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch',
            csv: 'timestamp,price,qty,side',
          };
          const header = headers[format]!;
          const body = rows
            .map((r) => line(r.map((c) => c.replace(/[",\r\n]/g, ''))))
            .filter((l) => l.trim() !== '');
          fc.pre(body.length > 0);
          const r = await read([header, ...body].join('\n'), format);
          assert.ok(r.trades + r.rejects <= body.length + 1);
          assert.ok(r.trades + r.rejects >= 1);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('Kraken REST JSON, gzip or not, with hostile rows: no crash', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(hostileValue, { maxLength: 8 }), { maxLength: 10 }),
        fc.boolean(),
        async (rows, gz) => {
          const doc = JSON.stringify({ error: [], result: { XBTUSDT: rows, last: '1' } });
          const r = await read(gz ? gzipSync(doc) : doc, 'kraken-rest-json');
          assert.equal(r.trades + r.rejects, rows.length);
        },
      ),
      { numRuns: 150 },
    );
    assert.deepEqual(await read('{"error":["EQuery:Unknown asset pair"]}', 'kraken-rest-json'), {
      trades: 0,
      rejects: 1,
    });
    assert.deepEqual(await read(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'kraken-rest-json'), {
      trades: 0,
      rejects: 1,
    });
  });
});

describe('edge cases the fuzzers found', () => {
  it('an empty Kraken snapshot is seen (a control), not lost', () => {
    const p = parseKrakenFrame('{"channel":"trade","type":"snapshot","data":[]}', Date.now());
    assert.equal(p.trades.length + p.rejects.length, 0);
    assert.deepEqual(p.controls, [{ type: 'ignored', what: 'empty trade snapshot' }]);
  });

  it('a Coinbase heartbeats message without events is rejected with a reason; a corrupt gzip is a reject, not a crash', () => {
    const p = parseCoinbaseFrame('{"channel":"heartbeats","sequence_num":"","events":null}', Date.now());
    assert.match(p.rejects[0]!.reason, /without an events array/);
  });
});

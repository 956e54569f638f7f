import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { parseBinanceCaptureLine } from '../../../../src/ingestion/files/binance-capture.ts';
import type { ParseContext } from '../../../../src/ingestion/files/context.ts';
import { csvLineParser } from '../../../../src/ingestion/files/csv.ts';
import { parseKrakenRestTrades } from '../../../../src/ingestion/files/kraken-rest.ts';
import { isBadLine, type LineItem, splitLines } from '../../../../src/ingestion/files/lines.ts';
import {
  readTradeFile,
  TradeFileError,
  type TradeFileFormat,
} from '../../../../src/ingestion/files/readers.ts';
import { isReject, type RowResult } from '../../../../src/ingestion/files/row.ts';
import { TradeSchema } from '../../../../src/schemas/trade.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV } from '../../../support/data.ts';
import { mutateFields, REAL_BINANCE_TRADE as realEvent } from '../../../support/fuzz.ts';
import { scratchDir } from '../../../support/scratch.ts';

/**
 * Property-based fuzzing of every recorded-file reader and line parser with hostile input: wrong types,
 * NaN/Infinity, negative or huge numbers, missing fields, giant lines, random bytes, bad UTF-8, bad gzip.
 * Properties: never throws; every trade passes the schema; every bad row is a reject with a reason and its
 * line; nothing vanishes (trades + rejects = rows). And the converse, so that a parser rejecting everything
 * cannot pass: well-formed generated rows come out as exactly the trade they describe.
 */
const RUNS = { numRuns: 1000 };
const ctx = (pair?: string): ParseContext => ({ pair, exchange: 'test', file: 'fuzz' });

function checkResult(r: RowResult | undefined, n: number, payload: string): void {
  assert.ok(r !== undefined, 'a data line always gives a result');
  if (isReject(r)) {
    assert.ok(r.reason.length > 0, 'a reject has a reason');
    assert.equal(r.line, n);
    assert.equal(r.payload, payload);
  } else assert.ok(TradeSchema.safeParse(r).success, JSON.stringify(r));
}

// ——— hostile material ———

const hostile = fc.oneof(
  fc.constantFrom(null, Number.NaN, 'NaN', 'Infinity', '-Infinity', '-1', '0', '1e400', -5, 1e308, '', true),
  fc.constantFrom('9'.repeat(400), '0x1F', ' 12 ', '1_000', '١٢٣', '\u0000', '"', 'null'),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 30 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.constant({}),
);

const mutate = (base: Record<string, unknown>) => mutateFields(base, hostile);

/** A real row's cells with some replaced by hostile text, dropped or added. */
function mutateCells(base: string[]) {
  return fc
    .record({
      replace: fc.dictionary(
        fc.integer({ min: 0, max: base.length - 1 }).map(String),
        hostile.map((v) => String(typeof v === 'object' ? JSON.stringify(v) : v)),
        { maxKeys: 3 },
      ),
      cut: fc.integer({ min: 0, max: 2 }),
      extra: fc.array(fc.string({ maxLength: 6 }), { maxLength: 2 }),
    })
    .map(({ replace, cut, extra }) => {
      const cells = base.map((c, i) => replace[String(i)] ?? c);
      return [...cells.slice(0, cells.length - cut), ...(cut === 0 ? extra : [])]
        .join(',')
        .replace(/[\r\n]/g, ' ');
    });
}

const junkLine = fc
  .oneof(
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
    fc.json(),
    fc.constant('1723161254087896568 ' + '['.repeat(3000) + ']'.repeat(3000)),
  )
  .map((s) => s.replace(/[\r\n]/g, ' '));

// ——— well-formed material, with the trade it must give ———

const decimalText = fc
  .tuple(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 99_999_999 }))
  .filter(([i, f]) => i > 0 || f > 0)
  .map(([i, f]) => `${i}.${String(f).padStart(8, '0')}`);
const epochMs = fc.integer({ min: 1_262_304_000_000, max: 4_000_000_000_000 });

const captureLine = (ev: Record<string, unknown>, recv = '1723161254087896568') =>
  `${recv} ${JSON.stringify({ stream: `${String(ev.s).toLowerCase()}@trade`, data: ev })}`;

describe('fuzzing the Binance capture line parser', () => {
  it('mutated real messages and junk: never throws; a valid trade or a reject with a reason', () => {
    let trades = 0;
    let rejects = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constant(captureLine(realEvent)),
          mutate(realEvent).map((ev) => captureLine(ev)),
          mutate(realEvent).map((ev) => `1723161254087896568 ${JSON.stringify(ev)}`),
          fc
            .tuple(
              fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 21n }).map(String), fc.string()),
              mutate(realEvent),
            )
            .map(([recv, ev]) => captureLine(ev, recv.replace(/[\s]/g, ''))),
          junkLine,
        ),
        (line) => {
          const r = parseBinanceCaptureLine(line, 7, ctx());
          checkResult(r, 7, line);
          if (isReject(r)) rejects++;
          else trades++;
        },
      ),
      RUNS,
    );
    assert.ok(trades > 150 && rejects > 300, `a meaningful mix: ${trades} trades, ${rejects} rejects`);
  });

  it('well-formed events give exactly the trade they describe', () => {
    fc.assert(
      fc.property(
        fc.record({
          s: fc.constantFrom('BTCUSDT', 'ETHUSDT', 'SOLUSDC', 'ETHBTC'),
          t: fc.maxSafeNat(),
          p: decimalText,
          q: decimalText,
          T: epochMs,
          m: fc.boolean(),
          recv: fc.bigInt({ min: 1_262_304_000_000_000_000n, max: 4_000_000_000_000_000_000n }),
        }),
        ({ recv, ...ev }) => {
          const r = parseBinanceCaptureLine(
            captureLine({ e: 'trade', E: ev.T, ...ev, M: true }, String(recv)),
            1,
            ctx(),
          );
          assert.ok(!isReject(r), isReject(r) ? r.reason : '');
          assert.deepEqual(
            [r.pair.replace('/', ''), r.tradeId, r.price, r.qty, r.tradeTs, r.receivedTs, r.side],
            [
              ev.s,
              String(ev.t),
              Number(ev.p),
              Number(ev.q),
              ev.T,
              Number(recv / 1_000_000n),
              ev.m ? 'sell' : 'buy',
            ],
          );
        },
      ),
      RUNS,
    );
  });
});

describe('fuzzing the CSV line parsers', () => {
  const layouts: {
    format: Exclude<TradeFileFormat, 'kraken-rest-json' | 'binance-ws-capture'>;
    header: string;
    real: string[];
  }[] = [
    {
      format: 'kraken-csv',
      header: 'time_ms,timestamp_utc,side,price,amount',
      real: ['1561939203172', '2019-07-01T00:00:03.172Z', 'sell', '10749.4', '0.004'],
    },
    {
      format: 'binance-trades-csv',
      header: 'id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch',
      real: ['3735683259', '61837.63', '0.02', '1236.7526', '1723161255342', 'True', 'True'],
    },
    {
      format: 'csv',
      header: 'timestamp,price,qty,side,id,pair',
      real: ['2024-08-09T00:00:00.5+02:00', '61837.63', '0.02', 'sell', 'x-1', 'BTC-USDT'],
    },
  ];
  for (const { format, header, real } of layouts) {
    it(`${format}: mutated real rows and junk never throw; a valid trade or a reject with a reason`, () => {
      let trades = 0;
      let rejects = 0;
      fc.assert(
        fc.property(
          fc.array(fc.oneof(fc.constant(real.join(',')), mutateCells(real), junkLine), {
            minLength: 1,
            maxLength: 5,
          }),
          (lines) => {
            const parser = csvLineParser(format, ctx(format === 'csv' ? undefined : 'BTC/USD'));
            assert.equal(parser.parse(header, 1), undefined, 'the header is taken as one');
            lines.forEach((line, i) => {
              if (line.trim() === '') return;
              const r = parser.parse(line, i + 2);
              checkResult(r, i + 2, line);
              if (isReject(r!)) rejects++;
              else trades++;
            });
          },
        ),
        { numRuns: 400 },
      );
      assert.ok(
        trades > 150 && rejects > 300,
        `${format}: a meaningful mix: ${trades} trades, ${rejects} rejects`,
      );
    });
  }

  it('well-formed rows of every layout give exactly the trade they describe', () => {
    fc.assert(
      fc.property(
        epochMs,
        decimalText,
        decimalText,
        fc.boolean(),
        fc.maxSafeNat(),
        (ms, price, qty, sell, id) => {
          const side = sell ? 'sell' : 'buy';
          const kraken = csvLineParser('kraken-csv', ctx('BTC/USD'));
          const k = kraken.parse(`${ms},${new Date(ms).toISOString()},${side},${price},${qty}`, 9)!;
          const binance = csvLineParser('binance-trades-csv', ctx('BTC/USDT'));
          const b = binance.parse(`${id},${price},${qty},1,${ms}${ms % 2 ? '000' : ''},${sell},True`, 9)!;
          const generic = csvLineParser('csv', ctx());
          generic.parse('price,time,qty,side,symbol', 1);
          const g = generic.parse(`"${price}",${ms / 1000},${qty},${side.toUpperCase()},ethusdt`, 9)!;
          for (const r of [k, b, g]) {
            assert.ok(!isReject(r), isReject(r) ? r.reason : '');
            assert.deepEqual([r.price, r.qty, r.tradeTs, r.side], [Number(price), Number(qty), ms, side]);
          }
          assert.equal((k as { tradeId: string }).tradeId, `${ms}-9`);
          assert.equal((b as { tradeId: string }).tradeId, String(id));
          assert.equal((g as { pair: string }).pair, 'ETH/USDT');
        },
      ),
      RUNS,
    );
  });
});

describe('fuzzing the Kraken REST JSON parser', () => {
  const realRow = ['105433.60000', '0.00027625', 1762795433.9717445, 'b', 'l', '', 10218208];
  const doc = (rows: unknown[]) =>
    JSON.stringify({ error: [], result: { XBTUSDT: rows, last: '1762795433971744500' } });

  it('hostile rows and documents: never throws; one result per row; valid trades or explained rejects', () => {
    let trades = 0;
    let rejects = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.constant(realRow),
            fc.array(hostile, { maxLength: 8 }),
            mutate(Object.fromEntries(realRow.map((v, i) => [String(i), v]))).map((o) =>
              Array.from({ length: 7 }, (_, i) => o[String(i)]),
            ),
          ),
          { maxLength: 10 },
        ),
        (rows) => {
          const out = parseKrakenRestTrades(doc(rows), ctx());
          assert.equal(out.length, rows.length);
          out.forEach((r, i) => {
            checkResult(r, i + 1, isReject(r) ? r.payload : '');
            if (isReject(r)) rejects++;
            else trades++;
          });
        },
      ),
      RUNS,
    );
    assert.ok(trades > 100 && rejects > 300, `a meaningful mix: ${trades} trades, ${rejects} rejects`);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json(),
          fc.string(),
          mutate({ error: [], result: { XBTUSDT: [realRow] } }).map((o) => JSON.stringify(o)),
        ),
        (text) => {
          const out = parseKrakenRestTrades(text, ctx());
          for (const r of out)
            if (isReject(r)) assert.ok(r.reason.length > 0 && r.line >= 1);
            else assert.ok(TradeSchema.safeParse(r).success);
          assert.ok(out.length > 0, 'a document always gives something: a row or why it has none');
        },
      ),
      { numRuns: 500, examples: [['{"error":[],"result":{"XBTUSDT":[["1","1",1,"b","l","",1]]}}']] },
    );
  });

  it('well-formed rows give exactly the trade they describe, times to the truncated millisecond', () => {
    fc.assert(
      fc.property(
        decimalText,
        decimalText,
        fc.integer({ min: 1_262_304_000, max: 4_000_000_000 }),
        fc.integer({ min: 0, max: 9_999_999 }),
        fc.constantFrom('b', 's'),
        fc.maxSafeNat(),
        (price, qty, sec, frac, side, id) => {
          const time = `${sec}.${String(frac).padStart(7, '0')}`;
          const text = `{"error":[],"result":{"XXBTZUSD":[["${price}","${qty}",${time},"${side}","l","",${id}]],"last":"1"}}`;
          const [r] = parseKrakenRestTrades(text, ctx());
          assert.ok(r !== undefined && !isReject(r), r && isReject(r) ? r.reason : '');
          assert.deepEqual(
            [r.pair, r.price, r.qty, r.tradeTs, r.side, r.tradeId],
            [
              'BTC/USD',
              Number(price),
              Number(qty),
              sec * 1000 + Math.floor(frac / 10_000),
              side === 'b' ? 'buy' : 'sell',
              String(id),
            ],
          );
        },
      ),
      RUNS,
    );
  });
});

describe('fuzzing the line splitter', () => {
  async function split(bytes: Buffer, cuts: number[], maxBytes: number): Promise<LineItem[]> {
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let at = 0;
    for (const p of [...points, bytes.length]) {
      chunks.push(bytes.subarray(at, p));
      at = p;
    }
    const items: LineItem[] = [];
    async function* source() {
      yield* chunks;
    }
    for await (const batch of splitLines(source(), maxBytes)) items.push(...batch);
    return items;
  }

  it('any bytes, cut anywhere: the same lines, one item per line, bad UTF-8 and giant lines reported', async () => {
    const piece = fc.constantFrom(
      ...['a', 'é', '€', ',', '\n', '\r\n', '\r', '\ufeff'].map((t) => Buffer.from(t)),
      Buffer.from([0xff]), // never valid in UTF-8
      Buffer.from([0xe2, 0x82]), // a cut multi-byte character
      Buffer.alloc(70, 'x'), // over the 64-byte limit used here
    );
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
      fc.array(piece, { maxLength: 60 }).map((ps) => Buffer.concat(ps)),
    );
    await fc.assert(
      fc.asyncProperty(bytes, fc.array(fc.nat(), { maxLength: 6 }), async (buf, cuts) => {
        const maxBytes = 64;
        const whole = await split(buf, [], maxBytes);
        assert.deepEqual(await split(buf, cuts, maxBytes), whole, 'independent of chunk boundaries');
        // Expected, independently: the segments between newlines (the last one only if not empty).
        const segments: Buffer[] = [];
        let start = 0;
        for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, start)) {
          segments.push(buf.subarray(start, i));
          start = i + 1;
        }
        if (start < buf.length) segments.push(buf.subarray(start));
        assert.equal(whole.length, segments.length);
        whole.forEach((item, i) => {
          assert.equal(item.n, i + 1);
          const seg = segments[i]!;
          if (seg.length > maxBytes)
            assert.ok(isBadLine(item) && /longer than the 64 allowed/.test(item.error));
          else if (!isUtf8(seg)) assert.ok(isBadLine(item) && item.error === 'not valid UTF-8');
          else {
            assert.ok(!isBadLine(item));
            let text = seg.toString('utf8').replace(/\r$/, '');
            if (i === 0) text = text.replace(/^\ufeff/, '');
            assert.equal(item.text, text);
          }
        });
      }),
      { numRuns: 500 },
    );
  });
});

describe('fuzzing whole files: random bytes, bad UTF-8, giant lines, bad gzip', () => {
  const dir = scratchDir('cc-fuzz-files-');
  let n = 0;
  async function read(content: Buffer, format: TradeFileFormat) {
    const path = join(dir, `f${n++}`);
    writeFileSync(path, content);
    const out = { trades: 0, rejects: [] as { line: number; reason: string }[] };
    for await (const b of readTradeFile(path, { format, pair: 'BTC/USD' })) {
      for (const t of b.trades) assert.ok(TradeSchema.safeParse(t).success);
      for (const r of b.rejects) assert.ok(r.reason.length > 0 && r.line > 0);
      out.trades += b.trades.length;
      out.rejects.push(...b.rejects);
    }
    return out;
  }
  const realCapture = gunzipSync(readFileSync(BINANCE_CAPTURE)).toString('utf8').split('\n').slice(0, 50);
  const realKraken = readFileSync(KRAKEN_2019_CSV, 'utf8').split(/\r?\n/).slice(1, 50);
  const headers: Partial<Record<TradeFileFormat, string>> = {
    'kraken-csv': 'time_ms,timestamp_utc,side,price,amount\n',
    'binance-trades-csv': '',
    csv: 'timestamp,price,qty,side\n',
  };
  /** A line of real data, damaged or not: an invalid byte, a cut multi-byte character, random bytes. */
  const line = (real: string[]) =>
    fc.oneof(
      fc.constantFrom(...real).map((l) => Buffer.from(l)),
      fc
        .tuple(fc.constantFrom(...real), fc.nat(), fc.constantFrom(0xff, 0x80, 0xc3, 0xed))
        .map(([l, at, b]) => {
          const buf = Buffer.from(l);
          buf[at % buf.length] = b;
          return buf;
        }),
      fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b.filter((x) => x !== 10))),
    );

  it('line formats: never throws, and every non-blank line is a trade or a reject', async () => {
    const nonBlank = (lines: Buffer[]) =>
      lines.filter((l) => !isUtf8(l) || l.toString('utf8').replace(/\r$/, '').trim() !== '').length;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<TradeFileFormat>('binance-ws-capture', 'kraken-csv', 'binance-trades-csv', 'csv'),
        fc.array(line([...realCapture, ...realKraken]), { minLength: 1, maxLength: 30 }),
        fc.boolean(),
        async (format, lines, gz) => {
          const body = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
          const content = Buffer.concat([Buffer.from(headers[format] ?? ''), body]);
          const r = await read(gz ? gzipSync(content) : content, format);
          assert.equal(r.trades + r.rejects.length, nonBlank(lines));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a giant line costs one reject (its start kept), the lines around it are read', async () => {
    const giant = Buffer.alloc(5 * 1024 * 1024, 'x');
    const content = Buffer.concat([
      Buffer.from(realCapture.slice(0, 3).join('\n') + '\n'),
      giant,
      Buffer.from('\n' + realCapture.slice(3, 6).join('\n')),
    ]);
    const r = await read(gzipSync(content), 'binance-ws-capture');
    assert.equal(r.trades, 6);
    assert.deepEqual(
      r.rejects.map((x) => x.line),
      [4],
    );
    assert.match(r.rejects[0]!.reason, /line of 5242880 bytes, longer than the 65536 allowed/);
  });

  it('damaged gzip (cut or bytes flipped) and damaged zip never throw; a cut is always reported', async () => {
    const formats: TradeFileFormat[] = [
      'binance-ws-capture',
      'kraken-rest-json',
      'binance-trades-csv',
      'kraken-csv',
      'csv',
    ];
    const gz = new Map(formats.map((f) => [f, gzipSync((headers[f] ?? '') + realCapture.join('\n'))]));
    /** A damaged header may make a CSV unusable: that, and only that, is a usage error. */
    const readDamaged = async (content: Buffer, format: TradeFileFormat) => {
      try {
        return await read(content, format);
      } catch (err) {
        assert.ok(
          err instanceof TradeFileError && /header/.test(err.message) && /csv/.test(format),
          String(err),
        );
        return undefined;
      }
    };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...formats),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 255 })), {
          maxLength: 3,
        }),
        async (format, cutAt, flips) => {
          const whole = gz.get(format)!;
          const cut = 1 + Math.floor(cutAt * (whole.length - 2));
          const cutFile = await readDamaged(whole.subarray(0, cut), format);
          if (format === 'binance-ws-capture') assert.ok(cutFile!.rejects.length >= 1, 'a cut gzip says so');
          const damaged = Buffer.from(whole);
          for (const [at, x] of flips) {
            const i = Math.floor(at * (damaged.length - 1));
            damaged[i] = damaged[i]! ^ x;
          }
          await readDamaged(damaged, format);
          await readDamaged(
            Buffer.concat([Buffer.from([0x50, 0x4b, 3, 4]), damaged.subarray(0, cut)]),
            format,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('random bytes as a Kraken REST document: one explained reject, no throw', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.boolean(), async (bytes, gz) => {
        const content = Buffer.from(bytes);
        const r = await read(gz ? gzipSync(content) : content, 'kraken-rest-json');
        assert.equal(r.trades, 0);
        assert.equal(r.rejects.length, 1);
      }),
      { numRuns: 300 },
    );
  });
});

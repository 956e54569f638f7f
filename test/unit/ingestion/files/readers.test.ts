import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import {
  detectTradeFileFormat,
  type ReadOptions,
  readTradeFile,
  TradeFileError,
  type TradeFileReject,
} from '../../../../src/ingestion/files/readers.ts';
import { type Trade, TradeSchema } from '../../../../src/schemas/trade.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV, KRAKEN_REST_TRADES, SHARED_DATA } from '../../../support/data.ts';
import { scratchDir } from '../../../support/scratch.ts';

/**
 * The readers on the real recordings in shared/data (never copied into the repository): the counts, ids,
 * sides and first/last values their READMEs document, exact time conversion, and the same trades through
 * every other layout and compression (variants are derived from the real files into a temporary folder).
 */
async function readAll(path: string, options: ReadOptions = {}) {
  const trades: Trade[] = [];
  const rejects: TradeFileReject[] = [];
  for await (const b of readTradeFile(path, options)) {
    trades.push(...b.trades);
    rejects.push(...b.rejects);
  }
  return { trades, rejects };
}

const tmp = scratchDir('cc-files-');
function tmpFile(name: string, content: string | Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}
const count = (ts: readonly Trade[], f: (t: Trade) => boolean) => ts.filter(f).length;
/** The market content of a trade (what every layout of the same trades must agree on). */
const market = (t: Trade) => [t.pair, t.price, t.qty, t.side, t.tradeTs];
const csvLines = (path: string) => readFileSync(path, 'utf8').trim().split(/\r?\n/);

describe('Kraken REST Trades JSON (public_Trades_XBTUSDT_1000.json)', () => {
  it('has the 1,000 documented trades: ids 10218208..10219207, b 578 / s 422, no rejects', async () => {
    const { trades, rejects } = await readAll(KRAKEN_REST_TRADES);
    assert.deepEqual(rejects, []);
    assert.equal(trades.length, 1000);
    assert.deepEqual(
      trades.map((t) => t.tradeId),
      Array.from({ length: 1000 }, (_, i) => String(10218208 + i)),
    );
    assert.equal(
      count(trades, (t) => t.side === 'buy'),
      578,
    );
    assert.equal(
      count(trades, (t) => t.side === 'sell'),
      422,
    );
    for (const t of trades) {
      assert.ok(TradeSchema.safeParse(t).success);
      assert.equal(t.receivedTs, t.tradeTs, 'no receive time in the file');
      assert.deepEqual([t.exchange, t.pair], ['kraken', 'BTC/USDT']);
    }
  });

  it('first and last trades equal the file, times converted from their decimals', async () => {
    const { trades } = await readAll(KRAKEN_REST_TRADES);
    const first = trades[0]!;
    const last = trades[999]!;
    // ["105433.60000","0.00027625",1762795433.9717445,"b","l","",10218208]
    assert.deepEqual(
      [first.price, first.qty, first.tradeTs, first.side, first.tradeId],
      [105433.6, 0.00027625, 1762795433971, 'buy', '10218208'],
    );
    // ["105899.40000","0.00009443",1762820035.9822779,"s","m","",10219207]; "last":"1762820035982277754"
    assert.deepEqual(
      [last.price, last.qty, last.tradeTs, last.side, last.tradeId],
      [105899.4, 0.00009443, 1762820035982, 'sell', '10219207'],
    );
    const cursor = JSON.parse(readFileSync(KRAKEN_REST_TRADES, 'utf8')).result.last as string;
    assert.equal(last.tradeTs, Number(BigInt(cursor) / 1_000_000n));
  });

  it('keeps a trade at xx:59.9999999 in its minute, where the float would not', async () => {
    const time = '1762819199.9999999'; // 23:59:59.9999999 UTC
    const naive = Math.floor(Number(time) * 1000);
    assert.equal(naive % 60_000, 0, 'the double rounds up into the next minute (the bug this guards)');
    const doc = `{"error":[],"result":{"XXBTZUSD":[["100.0","1.0",${time},"s","m","",7],["100.0","1.0",1762820035.9822779,"b","l","",8]],"last":"1"}}`;
    const { trades, rejects } = await readAll(tmpFile('edge.json', doc));
    assert.deepEqual(rejects, []);
    assert.deepEqual(
      trades.map((t) => t.tradeTs),
      [1762819199999, 1762820035982],
    );
    assert.equal(trades[0]!.pair, 'BTC/USD', 'XXBTZUSD is Kraken’s name of BTC/USD');
  });

  it('maps Kraken pair names explicitly, takes a pair override, and rejects rows of an unknown pair', async () => {
    const row = '["100.0","1.0",1762819199.5,"b","l","",7]';
    const doc = (key: string) => `{"error":[],"result":{"${key}":[${row}],"last":"1"}}`;
    for (const [key, pair] of [
      ['XBTUSDT', 'BTC/USDT'],
      ['XXBTZUSD', 'BTC/USD'],
      ['XBTUSD', 'BTC/USD'],
      ['XETHZUSD', 'ETH/USD'],
      ['ETHUSD', 'ETH/USD'],
    ] as const)
      assert.equal((await readAll(tmpFile(`k-${key}.json`, doc(key)))).trades[0]!.pair, pair, key);
    const unknown = await readAll(tmpFile('k-unknown.json', doc('ZZZQQQ')));
    assert.equal(unknown.trades.length, 0);
    assert.match(unknown.rejects[0]!.reason, /unknown Kraken pair "ZZZQQQ".*--pair/);
    const overridden = await readAll(tmpFile('k-unknown2.json', doc('ZZZQQQ')), {
      pair: 'sol-usd',
      exchange: 'krakenx',
    });
    assert.deepEqual([overridden.trades[0]!.pair, overridden.trades[0]!.exchange], ['SOL/USD', 'krakenx']);
  });

  it('turns a Kraken error response into one reject with its message', async () => {
    const path = tmpFile('err.json', '{"error":["EQuery:Unknown asset pair"]}');
    const { trades, rejects } = await readAll(path, { format: 'kraken-rest-json' });
    assert.equal(trades.length, 0);
    assert.match(rejects[0]!.reason, /Kraken error: "EQuery:Unknown asset pair"/);
  });
});

describe('Binance websocket capture (binance_spot_ws_trade_…txt.gz)', () => {
  it('has 19,904 BTCUSDT + 14,515 ETHUSDT trades with contiguous ids, no rejects', async () => {
    const { trades, rejects } = await readAll(BINANCE_CAPTURE);
    assert.deepEqual(rejects, []);
    assert.equal(trades.length, 34419);
    for (const [pair, n, firstId] of [
      ['BTC/USDT', 19904, 3735683259],
      ['ETH/USDT', 14515, 1520538925],
    ] as const) {
      const ids = trades.filter((t) => t.pair === pair).map((t) => Number(t.tradeId));
      assert.equal(ids.length, n);
      assert.deepEqual(
        ids,
        Array.from({ length: n }, (_, i) => firstId + i),
        `${pair} ids contiguous and in order`,
      );
    }
    assert.ok(trades.every((t) => t.exchange === 'binance' && TradeSchema.safeParse(t).success));
  });

  it('first and last trades equal the file: T as trade time, the ns prefix as receive time, m ⇒ taker sold', async () => {
    const { trades } = await readAll(BINANCE_CAPTURE);
    const lines = gunzipSync(readFileSync(BINANCE_CAPTURE)).toString('utf8').trim().split('\n');
    assert.equal(trades.length, lines.length);
    const first = trades[0]!;
    const last = trades.at(-1)!;
    // 1723161254087896568 {…"t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true…}
    assert.deepEqual(
      [first.tradeId, first.price, first.qty, first.side, first.tradeTs, first.receivedTs],
      ['3735683259', 61837.63, 0.02, 'sell', 1723161255342, 1723161254087],
    );
    // 1723161904525430833 {…"t":3735703162,"p":"61602.02000000","q":"0.00536000","T":1723161905800,"m":false…}
    assert.deepEqual(
      [last.tradeId, last.price, last.qty, last.side, last.tradeTs, last.receivedTs],
      ['3735703162', 61602.02, 0.00536, 'buy', 1723161905800, 1723161904525],
    );
    const sells = lines.filter((l) => l.includes('"m":true')).length;
    assert.equal(
      count(trades, (t) => t.side === 'sell'),
      sells,
    );
    assert.ok(sells > 0 && sells < lines.length);
  });
});

describe('Kraken 2019 CSV (kraken_btcusd_trades_2019-07-01T00.csv)', () => {
  it('has 2,672 rows: 2,671 trades (buy 1,548 / sell 1,123), BTC/USD from the file name, and one exact repeat', async () => {
    const { trades, rejects } = await readAll(KRAKEN_2019_CSV);
    // Line 1002 repeats line 1001 byte for byte; the file has no trade ids, so it cannot be told from a second copy
    // of that trade: it is counted once and reported (before, it doubled its share of minute 00:12's volume).
    assert.deepEqual(
      rejects.map((r) => [r.line, r.reason]),
      [[1002, 'exact repeat of line 1001 and the file has no trade ids: counted once']],
    );
    assert.equal(trades.length, 2671);
    assert.equal(
      count(trades, (t) => t.side === 'buy'),
      1548,
    );
    assert.equal(
      count(trades, (t) => t.side === 'sell'),
      1123,
    );
    assert.ok(
      trades.every((t) => t.pair === 'BTC/USD' && t.exchange === 'kraken' && t.receivedTs === t.tradeTs),
    );
  });

  it('first and last rows equal the file; ids are <time_ms>-<line>, unique and stable across reads', async () => {
    const { trades } = await readAll(KRAKEN_2019_CSV);
    const first = trades[0]!;
    const last = trades.at(-1)!;
    // line 2: 1561939203172,2019-07-01T00:00:03.172Z,sell,10749.4,0.004
    assert.deepEqual(
      [first.tradeTs, first.side, first.price, first.qty, first.tradeId],
      [1561939203172, 'sell', 10749.4, 0.004, '1561939203172-2'],
    );
    // line 2673: 1561942791213,2019-07-01T00:59:51.213Z,sell,11014.3,0.003
    assert.deepEqual(
      [last.tradeTs, last.side, last.price, last.qty, last.tradeId],
      [1561942791213, 'sell', 11014.3, 0.003, '1561942791213-2673'],
    );
    assert.equal(new Set(trades.map((t) => t.tradeId)).size, 2671);
    assert.deepEqual(
      (await readAll(KRAKEN_2019_CSV)).trades.map((t) => t.tradeId),
      trades.map((t) => t.tradeId),
    );
  });

  it('rejects a row whose two time columns disagree, with the line and the original text', async () => {
    const text = csvLines(KRAKEN_2019_CSV).slice(0, 4);
    text[2] = text[2]!.replace('2019-07-01T00:00:05.224Z', '2019-07-01T00:01:05.224Z');
    const { trades, rejects } = await readAll(tmpFile('kraken_btcusd_bad.csv', text.join('\n')));
    assert.equal(trades.length, 2);
    assert.deepEqual(
      rejects.map((r) => [r.line, r.payload]),
      [[3, text[2]]],
    );
    assert.match(rejects[0]!.reason, /timestamp_utc .* does not match time_ms/);
  });
});

describe('the same trades in every other layout and compression', () => {
  const captureBtc = () =>
    gunzipSync(readFileSync(BINANCE_CAPTURE))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l.slice(l.indexOf(' ') + 1)).data)
      .filter((d) => d.s === 'BTCUSDT')
      .slice(0, 3000);
  /** Binance public-data rows: id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch. */
  const binanceRows = (timeUnit: 'ms' | 'us') =>
    captureBtc().map((d) => {
      const quote = (Number(d.p) * Number(d.q)).toFixed(8);
      const time = timeUnit === 'ms' ? `${d.T}` : `${d.T}123`;
      return `${d.t},${d.p},${d.q},${quote},${time},${d.m ? 'True' : 'False'},True`;
    });

  it('gzip and zip are read transparently (by magic bytes, whatever the name)', async () => {
    const plain = await readAll(KRAKEN_2019_CSV);
    const csv = readFileSync(KRAKEN_2019_CSV);
    for (const path of [
      tmpFile('kraken_btcusd_gz.csv.gz', gzipSync(csv)),
      tmpFile('kraken_btcusd_renamed.csv', gzipSync(csv)),
      tmpFile('kraken_btcusd_zip.zip', zipSync({ 'kraken_btcusd_trades_2019-07-01T00.csv': csv })),
    ]) {
      assert.equal(await detectTradeFileFormat(path), 'kraken-csv', path);
      assert.deepEqual((await readAll(path)).trades, plain.trades, path);
    }
    const json = readFileSync(KRAKEN_REST_TRADES);
    const gz = await readAll(tmpFile('public_Trades_XBTUSDT_1000.json.gz', gzipSync(json)));
    assert.deepEqual(gz.trades, (await readAll(KRAKEN_REST_TRADES)).trades);
  });

  it('Binance public-data trades CSV: headerless ms, headerless µs, futures header, zipped — equal the capture', async () => {
    const expected = (await readAll(BINANCE_CAPTURE)).trades
      .filter((t) => t.pair === 'BTC/USDT')
      .slice(0, 3000);
    const ms = binanceRows('ms');
    const futures = ['id,price,qty,quote_qty,time,is_buyer_maker', ...ms.map((r) => r.replace(/,True$/, ''))];
    const zipped = zipSync({ 'BTCUSDT-trades-2024-08-09.csv': Buffer.from(ms.join('\n')) });
    const variants = [
      tmpFile('BTCUSDT-trades-2024-08-08.csv', ms.join('\n') + '\n'),
      tmpFile('BTCUSDT-trades-2025-01-02.csv', binanceRows('us').join('\r\n')),
      tmpFile('BTCUSDT-trades-2024-08.csv', futures.join('\n')),
      tmpFile('BTCUSDT-trades-2024-08-09.zip', zipped),
    ];
    for (const path of variants) {
      assert.equal(await detectTradeFileFormat(path), 'binance-trades-csv', path);
      const { trades, rejects } = await readAll(path);
      assert.deepEqual(rejects, [], path);
      assert.deepEqual(trades.map(market), expected.map(market), path);
      assert.deepEqual(
        trades.map((t) => t.tradeId),
        expected.map((t) => t.tradeId),
      );
      assert.ok(trades.every((t) => t.exchange === 'binance'));
    }
    const eth = await readAll(tmpFile('ETHUSDT-trades-2024-08-08.csv', ms.slice(0, 3).join('\n')));
    assert.equal(eth.trades[0]!.pair, 'ETH/USDT', 'the pair comes from the file name');
  });

  it('generic CSV: ISO with offsets, epoch s/ms/µs, shuffled columns, pair column or option — equal the Kraken CSV', async () => {
    const { trades: expected } = await readAll(KRAKEN_2019_CSV);
    const rows = csvLines(KRAKEN_2019_CSV)
      .slice(1)
      .map((l) => l.split(',') as [string, string, string, string, string]);
    const iso2h = (ms: number) => new Date(ms + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    const variants: [string, string[], ReadOptions][] = [
      [
        'iso.csv',
        [
          'Timestamp,Price,Amount,Side,Pair',
          ...rows.map((r) => `${iso2h(Number(r[0]))},${r[3]},${r[4]},${r[2]},BTC-USD`),
        ],
        {},
      ],
      [
        'secs.csv',
        ['side,qty,price,time', ...rows.map((r) => `${r[2]},${r[4]},${r[3]},${Number(r[0]) / 1000}`)],
        { pair: 'BTC/USD' },
      ],
      [
        'millis.csv',
        ['tradeTs,price,size,side,symbol', ...rows.map((r) => `${r[0]},${r[3]},${r[4]},${r[2]},XBTUSD`)],
        {},
      ],
      [
        'micros.csv',
        ['date,price,volume,side', ...rows.map((r) => `${r[0]}417,"${r[3]}",${r[4]},${r[2].toUpperCase()}`)],
        { pair: 'btcusd' },
      ],
    ];
    for (const [name, lines, options] of variants) {
      const path = tmpFile(name, lines.join('\n'));
      assert.equal(await detectTradeFileFormat(path), 'csv', name);
      const { trades, rejects } = await readAll(path, options);
      // The source file's one exact repeat (line 1002) is an exact repeat in every layout too.
      assert.deepEqual(
        rejects.map((r) => r.line),
        [1002],
        name,
      );
      assert.deepEqual(trades.map(market), expected.map(market), name);
      assert.ok(
        trades.every((t) => t.exchange === 'file'),
        'exchange defaults to file',
      );
    }
  });

  it('generic CSV: ids from an id column, else <time>-<line>; exchange from the option', async () => {
    const path = tmpFile(
      'ids.csv',
      'time,price,qty,trade_id,symbol\n1723161255342,1.5,2,abc-1,ETHUSDT\n1723161255343,1.5,2,,ETHUSDT\n',
    );
    const { trades } = await readAll(path, { exchange: 'coinbase' });
    assert.deepEqual(
      trades.map((t) => [t.tradeId, t.pair, t.exchange, t.side]),
      [
        ['abc-1', 'ETH/USDT', 'coinbase', 'unknown'],
        ['1723161255343-3', 'ETH/USDT', 'coinbase', 'unknown'],
      ],
    );
  });
});

describe('rejects, never crashes, never drops', () => {
  it('every bad row of a CSV is a reject with its line, a reason and its text; the good rows are trades', async () => {
    const lines = [
      'timestamp,price,qty,side',
      '1723161255342,61837.63,0.02,sell', // 2 good
      '1723161255342,NaN,0.02,sell', // 3
      '1723161255342,61837.63,-1,buy', // 4
      '2024-08-09 00:00:00,61837.63,0.02,buy', // 5 no zone
      '1723161255342,61837.63,0.02,maybe', // 6
      '1723161255342,61837.63', // 7
      '', // 8 blank: not a row
      '1723161255343,"61,837.63",0.02,buy', // 9 quoted comma: not a decimal
      '1723161255343,0x10,1,buy', // 10
      '1723161255344,"61837.64",0.01,', // 11 good: quoted number, empty side
      '1723161255345,Infinity,1,buy', // 12
      '172316125534,1,1,buy', // 13 before 2009 in ms: a unit mistake
    ];
    const { trades, rejects } = await readAll(tmpFile('mixed.csv', lines.join('\n')), { pair: 'BTC/USDT' });
    assert.deepEqual(
      trades.map((t) => [t.price, t.side]),
      [
        [61837.63, 'sell'],
        [61837.64, 'unknown'],
      ],
    );
    assert.deepEqual(
      rejects.map((r) => r.line),
      [3, 4, 5, 6, 7, 9, 10, 12, 13],
    );
    for (const r of rejects) {
      assert.equal(r.payload, lines[r.line - 1], `line ${r.line} payload is the original text`);
      assert.ok(r.reason.length > 5, r.reason);
    }
    const reasons = new Map(rejects.map((r) => [r.line, r.reason]));
    assert.match(reasons.get(3)!, /price: not a decimal number/);
    assert.match(reasons.get(4)!, /qty/);
    assert.match(reasons.get(5)!, /ISO 8601 time with a zone/);
    assert.match(reasons.get(6)!, /side: not buy or sell/);
    assert.match(reasons.get(7)!, /2 cells, the header has 4/);
    assert.match(reasons.get(13)!, /before 2009/);
  });

  it('a truncated gzip yields the trades before the damage, then one reject saying so', async () => {
    const gz = readFileSync(BINANCE_CAPTURE);
    const { trades, rejects } = await readAll(tmpFile('cut.txt.gz', gz.subarray(0, gz.length >> 1)), {
      format: 'binance-ws-capture',
    });
    const all = (await readAll(BINANCE_CAPTURE)).trades;
    assert.ok(trades.length > 1000 && trades.length < all.length, `${trades.length} trades before the cut`);
    assert.deepEqual(trades, all.slice(0, trades.length));
    assert.equal(rejects.length, 1);
    assert.match(rejects[0]!.reason, /unreadable from here on: unexpected end of file/);
  });

  it('file-level mistakes are usage errors: missing file, unknown format, unusable header, bad pair', async () => {
    const ohlcv = tmpFile('ohlcv.csv', 'timestamp,open,high,low,close,volume\n1,2,3,4,5,6\n');
    await assert.rejects(readAll(join(tmp, 'nope.csv'), { format: 'csv' }), TradeFileError);
    await assert.rejects(readAll(join(tmp, 'nope.csv')), TradeFileError);
    await assert.rejects(
      readAll(KRAKEN_2019_CSV, { format: 'parquet' as 'csv' }),
      /unknown trade file format/,
    );
    await assert.rejects(readAll(ohlcv, { format: 'csv' }), /lacks price/);
    await assert.rejects(readAll(KRAKEN_2019_CSV, { pair: 'bitcoin' }), /not a pair/);
  });
});

describe('format detection on every shared file', () => {
  it('picks the right reader for each trade recording', async () => {
    assert.equal(await detectTradeFileFormat(KRAKEN_REST_TRADES), 'kraken-rest-json');
    assert.equal(await detectTradeFileFormat(BINANCE_CAPTURE), 'binance-ws-capture');
    assert.equal(await detectTradeFileFormat(KRAKEN_2019_CSV), 'kraken-csv');
  });

  it('refuses the shared files that are not trades, with a hint', async () => {
    const notTrades = [
      'btc-eth-trade-ticks/kraken-rest-xbtusdt-2025-11-10/public_OHLC_XBTUSDT_interval1.json',
      'bitstamp-btcusd-1m-2025-01/btcusd_bitstamp_1min_2025-01-07_2025-02-03.csv.gz',
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
    ];
    for (const f of notTrades)
      await assert.rejects(detectTradeFileFormat(join(SHARED_DATA, f)), (err: Error) => {
        assert.ok(err instanceof TradeFileError, f);
        assert.match(err.message, /OHLC|cannot tell the trade file format.*--format/);
        return true;
      });
  });

  it('falls back on the name only when the content says nothing', async () => {
    const empty = tmpFile('BTCUSDT-trades-2024-01-01.csv', '');
    assert.equal(await detectTradeFileFormat(empty), 'binance-trades-csv');
    const corrupt = tmpFile('x.json.gz', Buffer.from([0x1f, 0x8b, 8, 0, 1]));
    assert.equal(await detectTradeFileFormat(corrupt), 'kraken-rest-json');
    await assert.rejects(
      detectTradeFileFormat(tmpFile('BTCUSDT-trades-x.csv', 'hello,world\n')),
      TradeFileError,
    );
  });
});

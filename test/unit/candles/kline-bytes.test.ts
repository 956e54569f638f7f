import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { unzipSync, zipSync } from 'fflate';
import { KlineLine, parseKlineLines } from '../../../src/candles/kline-bytes.ts';
import { type OhlcvBatch, readOhlcv } from '../../../src/candles/ohlcv-files.ts';
import { zipEntries } from '../../../src/candles/zip-entries.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * The byte parser (the fast path for headerless kline files inside zips) against the general CSV path (csv-parse,
 * which reads the same text from a plain .csv file): the same candles, the same rejects with the same line numbers.
 */
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');

async function read(path: string, pair?: string): Promise<OhlcvBatch> {
  const all: OhlcvBatch = { candles: [], rejects: [] };
  for await (const b of readOhlcv(path, pair ? { pair } : {})) {
    all.candles.push(...b.candles);
    all.rejects.push(...b.rejects);
  }
  // Key order differs between the paths; compare values.
  all.candles = all.candles.map((c) => ({ ...c }));
  return all;
}

/** The same CSV text as `NAME.zip` (fast path) and `NAME.csv` (general path). */
function bothWays(text: string | Uint8Array, name = 'BTCUSDT-1m-2022-01-01'): { zip: string; csv: string } {
  const dir = scratchDir('klines-');
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  writeFileSync(join(dir, `${name}.zip`), zipSync({ [`${name}.csv`]: bytes }));
  writeFileSync(join(dir, `${name}.csv`), bytes);
  return { zip: join(dir, `${name}.zip`), csv: join(dir, `${name}.csv`) };
}

async function sameBothWays(text: string | Uint8Array, pair?: string): Promise<OhlcvBatch> {
  const { zip, csv } = bothWays(text);
  const fast = await read(zip, pair);
  const general = await read(csv, pair);
  assert.deepEqual(
    fast.rejects.map((r) => ({ ...r, file: '' })),
    general.rejects.map((r) => ({ ...r, file: '' })),
  );
  assert.equal(fast.candles.length, general.candles.length);
  for (let i = 0; i < fast.candles.length; i++)
    assert.deepEqual(fast.candles[i], general.candles[i], `row ${i}`);
  return fast;
}

describe('kline byte parser = the general CSV path', () => {
  it('real Binance days (BTC and ETH)', async () => {
    for (const f of ['BTCUSDT/BTCUSDT-1m-2022-01-01.zip', 'ETHUSDT/ETHUSDT-1m-2022-11-09.zip']) {
      const csv = Object.values(unzipSync(readFileSync(join(BINANCE, f))))[0]!;
      const got = await sameBothWays(csv);
      assert.equal(got.candles.length, 1440);
    }
  });

  it('odd lines: BOM, CRLF files, blanks, spaces, bad values, exponents, long numbers, µs and s times, short rows', async () => {
    const text = [
      '\uFEFF1640995200000,46216.93,46271.08,46208.37,46250.00,40.57574,1640995259999,1875978.4426979,796,1,1,0',
      '',
      '1640995260000 , 46250.0 ,46344.23, 46234.39,46312.76,42.38106,1640995319999,1961908.2732895,973,0,0,0',
      '   ',
      '1640995320000,4.631276e4,46381.69,46292.75,46368.73,51.29955,0,2377413.92816950,1238,0,0,0',
      '1640995380000000,46368.73,46400.123456789012345,46300,46390,0,0,0,0',
      '1640995440,46390,46400,46300,46391,1.5,0,69586.5',
      'notatime,1,2,3,4,5',
      '1640995560000,-1,2,3,4,5,0,6,7',
      '1640995620000,1.,.5,0.000000000000000000000001,00042,5,0,6,7,8',
      '1640995680000,,2,3,4,5,0,,',
      '1640995740000,1,2,3,4,5,0,6,Infinity',
      '1640995800000',
    ].join('\n');
    const got = await sameBothWays(text);
    assert.ok(got.rejects.length >= 1);
    assert.ok(got.candles.length >= 8);
    // Windows line ends throughout.
    const crlf = await sameBothWays(text.replaceAll('\n', '\r\n'));
    assert.deepEqual(crlf.rejects, got.rejects);
  });

  it('numbers: exactly Number(text), for any plain decimal', () => {
    const l = new KlineLine();
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{0,20}(\.[0-9]{0,25})?$/), (t) => {
        let got = Number.NaN;
        parseKlineLines(new TextEncoder().encode(`1,${t}`), (line) => {
          got = line.number(1);
        });
        const want = t === '' ? Number.NaN : Number(t);
        assert.ok(Object.is(got, want), `${t}: ${got} ≠ ${want}`);
      }),
      { numRuns: 20_000 },
    );
    assert.equal(l.count, 0);
  });

  it('zip entries: Node zlib = fflate', () => {
    const zip = readFileSync(join(BINANCE, 'BTCUSDT/BTCUSDT-1m-2022-03-01.zip'));
    const want = unzipSync(zip);
    const got = zipEntries(zip);
    assert.deepEqual(Object.keys(got), Object.keys(want));
    for (const k of Object.keys(want)) assert.ok(Buffer.from(got[k]!).equals(Buffer.from(want[k]!)), k);
    const stored = zipSync(
      { 'a.csv': new Uint8Array([49, 44, 50]), 'dir/': new Uint8Array(0) },
      { level: 0 },
    );
    assert.deepEqual(zipEntries(stored)['a.csv'], new Uint8Array([49, 44, 50]));
    // Deflated, empty and not: zlib's output buffer is sized from the entry (at least 64 bytes).
    const deflated = zipSync(
      { 'e.csv': new Uint8Array(0), 'b.csv': new Uint8Array([49, 44, 50]) },
      { level: 6 },
    );
    const got2 = zipEntries(deflated);
    assert.equal(got2['e.csv']!.length, 0);
    assert.ok(Buffer.from(got2['b.csv']!).equals(Buffer.from([49, 44, 50])));
  });
});

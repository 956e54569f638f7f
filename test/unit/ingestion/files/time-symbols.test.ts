import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { lastTradeTs } from '../../../../src/ingestion/files/extent.ts';
import { epochToMs, parseTime, secondsTextToMs } from '../../../../src/ingestion/files/time.ts';
import {
  binancePair,
  KRAKEN_REST_PAIRS,
  krakenPair,
  krakenWsPair,
  normalisePair,
  splitSymbol,
} from '../../../../src/ingestion/symbols.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV, KRAKEN_REST_TRADES } from '../../../support/data.ts';
import { scratchDir } from '../../../support/scratch.ts';

describe('time conversion from file text', () => {
  it('decimal seconds are truncated to the millisecond from their digits, never rounded into the next minute', () => {
    assert.equal(secondsTextToMs('1762820035.9822779'), 1762820035982);
    assert.equal(secondsTextToMs('1762820039.9999999'), 1762820039999);
    assert.equal(Math.floor(Number('1762820039.9999999') * 1000), 1762820040000, 'what the float does');
    assert.equal(secondsTextToMs('1762820040'), 1762820040000);
    assert.equal(secondsTextToMs('1762820040.5'), 1762820040500);
    for (const bad of ['', '-1.5', '1e9', '1.7e9', ' 1. ', 'NaN', '0x10'])
      assert.equal(secondsTextToMs(bad), undefined, bad);
  });

  it('property: for any time with 7 decimals, the ms is its first 3 decimals, and the minute is right', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1_262_304_000, max: 4_000_000_000 }),
        fc.integer({ min: 0, max: 9_999_999 }),
        (s, frac) => {
          const ms = secondsTextToMs(`${s}.${String(frac).padStart(7, '0')}`)!;
          assert.equal(ms, s * 1000 + Math.floor(frac / 10_000));
          assert.equal(Math.floor(ms / 60_000), Math.floor(s / 60));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('epoch numbers are told apart by magnitude: s, ms, µs, ns', () => {
    assert.equal(epochToMs('1723161255'), 1723161255000);
    assert.equal(epochToMs('1723161255.342'), 1723161255342);
    assert.equal(epochToMs('1723161255342'), 1723161255342);
    assert.equal(epochToMs('1723161255342999'), 1723161255342); // µs (Binance spot public data from 2025)
    assert.equal(epochToMs('1723161254087896568'), 1723161254087); // ns (capture receive times)
    assert.equal(epochToMs(1723161255342), 1723161255342);
    for (const bad of ['', '-1723161255', '1.7e12', '12345678901234567890', 'abc'])
      assert.equal(epochToMs(bad), undefined, bad);
  });

  it('ISO 8601 needs a zone (a naive time is a different instant on every machine)', () => {
    const t = Date.UTC(2024, 7, 8, 22);
    assert.equal(parseTime('2024-08-09T00:00:00+02:00'), t);
    assert.equal(parseTime('2024-08-09T00:00:00+0200'), t);
    assert.equal(parseTime('2024-08-08T22:00:00Z'), t);
    assert.equal(parseTime('2024-08-08 22:00:00.9999999Z'), t + 999);
    assert.equal(parseTime('2024-08-09 00:00:00'), undefined);
    assert.equal(parseTime('yesterday'), undefined);
  });
});

describe('pair names', () => {
  it('maps Kraken names by an explicit table', () => {
    for (const [k, p] of [
      ['XBTUSDT', 'BTC/USDT'],
      ['XXBTZUSD', 'BTC/USD'],
      ['XBTUSD', 'BTC/USD'],
      ['XETHZUSD', 'ETH/USD'],
      ['ETHUSD', 'ETH/USD'],
      ['XETHXXBT', 'ETH/BTC'],
      ['XBT/EUR', 'BTC/EUR'],
    ] as const)
      assert.equal(krakenPair(k), p, k);
    assert.equal(krakenPair('XXBTZJPYQ'), undefined, 'unknown names are not guessed');
  });

  it('normalises user and file spellings', () => {
    for (const [text, p] of [
      ['BTC/USD', 'BTC/USD'],
      ['btc-usd', 'BTC/USD'],
      ['eth_usdt', 'ETH/USDT'],
      ['BTCUSDT', 'BTC/USDT'],
      ['ethusdt', 'ETH/USDT'],
      ['XBTUSD', 'BTC/USD'],
      ['xbt/usd', 'BTC/USD'],
    ] as const)
      assert.equal(normalisePair(text), p, text);
    for (const bad of ['bitcoin', '', 'BTC/USD/EUR', 'B/USD', 'USDT'])
      assert.equal(normalisePair(bad), undefined, bad);
    assert.equal(splitSymbol('ETHBTC'), 'ETH/BTC');
  });

  it('one table for every use: what the backfill asks Kraken for reads back as the same pair', () => {
    for (const [pair, name] of Object.entries(KRAKEN_REST_PAIRS)) assert.equal(krakenPair(name), pair, name);
    assert.equal(krakenWsPair('XBT/USD'), 'BTC/USD');
    assert.equal(krakenWsPair('eth/usd'), 'ETH/USD');
    assert.equal(krakenWsPair('XBTUSD'), undefined, 'v2 symbols always have a slash');
  });

  it('Binance symbols split by their quote suffix, longest quote first, never with a separator', () => {
    for (const [s, p] of [
      ['BTCUSDT', 'BTC/USDT'],
      ['btcfdusd', 'BTC/FDUSD'],
      ['ETHBTC', 'ETH/BTC'],
      ['BTCTUSD', 'BTC/TUSD'],
    ] as const)
      assert.equal(binancePair(s), p, s);
    for (const bad of ['BTC-USDT', 'USDT', 'BTCXYZ', '']) assert.equal(binancePair(bad), undefined, bad);
  });
});

describe('the last trade time of a file (progress display), from its end', () => {
  it('is right for every shared recording, compressed or not', async () => {
    const dir = scratchDir('cc-extent-');
    const gz = join(dir, 'kraken_btcusd_trades.csv.gz');
    writeFileSync(gz, gzipSync(readFileSync(KRAKEN_2019_CSV)));
    assert.equal(await lastTradeTs(KRAKEN_REST_TRADES, {}), 1762820035982);
    assert.equal(await lastTradeTs(BINANCE_CAPTURE, {}), 1723161905800);
    assert.equal(await lastTradeTs(KRAKEN_2019_CSV, {}), 1561942791213);
    assert.equal(await lastTradeTs(gz, {}), 1561942791213);
    const small = join(dir, 'small.csv');
    writeFileSync(small, 'time,price,qty\n1723161255342,1,1\n1723161255999,1,1\n');
    assert.equal(await lastTradeTs(small, { pair: 'BTC/USD' }), 1723161255999);
    assert.equal(await lastTradeTs(join(dir, 'missing.csv'), {}), undefined);
  });
});

describe('normalisePair remembers its answers (a file names its pair on every row)', () => {
  it('the same answer every time, unknown spellings included, and past the bound of remembered spellings', () => {
    for (let round = 0; round < 2; round++) {
      assert.equal(normalisePair('xbt/usd'), 'BTC/USD');
      assert.equal(normalisePair(' btc-usdt '), 'BTC/USDT');
      assert.equal(normalisePair('BTC-USD-X'), undefined);
    }
    for (let i = 0; i < 1500; i++) assert.equal(normalisePair(`junk-${i}-x`), undefined);
    assert.equal(normalisePair('xbt/usd'), 'BTC/USD');
    assert.equal(normalisePair('ETHUSDT'), 'ETH/USDT');
  });
});

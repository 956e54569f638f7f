import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { ERR } from '../../src/core/errors.ts';
import { CLI } from '../support/cli.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV, SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * Bad input at the command line: one clear line naming the problem and its code, exit 2, no stack trace, no hang,
 * and never a destroyed or truncated file. Each case is a reproduction from the issue that failed before the fix.
 */
interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(CLI, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; killed?: boolean }) | null;
      if (e?.killed) reject(new Error(`cryptocast ${args.join(' ')} did not end within ${timeoutMs} ms`));
      else resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Exit 2, the code in the message, no stack trace. */
function refused(r: Result, code: string, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`), r.stderr);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
// Every folder a test makes goes at the end (one of them holds a 200 MB file).
const made: string[] = [];
const dir = () => {
  const d = scratchDir('cc-badinput-');
  made.push(d);
  return d;
};
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const STAMP = join(
  SHARED_DATA,
  'bitstamp-btcusd-1m-2025-01',
  'btcusd_bitstamp_1min_2025-01-07_2025-02-03.csv.gz',
);

describe('the CLI never destroys its input', () => {
  it('features --output naming its --candles file: refused up front, the file untouched', async () => {
    const d = dir();
    const c = join(d, 'c.csv');
    writeFileSync(c, gunzipSync(readFileSync(STAMP)).subarray(0, 200_000));
    const before = sha(c);
    refused(
      await cli(['features', '--candles', c, '--output', c, '--pair', 'BTC/USD']),
      ERR.OUTPUT.code,
      /also an input file/,
    );
    assert.equal(sha(c), before);
  });

  it('candles --output naming its --input file (also through another path): refused, the file untouched', async () => {
    const d = dir();
    const t = join(d, 't.csv');
    copyFileSync(KRAKEN_2019_CSV, t);
    const before = sha(t);
    refused(await cli(['candles', '--input', t, '--output', t]), ERR.OUTPUT.code, /also an input file/);
    refused(
      await cli(['candles', '--input', t, '--output', join(d, '.', 'sub', '..', 't.csv')]),
      ERR.OUTPUT.code,
      /input/,
    );
    assert.equal(sha(t), before);
  });

  it('features naming a file of its input folder as --output: refused', async () => {
    const d = dir();
    copyFileSync(STAMP, join(d, 'a.csv.gz'));
    refused(
      await cli(['features', '--candles', d, '--output', join(d, 'a.csv.gz'), '--pair', 'BTC/USD']),
      ERR.OUTPUT.code,
      /also an input/,
    );
  });

  it('a failed run leaves the previous output as it was and no temporary file behind', async () => {
    const d = dir();
    const out = join(d, 'o.csv');
    writeFileSync(out, 'previous,output\n1,2\n');
    const garbage = join(d, 'g.zip');
    writeFileSync(garbage, randomBytes(4096));
    refused(
      await cli(['features', '--candles', garbage, '--output', out]),
      ERR.INPUT.code,
      /g\.zip: not a readable zip/,
    );
    assert.equal(readFileSync(out, 'utf8'), 'previous,output\n1,2\n');
    assert.deepEqual(readdirSync(d).sort(), ['g.zip', 'o.csv']);
  });

  it('a successful run replaces the output whole', async () => {
    const d = dir();
    const out = join(d, 'candles.csv');
    writeFileSync(out, 'stale\n');
    const r = await cli(['candles', '--input', KRAKEN_2019_CSV, '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /^pair,windowStart,windowEnd,open,high,low,close,volume,trades,vwap,filled\n/);
    assert.equal(text.trim().split('\n').length, 61);
    assert.match(r.stderr, /1 rows rejected/, 'the exact repeat row of the file is reported');
    assert.deepEqual(readdirSync(d), ['candles.csv']);
  });
});

describe('garbage and huge inputs: one clear line, exit 2, quickly', () => {
  it('random bytes named .zip (features)', async () => {
    const d = dir();
    const g = join(d, 'g.zip');
    writeFileSync(g, randomBytes(4096));
    refused(
      await cli(['features', '--candles', g, '--output', join(d, 'o.csv')]),
      ERR.INPUT.code,
      /not a readable zip/,
    );
  });

  it('random bytes named .csv and .gz', async () => {
    const d = dir();
    writeFileSync(join(d, 'g.csv'), randomBytes(4096));
    writeFileSync(join(d, 'g.gz'), randomBytes(4096));
    refused(
      await cli(['features', '--candles', join(d, 'g.csv'), '--output', join(d, 'o.csv')]),
      ERR.INPUT.code,
      /g\.csv: not a candle file/,
    );
    refused(
      await cli(['features', '--candles', join(d, 'g.gz'), '--output', join(d, 'o.csv')]),
      ERR.INPUT.code,
      /g\.gz: not a candle file: not valid gzip/,
    );
  });

  it('a Binance websocket capture given to features and evaluate: named a trades file, with the command that makes candles', async () => {
    refused(
      await cli(['features', '--candles', BINANCE_CAPTURE, '--output', join(dir(), 'o.csv')]),
      ERR.INPUT.code,
      /is a trades file \(binance-ws-capture\).*cryptocast candles --input/,
    );
    refused(await cli(['evaluate', '--candles', BINANCE_CAPTURE]), ERR.INPUT.code, /is a trades file/);
  });

  it('a 200 MB single-line CSV: refused within seconds by features and evaluate', async () => {
    const d = dir();
    const big = join(d, 'big.csv');
    writeFileSync(big, `timestamp,open,high,low,close,volume\n${'1,'.repeat(100_000_000)}\n`);
    for (const args of [
      ['features', '--candles', big, '--pair', 'BTC/USD', '--output', join(d, 'o.csv')],
      ['evaluate', '--candles', big, '--pair', 'BTC/USD'],
    ]) {
      const t0 = performance.now();
      refused(await cli(args), ERR.INPUT.code, /longer than 4096 characters/);
      assert.ok(performance.now() - t0 < 30_000, `${args[0]} took ${performance.now() - t0} ms`);
    }
  });

  it('run: bad --port and --store values, and a store path that cannot exist, fail at once (no hang)', async () => {
    refused(
      await cli(['run', '--port', 'abc']),
      ERR.USAGE.code,
      /--port <port>' argument 'abc' is invalid\. it must be a TCP port from 0 to 65535/,
    );
    refused(
      await cli(['run', '--port', '70000']),
      ERR.USAGE.code,
      /--port <port>' argument '70000' is invalid/,
    );
    refused(
      await cli(['run', '--port', '0', '--store', 'mysql://x']),
      ERR.STORE_URL.code,
      /unknown store URL "mysql:\/\/x"/,
    );
    refused(
      await cli(['run', '--port', '0', '--store', 'duckdb:/proc/nope/x.duckdb'], 30_000),
      ERR.STORE_URL.code, // the store's kind, naming the store (was CC_ERR_OUTPUT naming the folder only)
      /cannot open \/proc\/nope\/x\.duckdb as a DuckDB store: cannot create folder \/proc\/nope/,
    );
  });

  it('evaluate on too few rows for the folds: the real minimum, before the trainer runs', async () => {
    const d = dir();
    const few = join(d, 'few.csv');
    writeFileSync(
      few,
      gunzipSync(readFileSync(STAMP)).toString('utf8').split('\n').slice(0, 3_000).join('\n'),
    );
    refused(
      await cli(['evaluate', '--candles', few, '--pair', 'BTC/USD']),
      ERR.DATASET.code,
      /too little data for 5 walk-forward folds.*need about 3,030/,
    );
    const ok = await cli(['evaluate', '--candles', few, '--pair', 'BTC/USD', '--folds', '3']);
    assert.equal(ok.code, 0, ok.stderr);
  });
});

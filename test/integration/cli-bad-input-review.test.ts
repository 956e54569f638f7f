import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, exitedWithin, runCli } from '../support/cli.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV, SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Reproductions from a first-time user's review (branch ux): bad input a user plausibly gives, where the CLI answers
 * with a stack trace, a Node crash, a misleading message or no end instead of one line with its code. Each case
 * failed when it was written; the message patterns are loose on purpose (the wording is the fixer's to choose).
 */
interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const options = { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } };
    execFile(CLI, args, options, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; killed?: boolean }) | null;
      if (e?.killed) reject(new Error(`cryptocast ${args.join(' ')} did not end within ${timeoutMs} ms`));
      else resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A catalogued refusal: the given exit status, a `[CC_ERR_…]` code, no stack trace, no Node crash banner. */
function refused(r: Result, pattern: RegExp, exitCode = 2): void {
  assert.equal(r.code, exitCode, r.stderr);
  assert.match(r.stderr, /\[CC_ERR_[A-Z_]+\]/, r.stderr);
  assert.match(r.stderr, pattern, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.doesNotMatch(r.stderr, /Node\.js v\d+/, 'no Node crash banner');
}

const made: string[] = [];
const dir = () => {
  const d = scratchDir('cc-review-');
  made.push(d);
  return d;
};
/** A real kline zip a local mirror serves for BTCUSDT 2022-05, and its SHA-256 (the archive's .CHECKSUM). */
function mirroredZip(): { zip: Buffer; sum: string } {
  const zip = readFileSync(
    join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-05-09.zip',
    ),
  );
  return { zip, sum: createHash('sha256').update(zip).digest('hex') };
}
const servers: Server[] = [];

/** Starts a local mirror (closed after the tests) and returns its port. */
async function listening(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** `data fetch` of one month of BTCUSDT from the local mirror at `port` into `dir`. */
const fetchFromMirror = (port: number, dir: string) => [
  'data',
  'fetch',
  '--from',
  '2022-05',
  '--symbols',
  'BTCUSDT',
  '--base-url',
  `http://127.0.0.1:${port}`,
  '--dir',
  dir,
];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
  for (const s of servers) s.close();
});

describe('an output path that is a folder: a one-line refusal, no stack, no litter', () => {
  it('candles --output FOLDER', async () => {
    const d = dir();
    mkdirSync(join(d, 'out'));
    refused(await cli(['candles', '--input', KRAKEN_2019_CSV, '--output', join(d, 'out')]), /out/);
  });

  it('features --output FOLDER', async () => {
    const d = dir();
    mkdirSync(join(d, 'out'));
    const zip = join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
    );
    refused(await cli(['features', '--candles', zip, '--output', join(d, 'out')]), /out/);
  });

  it('schemas --output FOLDER leaves no .tmp file beside it', async () => {
    const d = dir();
    mkdirSync(join(d, 'out'));
    refused(await cli(['schemas', '--output', join(d, 'out')]), /out/);
    assert.deepEqual(readdirSync(d), ['out']);
  });

  it('backfill --output FOLDER: no "Unhandled \'error\' event" crash', async () => {
    const d = dir();
    mkdirSync(join(d, 'out'));
    const r = await cli([
      'backfill',
      '--exchange',
      'kraken',
      '--pair',
      'BTC/USD',
      '--since',
      '2025-01-01T00:00:00Z',
      '--output',
      join(d, 'out'),
      '--state',
      join(d, 'state.json'),
      '--base-url',
      'http://127.0.0.1:9',
    ]);
    refused(r, /out/);
  });

  it('evaluate --predictions FOLDER is refused before the walk-forward (and backtest --predictions FOLDER)', async () => {
    const d = dir();
    mkdirSync(join(d, 'out'));
    const zip = join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
    );
    // A minute is far below what a walk-forward takes: refused up front or not at all.
    refused(
      await cli(['evaluate', '--candles', zip, '--predictions', join(d, 'out')], 60_000),
      /predictions.*out/,
    );
    refused(
      await cli(['backtest', '--model', 'champion', '--candles', zip, '--predictions', join(d, 'out')]),
      /predictions.*out/,
    );
    assert.deepEqual(readdirSync(d), ['out']);
  });
});

describe('bad values and missing files: catalogued, exit 2', () => {
  it('candles --max-price-factor -3 | abc | 1: CC_ERR_USAGE as in run; CRYPTOCAST_MAX_PRICE_FACTOR=0.5: CC_ERR_CONFIG', async () => {
    const d = dir();
    const args = ['candles', '--input', KRAKEN_2019_CSV, '--output', join(d, 'o.csv')];
    for (const x of ['-3', 'abc', '1']) {
      const r = await cli([...args, '--max-price-factor', x]);
      refused(r, /max-price-factor/);
      assert.match(r.stderr, /\[CC_ERR_USAGE\]/);
    }
    const r = await cli(args, 60_000, { CRYPTOCAST_MAX_PRICE_FACTOR: '0.5' });
    refused(r, /CRYPTOCAST_MAX_PRICE_FACTOR.*\[CC_ERR_CONFIG\]/);
    assert.deepEqual(readdirSync(d), [], 'no output written');
  });

  it('models list --registry naming a file', async () => {
    const d = dir();
    const f = join(d, 'registry.txt');
    writeFileSync(f, 'not a folder\n');
    const r = await cli(['models', 'list', '--registry', f]);
    assert.notEqual(r.code, 0);
    refused(r, /registry/, r.code ?? -1);
  });

  it('backtest on candles that yield no rows (an empty file): no "Invalid time value" RangeError', async () => {
    const d = dir();
    const f = join(d, 'empty.csv');
    writeFileSync(f, '');
    refused(await cli(['backtest', '--model', 'champion', '--candles', f]), /empty|no candles|no rows/i);
  });

  it('backtest on the Bitstamp CSV without --pair: every row rejected, said so (not an "Invalid time value")', async () => {
    const bitstamp = join(
      SHARED_DATA,
      'bitstamp-btcusd-1m-2025-01/btcusd_bitstamp_1min_2025-01-07_2025-02-03.csv.gz',
    );
    const r = await cli(['backtest', '--model', 'champion', '--candles', bitstamp]);
    refused(r, /no usable candles.*rejected.*--pair/);
  });

  it('service news --source replay --data MISSING: no Node crash', async () => {
    refused(
      await cli(
        ['service', 'news', '--bus', 'memory', '--source', 'replay', '--data', join(dir(), 'nope.csv.gz')],
        20_000,
      ),
      /nope\.csv\.gz/,
    );
  });

  it('sentiment eval on an empty labelled set does not blame a --limit that was never given', async () => {
    const d = dir();
    const f = join(d, 'CryptoLin_IE.csv');
    writeFileSync(f, '');
    const r = await cli(['sentiment', 'eval', '--dataset', f, '--backend', 'lexicon']);
    assert.equal(r.code, 2, r.stderr);
    assert.doesNotMatch(r.stderr, /--limit/, r.stderr);
    refused(r, /no examples in .*CryptoLin_IE\.csv/);
  });

  it('run --data on an empty trades file says there are no trades (not "done", exit 0, replay time 1970)', async () => {
    const d = dir();
    const f = join(d, 'empty.csv');
    writeFileSync(f, '');
    refused(
      await cli([
        'run',
        '--data',
        f,
        '--store',
        `duckdb:${join(d, 's.duckdb')}`,
        '--port',
        '0',
        '--quiet',
        '--no-news',
      ]),
      /no trades|empty/i,
    );
  });
});

describe('busy ports: a catalogued line, not a stack', () => {
  it('service api --port IN_USE', async () => {
    const blocker = createServer(() => {});
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const d = dir();
    const r = await cli([
      'service',
      'api',
      '--bus',
      'memory',
      '--port',
      String(port),
      '--store',
      `duckdb:${join(d, 's.duckdb')}`,
    ]);
    assert.notEqual(r.code, 0);
    refused(r, new RegExp(String(port)), r.code ?? -1);
  });

  it('service candles --metrics-port IN_USE', async () => {
    const blocker = createServer(() => {});
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const r = await cli(['service', 'candles', '--bus', 'memory', '--metrics-port', String(port)], 30_000);
    refused(r, new RegExp(`--metrics-port ${port}.*in use`));
  });
});

describe('stopping', () => {
  it('a service waiting for an unreachable broker stops on the first SIGINT', async () => {
    const run = runCli(['service', 'candles', '--bus', 'kafka://127.0.0.1:9']);
    await waitFor(
      'the service to report the missing broker',
      run.stderr,
      (e) => /kafka is unavailable/.test(e),
      {
        timeoutMs: 60_000,
        everyMs: 100,
      },
    );
    run.child.kill('SIGINT');
    await exitedWithin(run, 20_000, 'the service to end after one SIGINT');
  });
});

describe('data fetch from a mirror that closes each connection (Connection: close, like HTTP/1.0 servers)', () => {
  it('downloads, or fails with a catalogued line: never an undici AssertionError crash', async () => {
    const { zip, sum } = mirroredZip();
    const server = createServer((req, res) => {
      const url = req.url ?? '';
      const body = url.endsWith('.CHECKSUM')
        ? Buffer.from(`${sum}  BTCUSDT-1m-2022-05.zip\n`)
        : url.endsWith('.zip')
          ? zip
          : undefined;
      if (body === undefined) {
        res.writeHead(404, { connection: 'close' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length, connection: 'close' });
      res.end(body);
    });
    const port = await listening(server);
    const d = dir();
    const r = await cli(fetchFromMirror(port, d));
    assert.doesNotMatch(r.stderr, /AssertionError/, r.stderr);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('data fetch interrupted', () => {
  it('SIGINT mid-download: the catalogued "interrupted" line, no AbortError stack, the part kept', async () => {
    const { zip, sum } = mirroredZip();
    // Sends the zip 1,000 bytes at a time, so the download is in progress when the signal comes.
    const server = createServer((req, res) => {
      const url = req.url ?? '';
      if (url.endsWith('.CHECKSUM')) {
        res.end(`${sum}  BTCUSDT-1m-2022-05.zip\n`);
        return;
      }
      res.writeHead(200, { 'content-length': zip.length });
      let i = 0;
      const t = setInterval(() => {
        if (i >= zip.length) {
          clearInterval(t);
          res.end();
          return;
        }
        res.write(zip.subarray(i, i + 1000));
        i += 1000;
      }, 100);
      req.on('close', () => clearInterval(t));
    });
    const port = await listening(server);
    const d = dir();
    const run = runCli(fetchFromMirror(port, d));
    const part = join(d, 'spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2022-05.zip.part');
    const partBytes = () => {
      try {
        return readFileSync(part).length;
      } catch {
        return 0;
      }
    };
    await waitFor('the download to start', partBytes, (n) => n > 0, { timeoutMs: 30_000, everyMs: 50 });
    run.child.kill('SIGINT');
    const code = await run.exited;
    refused(
      { code: typeof code === 'number' ? code : -1, stdout: '', stderr: run.stderr() },
      /interrupted.*\[CC_ERR_INTERRUPTED\]/,
      130,
    );
    assert.ok(partBytes() > 0, 'the part is kept for the next run to continue');
  });
});

describe('run with a registry it cannot read', () => {
  it('CRYPTOCAST_REGISTRY naming a file: the replay ends (refused, or done without predictions), no endless hold', async () => {
    const d = dir();
    const f = join(d, 'registry.txt');
    writeFileSync(f, 'not a folder\n');
    const run = runCli(
      ['run', '--store', `duckdb:${join(d, 's.duckdb')}`, '--port', '0', '--quiet', '--no-news'],
      { CRYPTOCAST_REGISTRY: f },
    );
    const code = await exitedWithin(run, 90_000, 'the run to end');
    assert.ok(typeof code === 'number', `${code}; stderr:\n${run.stderr().slice(-1500)}`);
    assert.doesNotMatch(run.stderr(), /features held/, 'no endless "handler failed; will retry" loop');
  });
});

/** The second review's cases (branch ux2): flags that were ignored, checked late, or answered with the wrong code. */
describe('run --pairs in a replay', () => {
  const run = (d: string, more: string[]) =>
    cli(['run', '--store', `duckdb:${join(d, 's.duckdb')}`, '--port', '0', '--quiet', '--no-news', ...more]);

  it('plays only the pairs asked for (it used to predict every pair of the recording)', async () => {
    const r = await run(dir(), ['--data', BINANCE_CAPTURE, '--pairs', 'ETH/USDT']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ETH\/USDT history/, r.stderr);
    assert.doesNotMatch(r.stderr, /BTC\/USDT/, r.stderr);
  });

  it('a pair the recording does not hold: CC_ERR_PAIR naming what it holds, for trades and for klines', async () => {
    const trades = await run(dir(), ['--data', BINANCE_CAPTURE, '--pairs', 'BTC/USD']);
    refused(trades, /--pairs BTC\/USD.*BTC\/USDT, ETH\/USDT.*\[CC_ERR_PAIR\]/);
    const klines = await run(dir(), ['--replay', '2022-05-09', '--pairs', 'BTC/USD']);
    refused(klines, /--pairs.*BTC\/USDT, ETH\/USDT.*BTC\/USD.*\[CC_ERR_PAIR\]/);
    assert.doesNotMatch(klines.stderr + klines.stdout, /dashboard on/, 'refused before anything started');
  });
});

describe('features --news and train --news on something that is not a news recording', () => {
  it('a missing file, a folder, a file of another kind: CC_ERR_INPUT naming the path and what is expected (they gave neutral news)', async () => {
    const d = dir();
    const zip = join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
    );
    const headerOnly = join(d, 'header.csv');
    writeFileSync(headerOnly, 'date;title;text;source;url\n');
    for (const news of [join(d, 'missing.csv'), d, KRAKEN_2019_CSV, headerOnly]) {
      const expected = new RegExp(
        `--news ${news.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*expected a news recording`,
      );
      const common = ['--candles', zip, '--news', news, '--sentiment', 'lexicon'];
      const f = await cli(['features', ...common, '--output', join(d, 'f.csv')]);
      refused(f, expected);
      assert.match(f.stderr, /\[CC_ERR_INPUT\]/);
      const t = await cli(['train', ...common, '--registry', join(d, 'registry')]);
      refused(t, expected);
      assert.match(t.stderr, /\[CC_ERR_INPUT\]/);
    }
  });
});

describe('run --replay of a month without data', () => {
  it('is refused before anything starts: no API, no store file (it listened first)', async () => {
    const d = dir();
    const r = await cli([
      'run',
      '--replay',
      '2030-01',
      '--store',
      `duckdb:${join(d, 's.duckdb')}`,
      '--port',
      '0',
      '--quiet',
      '--no-news',
    ]);
    refused(r, /no 1-minute klines of BTCUSDT, ETHUSDT for 2030-01-01\.\.2030-01-31.*\[CC_ERR_INPUT\]/);
    assert.doesNotMatch(r.stdout + r.stderr, /dashboard on|prediction API/);
    assert.deepEqual(readdirSync(d), [], 'no store opened');
  });
});

describe('run a second time on the same store', () => {
  it('the status says the verdicts were made by the earlier run (it said "351 predictions · 0 scored")', async () => {
    const d = dir();
    const args = ['run', '--store', `duckdb:${join(d, 's.duckdb')}`, '--port', '0', '--no-news'];
    const summary = (r: Result) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    const first = await cli([...args, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const scored = summary(first).errorRecords!;
    assert.ok(scored > 0, first.stdout);
    const second = await cli([...args, '--json']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(
      [summary(second).errorRecords, summary(second).scoredEarlier],
      [0, scored],
      'none scored twice, all said',
    );
    const text = await cli([...args, '--quiet']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stderr,
      new RegExp(
        `predictions · 0 scored \\(${scored.toLocaleString('en-US')} already scored by an earlier run on this store\\)`,
      ),
    );
  });
});

describe('features --store that fails: one catalogued line, no stack, an end', () => {
  const zip = join(
    SHARED_DATA,
    'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
  );

  it('a PostgreSQL nobody listens on: CC_ERR_STORE after a bounded wait (it waited for ever)', async () => {
    // A port nothing listens on: one the kernel just handed out and that was closed again.
    const blocker = createServer(() => {});
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as AddressInfo;
    await new Promise<void>((r) => blocker.close(() => r()));
    // The URL from the environment, as a deployment gives it: a password in a flag is refused before anything runs.
    const r = await cli(['features', '--candles', zip], 90_000, {
      CRYPTOCAST_STORE_BACKFILL: `postgres://u:pw-of-test@127.0.0.1:${port}/db`,
    });
    refused(
      r,
      new RegExp(
        `feature store postgres://u:\\S*@127\\.0\\.0\\.1:${port}/db did not answer.*\\[CC_ERR_STORE\\]`,
      ),
      1,
    );
  });

  it('a DuckDB path that cannot be a database (in a "folder" that is a file, a folder, a file of another kind)', async () => {
    const d = dir();
    writeFileSync(join(d, 'file'), 'not a folder\n');
    for (const path of [join(d, 'file', 's.duckdb'), d, join(d, 'file')]) {
      const r = await cli(['features', '--candles', zip, '--store', `duckdb:${path}`]);
      assert.notEqual(r.code, 0, r.stderr);
      refused(r, new RegExp(path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), r.code ?? -1);
    }
  });
});

describe('sentiment train-head on labelled sets without examples', () => {
  it('CC_ERR_INPUT "no labelled examples in …", before the model loads (it was a plain Error with its stack)', async () => {
    const d = dir();
    const empty = join(d, 'CryptoLin_IE.csv');
    writeFileSync(empty, '');
    const r = await cli(['sentiment', 'train-head', '--dataset', empty, '--output', join(d, 'head.json')]);
    refused(r, /no labelled examples in .*CryptoLin_IE\.csv.*\[CC_ERR_INPUT\]/);
    assert.deepEqual(readdirSync(d), ['CryptoLin_IE.csv'], 'no head written');
  });
});
